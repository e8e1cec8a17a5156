"""Reading a parameter-efficient adapter folder (peft's ``adapter_config.json`` beside langbert's files).

Training an adapter is ``langbert.training.peft``'s; loading one back is every task's, so it lives here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"


def is_adapter(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def base_model_of(path: str | Path) -> str:
    return json.loads((Path(path) / ADAPTER_CONFIG).read_text(encoding="utf-8"))["base_model_name_or_path"]


def load_adapter(base: Any, path: str | Path) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(path))
