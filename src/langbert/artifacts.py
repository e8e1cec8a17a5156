"""The self-describing output folder: an ordinary HF checkpoint plus ``langbert.json``."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Iterator

from .errors import LangbertError

METADATA = "langbert.json"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temporary file, fsync, then rename over ``path``: a reader sees the old file or the new
    one, never half of one, even if the process is killed mid-write."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def versions() -> dict[str, str]:
    import tokenizers
    import torch
    import transformers

    from importlib.metadata import PackageNotFoundError, version

    try:
        langbert = version("langbert")
    except PackageNotFoundError:  # run from a source tree that was never installed
        langbert = "unknown"
    return {
        "langbert": langbert,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": platform.python_version(),
    }


def write_metadata(out_dir: str | Path, metadata: dict[str, Any]) -> Path:
    """Written last and atomically: a folder with ``langbert.json`` is a finished model."""
    path = Path(out_dir) / METADATA
    atomic_write_text(path, json.dumps({**metadata, "versions": versions()}, indent=2, ensure_ascii=False))
    return path


def read_metadata(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / METADATA
    if not path.is_file():
        raise LangbertError(
            f"{model_dir} is not a langbert model folder (no {METADATA}); train one with 'langbert train'"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LangbertError(f"{path}: corrupt metadata ({exc})") from None


def lineage(model_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The ``langbert.json`` of a checkpoint, then of each folder it was made from (its ``source_model``, else
    its ``base_model``), nearest first, as far as langbert wrote them. A file that is not JSON raises
    ``json.JSONDecodeError`` where the walk reaches it."""
    path, seen = Path(model_dir), set()
    while path not in seen and (path / METADATA).is_file():
        seen.add(path)
        meta = json.loads((path / METADATA).read_text(encoding="utf-8"))
        yield meta
        source = meta.get("source_model") or meta.get("base_model")
        if not source:
            return
        path = Path(source)


def vocabulary_from_adapt(model_dir: str | Path) -> bool:
    """Whether ``langbert adapt`` made this checkpoint's vocabulary: the folder was adapted, or was
    pretrained or fine-tuned (any number of times) from one that was."""
    try:
        return any(meta.get("stage") == "adapt" for meta in lineage(model_dir))
    except json.JSONDecodeError:
        return False
