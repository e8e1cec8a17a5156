"""Answers of extractive QA: reading them from a file, and scoring a predicted answer against them.

Scoring follows SQuAD (exact match, and the F1 of the tokens two answers share, the best over the gold
answers) with a tokenisation that is not English-only: each CJK character is a token (as CMRC 2018
scores Chinese), other text splits on whitespace, and punctuation of any script is dropped. SQuAD's
English article removal ("a", "an", "the") is left out, as no other language needs it.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Any, Sequence

from ..data.vocab_chars import is_cjk

Span = tuple[int, int]


def answer_spans(raw: Any, context: str) -> tuple[Span, ...]:
    """Character spans ``(start, end)`` of the answers in ``context``; ``()`` marks a question the context
    does not answer. ``raw`` is SQuAD's ``{"text": [...], "answer_start": [...]}``, a list of
    ``{"text", "answer_start"}`` objects, or a plain answer string (its first occurrence). ``ValueError``
    says what does not fit."""
    if isinstance(raw, str):
        start = context.find(raw)
        if not raw.strip() or start < 0:
            raise ValueError(f"answer {raw!r} does not occur in the context")
        return ((start, start + len(raw)),)
    if isinstance(raw, dict):
        texts, starts = raw.get("text"), raw.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise ValueError("answers must hold lists 'text' and 'answer_start' of equal length")
        pairs = list(zip(texts, starts))
    elif isinstance(raw, list):
        if not all(isinstance(a, dict) and "text" in a and "answer_start" in a for a in raw):
            raise ValueError("each answer must be an object with 'text' and 'answer_start'")
        pairs = [(a["text"], a["answer_start"]) for a in raw]
    else:
        raise ValueError(f"expected answers as an object, a list or a string, got {type(raw).__name__}")
    spans = []
    for text, start in pairs:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"empty answer text {text!r}")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"answer_start must be a character index, got {start!r}")
        found = context[start:start + len(text)]
        if found != text:
            raise ValueError(f"answer {text!r} is not at character {start} of the context (found {found!r})")
        spans.append((start, start + len(text)))
    return tuple(spans)


def answer_tokens(text: str) -> list[str]:
    """Case-folded tokens without punctuation: CJK characters one by one, other runs split on whitespace."""
    tokens, word = [], []
    for char in text.casefold():
        if unicodedata.category(char).startswith("P") or char.isspace():
            char = " "
        if is_cjk(char) or char == " ":
            if word:
                tokens.append("".join(word))
                word = []
            if char != " ":
                tokens.append(char)
        else:
            word.append(char)
    if word:
        tokens.append("".join(word))
    return tokens


def exact_match(predicted: str, golds: Sequence[str]) -> float:
    return float(any(answer_tokens(predicted) == answer_tokens(g) for g in golds))


def token_f1(predicted: str, golds: Sequence[str]) -> float:
    """The best F1 of shared tokens over the gold answers; an empty answer scores 1 only against an empty one."""
    best = 0.0
    mine = answer_tokens(predicted)
    for gold in golds:
        theirs = answer_tokens(gold)
        if not mine or not theirs:
            best = max(best, float(mine == theirs))
            continue
        shared = sum((Counter(mine) & Counter(theirs)).values())
        if shared:
            precision, recall = shared / len(mine), shared / len(theirs)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best
