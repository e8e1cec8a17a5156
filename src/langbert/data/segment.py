"""Word boundaries for whole-word masking and word vocabularies. Pluggable: any callable text -> words.

jieba is the default for Chinese; for languages written with spaces, whitespace splitting is the segmenter.
"""

from __future__ import annotations

import functools
import logging
from typing import Callable

Segmenter = Callable[[str], list[str]]
"""text -> words whose concatenation is the text (whitespace may be dropped)."""


def whitespace(text: str) -> list[str]:
    return text.split()


@functools.lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def jieba_words(text: str) -> list[str]:
    return [w for w in _jieba().lcut(text, HMM=True) if w.strip()]


SEGMENTERS: dict[str, Segmenter] = {"jieba": jieba_words, "whitespace": whitespace}


def get_segmenter(name: str) -> Segmenter:
    if name not in SEGMENTERS:
        from ..errors import ConfigError

        raise ConfigError(f"unknown segmenter '{name}'; known: {sorted(SEGMENTERS)}")
    return SEGMENTERS[name]
