"""The unit of data every task consumes: one example, and where it came from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class Row:
    text: str
    label: Any = None
    """Task-specific target: a class name, a list of class names, a float, ..."""
    pair: str | None = None
    """Second text of a sentence pair."""
    source: str | None = None
    """File the row was read from (or a built-in dataset name), for error messages."""
    line: int | None = None
    probabilities: tuple[tuple[str, float], ...] | None = None
    """A teacher's (label, probability) pairs for this text: the target a self-training student learns
    in place of the one-hot label (``pseudo_label_targets: probabilities``); ``label`` is their likeliest."""
    untagged: tuple[tuple[int, int], ...] | None = None
    """Character ranges (start, end) of ``text`` whose tags are not known, the rest tagged by ``label``'s
    spans (partial labels: where a self-training teacher was unsure, ``pseudo_label_unsure_below``)."""


def fingerprint(rows: Iterable[Row]) -> str:
    """A stable hash of the content (not the order of files on disk), stored with every model."""
    digest = hashlib.sha256()
    for row in rows:
        content = [row.text, row.pair, row.label, *([row.probabilities] if row.probabilities else []),
                   *([row.untagged] if row.untagged else [])]
        digest.update(json.dumps(content, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]
