"""Recall on the spans a model met in training and on those it did not.

A word segmenter or tagger is judged first on the words and names it never saw: SIGHAN's bakeoffs report
the recall of gold words outside the training vocabulary (``R_oov``) beside the recall of the others
(``R_iv``), and NER studies split mentions the same way (Augenstein et al., 2017, "Generalisation in named
entity recognition"). A span counts as *seen* when its text is the text of some span of the training split,
whatever its type there.

The training spans are kept as 64-bit digests of their texts, not the texts: saved beside a model they let
``eval`` split a report the same way without shipping the training split's names and words.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

Span = tuple[int, int, str]


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


class SeenSpans:
    """The set of span texts of a training split, as digests."""

    def __init__(self, digests: Iterable[str] = ()):
        self.digests = frozenset(digests)

    @classmethod
    def from_rows(cls, rows: Iterable) -> "SeenSpans":
        return cls(_digest(row.text[start:end]) for row in rows for start, end, _ in (row.label or []))

    def __contains__(self, text: str) -> bool:
        return _digest(text) in self.digests

    def __len__(self) -> int:
        return len(self.digests)

    def to_text(self) -> str:
        return "".join(f"{d}\n" for d in sorted(self.digests))

    @classmethod
    def from_text(cls, text: str) -> "SeenSpans":
        return cls(line.strip() for line in text.splitlines() if line.strip())


def seen_recall(texts: Sequence[str], gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]],
                seen: SeenSpans) -> dict[str, float]:
    """``oov_recall`` and ``iv_recall``: the share of gold spans unseen / seen in training that were
    predicted exactly (bounds and type); ``oov_rate``: the share of gold spans unseen; ``oov_spans``: their
    number."""
    found = {True: 0, False: 0}
    total = {True: 0, False: 0}
    for text, spans, guessed in zip(texts, gold, predicted):
        guessed = set(guessed)
        for span in set(spans):
            known = text[span[0]:span[1]] in seen
            total[known] += 1
            found[known] += span in guessed
    return {"oov_recall": found[False] / max(total[False], 1), "iv_recall": found[True] / max(total[True], 1),
            "oov_rate": total[False] / max(sum(total.values()), 1), "oov_spans": total[False]}
