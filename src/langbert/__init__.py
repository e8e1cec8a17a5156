"""langbert: make a general BERT-family model work for one language, then fine-tune and ship it.

Importing the package registers langbert's model types with transformers' Auto classes, so a folder
langbert trained loads through ``AutoModelFor...`` and ``pipeline`` with its own head (see
``langbert.tasks.hf_auto``). The public names are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "errors",
    "DataError": "errors",
    "LangbertError": "errors",
    "DataConfig": "config",
    "TrainConfig": "config",
    "load_recipe": "config",
    "Predictor": "inference",
    "Task": "tasks",
    "create_task": "tasks",
    "register_task": "tasks",
    "task_names": "tasks",
    "train": "training",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'langbert' has no attribute {name!r}")


def _register_with_transformers() -> None:
    from .tasks.hf_auto import register_families

    register_families()


_register_with_transformers()
