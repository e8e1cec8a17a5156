"""Readers for sequence labelling: CoNLL columns and JSONL with character spans."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import DataError
from .readers import jsonl_records, read_text
from .rows import Row
from .spans import DecodeStats, Span, split_tag, tags_to_spans
from .vocab_chars import joiner


def read_conll(path: str | Path, scheme: str = "BIO", strict: bool = False) -> tuple[list[Row], DecodeStats]:
    """One ``token label`` per line, a blank line between sentences. Tokens may be characters or words:
    the sentence text joins them (no space between CJK, a space between other words)."""
    path = Path(path)
    rows: list[Row] = []
    stats = DecodeStats()
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0

    def flush() -> None:
        nonlocal tokens, tags
        if tokens:
            text, starts, ends = "", [], []
            for token in tokens:
                if text:
                    text += joiner(text[-1], token[0])
                starts.append(len(text))
                text += token
                ends.append(len(text))
            before = stats.repaired
            spans = tags_to_spans(tags, scheme, starts, ends, stats)
            if strict and stats.repaired > before:
                raise DataError("an I-/M-/E- tag continues no entity (rerun without --strict-tags to repair it)",
                                str(path), first_line, "label")
            rows.append(Row(text=text, label=spans, source=str(path), line=first_line))
        tokens, tags = [], []

    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            flush()
            continue
        cells = line.split()
        if len(cells) != 2:
            raise DataError(f"expected 2 columns (token and label), found {len(cells)}", str(path), n)
        prefix, _ = split_tag(cells[1])
        if prefix not in ("O", "B", "I", "M", "E", "S"):
            raise DataError(f"'{cells[1]}' is not a {scheme} tag", str(path), n, "label")
        if not tokens:
            first_line = n
        tokens.append(cells[0])
        tags.append(cells[1])
    flush()
    if not rows:
        raise DataError("no rows (the file is empty)", str(path))
    return rows, stats


def read_span_jsonl(path: str | Path, text_field: str = "text", spans_field: str = "entities",
                    label_required: bool = True, untagged_field: str = "untagged") -> list[Row]:
    """``{"text": ..., "entities": [[start, end, label], ...]}`` with character offsets, end exclusive;
    ``"untagged": [[start, end], ...]`` marks characters whose tags are not known (partial annotation:
    training learns the others, ``Row.untagged``)."""
    path = Path(path)
    rows = []
    for n, record in jsonl_records(read_text(path), path):
        text = record.get(text_field)
        if not isinstance(text, str) or not text.strip():
            raise DataError("missing or empty text", str(path), n, text_field)
        spans = None
        if spans_field in record:
            spans = _check_spans(record[spans_field], text, str(path), n, spans_field)
        elif label_required:
            raise DataError("missing spans", str(path), n, spans_field)
        untagged = None
        if untagged_field in record:
            untagged = _check_untagged(record[untagged_field], text, spans or [], str(path), n, untagged_field)
        rows.append(Row(text=text, label=spans, source=str(path), line=n, untagged=untagged))
    if not rows:
        raise DataError("no rows (the file is empty)", str(path))
    return rows


def _check_untagged(raw: object, text: str, spans: list[Span], src: str, line: int,
                    field: str) -> tuple[tuple[int, int], ...] | None:
    """[[start, end], ...] in range, apart from each other and from the spans (whose characters are tagged);
    None where the list is empty."""
    if not isinstance(raw, list) or not all(isinstance(r, list) and len(r) == 2 and all(type(x) is int for x in r)
                                            for r in raw):
        raise DataError(f"expected a list of [start, end], got {raw!r}", src, line, field)
    ranges = sorted((s, e) for s, e in raw)
    for s, e in ranges:
        if not 0 <= s < e <= len(text):
            raise DataError(f"[{s}, {e}] is out of range for a text of {len(text)} characters", src, line, field)
        tagged = next((sp for sp in spans if sp[0] < e and s < sp[1]), None)
        if tagged is not None:
            raise DataError(f"[{s}, {e}] overlaps span {list(tagged)}, whose characters are tagged", src, line, field)
    _refuse_overlaps(ranges, "", src, line, field)
    return tuple(ranges) or None


def _refuse_overlaps(ranges: Sequence[tuple], kind: str, src: str, line: int, field: str) -> None:
    """Sorted (start, end, ...) ranges must not overlap: the first pair that does is the error."""
    for a, b in zip(ranges, ranges[1:]):
        if b[0] < a[1]:
            raise DataError(f"{kind}{list(b)} overlaps {list(a)}", src, line, field)


def _check_spans(raw: object, text: str, src: str, line: int, field: str) -> list[Span]:
    if not isinstance(raw, list):
        raise DataError("expected a list of [start, end, label]", src, line, field)
    spans: list[Span] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], int) and isinstance(item[1], int)
                and isinstance(item[2], str) and item[2]):
            raise DataError(f"expected [start, end, label], got {item!r}", src, line, field)
        start, end, kind = item
        if not 0 <= start < end <= len(text):
            raise DataError(f"span {item!r} is out of range for a text of {len(text)} characters", src, line, field)
        spans.append((start, end, kind))
    spans.sort()
    _refuse_overlaps(spans, "span ", src, line, field)
    return spans
