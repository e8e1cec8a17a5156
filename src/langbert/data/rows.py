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


def fingerprint(rows: Iterable[Row]) -> str:
    """A stable hash of the content (not the order of files on disk), stored with every model."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row.text, row.pair, row.label], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]
