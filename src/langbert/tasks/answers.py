"""Answers of extractive QA: reading them from a file, and scoring a predicted answer against them.

Two official definitions, by name (each the best score over the gold answers; an empty answer, for an
unanswerable question, scores 1 only against an empty one, as SQuAD 2.0 has it):

- ``squad``: the SQuAD evaluation script's. Lower case, ASCII punctuation and the articles a/an/the
  removed, whitespace tokens; F1 over the multiset of shared tokens. Chinese without spaces is one token.
- ``cmrc2018``: the CMRC 2018 script's. Each Chinese character a segment, other runs split into words and
  punctuation (the script uses nltk's ``word_tokenize``; here its common case: runs of letters/digits,
  and each other symbol), its punctuation list dropped; F1 from the longest common *substring* of the
  segment sequences, so 北大 against 北京大学 scores 0.333, where a multiset would score 0.667; exact match
  after removing that punctuation.
"""

from __future__ import annotations

import re
import string
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


SCORINGS = ("squad", "cmrc2018")

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCTUATION = set(string.punctuation)
# The CMRC 2018 script's list (its "……" is two "…", which the loop meets one at a time).
_CMRC_PUNCTUATION = set("-:_*^/\\~`+=，。：？！“”；’《》…·、「」（）－～『』")
_CMRC_CJK = re.compile(r"[\u4e00-\u9fa5]")
_WORDS = re.compile(r"\w+|[^\w\s]")


def squad_tokens(text: str) -> list[str]:
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCTUATION)
    return _ARTICLES.sub(" ", text).split()


def cmrc_segments(text: str) -> list[str]:
    segments, run = [], ""
    for char in text.lower().strip():
        if char in _CMRC_PUNCTUATION:
            continue
        if _CMRC_CJK.match(char):
            segments += _WORDS.findall(run)
            run = ""
            segments.append(char)
        else:
            run += char
    return segments + _WORDS.findall(run)


def _longest_common_substring(a: list[str], b: list[str]) -> int:
    best, previous = 0, [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def _f1(shared: int, predicted: int, gold: int) -> float:
    if not shared:
        return 0.0
    precision, recall = shared / predicted, shared / gold
    return 2 * precision * recall / (precision + recall)


def exact_match(predicted: str, golds: Sequence[str], scoring: str = "squad") -> float:
    if scoring == "squad":
        norm = lambda t: " ".join(squad_tokens(t))  # noqa: E731
    else:
        norm = lambda t: "".join(ch for ch in t.lower().strip() if ch not in _CMRC_PUNCTUATION)  # noqa: E731
    return float(any(norm(predicted) == norm(g) for g in golds))


def answer_f1(predicted: str, golds: Sequence[str], scoring: str = "squad") -> float:
    """The best F1 over the gold answers, by ``scoring``'s definition."""
    split = squad_tokens if scoring == "squad" else cmrc_segments
    mine, best = split(predicted), 0.0
    for gold in golds:
        theirs = split(gold)
        if not mine or not theirs:
            best = max(best, float(mine == theirs))
        elif scoring == "squad":
            best = max(best, _f1(sum((Counter(mine) & Counter(theirs)).values()), len(mine), len(theirs)))
        else:
            best = max(best, _f1(_longest_common_substring(theirs, mine), len(mine), len(theirs)))
    return best


def scoring_for(texts: Sequence[str]) -> str:
    """``cmrc2018`` for text that is mostly Chinese characters, ``squad`` otherwise."""
    chars = [c for t in texts for c in t if not c.isspace()]
    return "cmrc2018" if chars and sum(map(is_cjk, chars)) > len(chars) / 2 else "squad"
