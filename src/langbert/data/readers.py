"""Readers for user files (CSV, TSV, JSONL, plain text) with column mapping.

Every problem is raised as a ``DataError`` naming file, line and field; nothing is skipped silently.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import DataError
from .rows import Row

LabelParser = Callable[[Any], Any]
"""Turns a raw cell/JSON value into the task's label; raises ``ValueError`` with a reason."""


@dataclass(frozen=True)
class Columns:
    text: str = "text"
    pair: str | None = None
    label: str | None = "label"
    label_delimiter: str | None = None


FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".txt": "text"}


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"unknown file type '{path.suffix}'; use one of {sorted(FORMATS)}", str(path))
    return fmt


def read_text(path: str | Path) -> str:
    """Read a whole file as UTF-8; a bad byte is reported with its line number."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", str(path))
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}); re-encode the file as UTF-8",
            str(path),
            line,
        ) from None


def read_rows(
    path: str | Path,
    columns: Columns = Columns(),
    parse_label: LabelParser | None = None,
    label_required: bool = True,
) -> list[Row]:
    """Read one file into rows. ``label_required=False`` accepts files without labels (prediction)."""
    path = Path(path)
    fmt = file_format(path)
    text = read_text(path)
    if fmt == "text":
        records: Iterator[tuple[int, dict[str, Any]]] = (
            (n, {columns.text: line}) for n, line in enumerate(text.splitlines(), 1) if line.strip()
        )
        label_required = False
    elif fmt == "jsonl":
        records = jsonl_records(text, path)
    else:
        records = _delimited_records(text, path, "," if fmt == "csv" else "\t", columns, label_required)
    rows = [_to_row(record, n, path, columns, parse_label, label_required) for n, record in records]
    if not rows:
        raise DataError("no rows (the file is empty or holds only a header)", str(path))
    return rows


def jsonl_records(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"malformed JSON: {exc.msg} (column {exc.colno})", str(path), n) from None
        if not isinstance(record, dict):
            raise DataError(f"each line must be a JSON object, got {type(record).__name__}", str(path), n)
        yield n, record


def _delimited_records(
    text: str, path: Path, delimiter: str, columns: Columns, label_required: bool
) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError("no rows (the file is empty)", str(path)) from None
    header = [h.strip() for h in header]
    wanted = [c for c in (columns.text, columns.pair) if c] + ([columns.label] if label_required and columns.label else [])
    for name in wanted:
        if name not in header:
            raise DataError(f"missing column '{name}'; the header has {header}", str(path), 1, name)
    start = reader.line_num
    for cells in reader:
        line = start + 1
        start = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise DataError(f"expected {len(header)} fields as in the header, found {len(cells)}", str(path), line)
        yield line, dict(zip(header, cells))


def _to_row(
    record: dict[str, Any],
    line: int,
    path: Path,
    columns: Columns,
    parse_label: LabelParser | None,
    label_required: bool,
) -> Row:
    src = str(path)
    text = _text_field(record, columns.text, src, line)
    pair = _text_field(record, columns.pair, src, line) if columns.pair else None
    label = None
    if columns.label and columns.label in record and record[columns.label] not in (None, ""):
        raw = record[columns.label]
        if columns.label_delimiter and isinstance(raw, str):
            raw = [part.strip() for part in raw.split(columns.label_delimiter) if part.strip()]
        try:
            label = parse_label(raw) if parse_label else raw
        except (ValueError, TypeError) as exc:
            raise DataError(str(exc), src, line, columns.label) from None
    elif label_required and columns.label:
        what = "missing" if columns.label not in record else "empty"
        raise DataError(f"{what} label", src, line, columns.label)
    return Row(text=text, pair=pair, label=label, source=src, line=line)


def _text_field(record: dict[str, Any], name: str, src: str, line: int) -> str:
    if name not in record:
        raise DataError(f"missing field; the row has {sorted(record)}", src, line, name)
    value = record[name]
    if not isinstance(value, str):
        raise DataError(f"expected a string, got {type(value).__name__}", src, line, name)
    if not value.strip():
        raise DataError("empty text", src, line, name)
    return value
