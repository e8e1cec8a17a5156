"""Character spans <-> tag sequences (BIO / BMES), with the repairs counted rather than hidden.

Spans are ``(start, end, type)`` over characters, end exclusive: the one representation of entities,
words (segmentation) and tagged words (POS) that every reader produces and every decoder returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

Span = tuple[int, int, str]
SCHEMES = ("BIO", "BMES")


@dataclass
class DecodeStats:
    repaired: int = 0
    """Tags that continued nothing (``O`` then ``I-X``) and were read as starting a span."""
    examples: list[str] = field(default_factory=list)


def split_tag(tag: str) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'S' -> ('S', '')."""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def tags_for(types: Sequence[str], scheme: str) -> list[str]:
    """The tag set of a scheme over entity types, 'O' first."""
    if scheme == "BIO":
        return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]
    # BMES: one type (segmentation) gives bare tags; several types give B-X ... S-X.
    if list(types) in ([], [""], ["W"]):
        return ["B", "M", "E", "S"]
    return [f"{p}-{t}" for t in types for p in ("B", "M", "E", "S")]


def spans_to_tags(length: int, spans: Sequence[Span], scheme: str) -> list[str]:
    tags = ["O"] * length
    for start, end, kind in spans:
        suffix = f"-{kind}" if kind and kind != "W" else ""
        if scheme == "BIO":
            tags[start] = f"B-{kind}"
            for i in range(start + 1, end):
                tags[i] = f"I-{kind}"
        elif end - start == 1:
            tags[start] = f"S{suffix}"
        else:
            tags[start] = f"B{suffix}"
            for i in range(start + 1, end - 1):
                tags[i] = f"M{suffix}"
            tags[end - 1] = f"E{suffix}"
    return tags


def join_tag(prefix: str, kind: str) -> str:
    """('B', 'PER') -> 'B-PER'; ('S', '') -> 'S' (the inverse of ``split_tag``)."""
    return f"{prefix}-{kind}" if kind else prefix


# Prefixes a window cut out of a longer text may not start / end with, and what they become there.
_OPENED_BY_CUT = {"BIO": {"I": "B"}, "BMES": {"M": "B", "E": "S"}}
_LEFT_OPEN_BY_CUT = {"BIO": {}, "BMES": {"B": "S", "M": "E"}}


def close_at_edges(tags: list[str], scheme: str) -> list[str]:
    """A window cut out of a longer text, made a valid sequence on its own: a span the cut opened at the
    start begins there (``I-X`` -> ``B-X``; ``M``/``E`` -> ``B``/``S``), one it left open at the end ends
    there (BMES ``B``/``M`` -> ``S``/``E``). Without it a CRF, whose start and end scores forbid those
    tags, is trained on an impossible gold path (a loss of ~1e4 for that window)."""
    if not tags:
        return tags
    tags = list(tags)
    for index, replace in ((0, _OPENED_BY_CUT[scheme]), (-1, _LEFT_OPEN_BY_CUT[scheme])):
        prefix, kind = split_tag(tags[index])
        if prefix in replace:
            tags[index] = join_tag(replace[prefix], kind)
    return tags


def tags_to_spans(tags: Sequence[str], scheme: str, starts: Sequence[int] | None = None,
                  ends: Sequence[int] | None = None, stats: DecodeStats | None = None,
                  strict: bool = False) -> list[Span]:
    """Tags of units (characters or tokens, located by ``starts``/``ends``) -> character spans.

    By default an ``I-X``/``M``/``E`` that does not continue an open span of its type starts a new one (and
    is counted in ``stats``), as conlleval reads tags. ``strict``: only well-formed spans count, as in
    seqeval's strict mode: such a tag belongs to no span, and in BMES a span must end with ``E``.
    """
    starts = list(range(len(tags))) if starts is None else starts
    ends = [s + 1 for s in starts] if ends is None else ends
    spans: list[Span] = []
    open_start, open_kind = None, None
    needs_end = strict and scheme == "BMES"

    def close(end: int, complete: bool = True) -> None:
        nonlocal open_start, open_kind
        if open_start is not None and (complete or not needs_end):
            spans.append((open_start, end, open_kind or "W"))
        open_start, open_kind = None, None

    last_end = 0
    for tag, start, end in zip(tags, starts, ends):
        prefix, kind = split_tag(tag)
        if prefix == "O":
            close(last_end, complete=False)
        elif prefix in ("B", "S"):
            close(last_end, complete=False)
            open_start, open_kind = start, kind
            if prefix == "S":
                close(end)
        else:  # I, M, E
            if open_start is None or open_kind != kind:
                close(last_end, complete=False)
                if stats is not None:
                    stats.repaired += 1
                if strict:
                    last_end = end
                    continue
                open_start, open_kind = start, kind
            if prefix == "E":
                close(end)
        last_end = end
    close(last_end, complete=False)
    return spans


ERROR_KINDS = ("missed", "wrong_bounds", "wrong_type", "spurious")


def span_errors(gold: Sequence[Span], predicted: Sequence[Span]) -> dict[tuple[str, str], int]:
    """What went wrong, per type, beyond strict P/R: counts keyed by (type, kind).

    A gold span not predicted exactly is ``wrong_type`` if its bounds were predicted with another type,
    ``wrong_bounds`` if a prediction overlaps it otherwise, else ``missed``; a prediction overlapping no
    gold span is ``spurious`` (keyed by its predicted type). The three gold-side kinds sum to the false
    negatives; predictions that overlap a gold span they do not match are the other side of those errors.
    """
    counts: dict[tuple[str, str], int] = {}
    exact, bounds = set(predicted), {(s, e) for s, e, _ in predicted}
    gold_set = set(gold)
    # Characters under some span: overlap tests in time linear in the text (segmentation has many spans).
    in_predicted = {i for s, e, _ in predicted for i in range(s, e)}
    in_gold = {i for s, e, _ in gold for i in range(s, e)}

    for start, end, kind in gold_set - exact:
        error = ("wrong_type" if (start, end) in bounds
                 else "wrong_bounds" if any(i in in_predicted for i in range(start, end)) else "missed")
        counts[kind, error] = counts.get((kind, error), 0) + 1
    for start, end, kind in exact - gold_set:
        if not any(i in in_gold for i in range(start, end)):
            counts[kind, "spurious"] = counts.get((kind, "spurious"), 0) + 1
    return counts
