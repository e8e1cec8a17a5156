"""Deterministic splits by a hash of the text: the same text always lands in the same split,
so duplicates can never leak between train and test, and a split never depends on file order."""

from __future__ import annotations

import hashlib

SPLITS = ("train", "dev", "test")


def bucket(key: str) -> int:
    """0..99, stable across runs, machines and Python versions (unlike ``hash``)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % 100


def split_of(key: str, dev_percent: int = 10, test_percent: int = 10) -> str:
    b = bucket(key)
    if b < 100 - dev_percent - test_percent:
        return "train"
    return "dev" if b < 100 - test_percent else "test"
