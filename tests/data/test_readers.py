"""Every kind of bad input is a DataError naming file, line and field."""

from __future__ import annotations

import pytest

from langbert.data import Columns, read_rows
from langbert.errors import DataError
from langbert.tasks import create_task
from tests.conftest import write_csv, write_jsonl

single = create_task("text-classification").parse_label


def test_csv_tsv_jsonl_with_column_mapping(tmp_path):
    csv_path = write_csv(tmp_path / "a.csv", ["review", "stars", "other"], [["好", "pos", "x"], ["差,很差", "neg", "y"]])
    rows = read_rows(csv_path, Columns(text="review", label="stars"), single)
    assert [(r.text, r.label, r.line) for r in rows] == [("好", "pos", 2), ("差,很差", "neg", 3)]
    tsv_path = write_csv(tmp_path / "a.tsv", ["t", "label"], [["好", "1"], ["差", "0"]], delimiter="\t")
    assert [r.label for r in read_rows(tsv_path, Columns(text="t"), single)] == ["1", "0"]
    jsonl = write_jsonl(tmp_path / "a.jsonl", [{"q": "好", "a": "差", "label": 1}])
    (row,) = read_rows(jsonl, Columns(text="q", pair="a"), single)
    assert (row.text, row.pair, row.label, row.line) == ("好", "差", "1", 1)


def test_multi_label_from_list_and_delimiter(tmp_path):
    parse = create_task("multi-label-classification").parse_label
    jsonl = write_jsonl(tmp_path / "m.jsonl", [{"text": "好", "label": ["b", "a"]}])
    assert read_rows(jsonl, Columns(), parse)[0].label == ["a", "b"]
    csv_path = write_csv(tmp_path / "m.csv", ["text", "label"], [["好", "a|b"], ["差", "c"]])
    rows = read_rows(csv_path, Columns(label_delimiter="|"), parse)
    assert [r.label for r in rows] == [["a", "b"], ["c"]]


def _error(path, columns=Columns(), parse=single) -> DataError:
    with pytest.raises(DataError) as info:
        read_rows(path, columns, parse)
    return info.value


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes("text,label\n好,pos\n".encode() + "差,neg\n".encode("gbk"))
    err = _error(path)
    assert (err.path, err.line) == (str(path), 3) and "UTF-8" in str(err)


def test_missing_column(tmp_path):
    err = _error(write_csv(tmp_path / "m.csv", ["review", "label"], [["好", "pos"]]))
    assert (err.line, err.field) == (1, "text") and "missing column" in str(err)


def test_empty_text(tmp_path):
    err = _error(write_csv(tmp_path / "e.csv", ["text", "label"], [["好", "pos"], ["  ", "neg"]]))
    assert (err.line, err.field) == (3, "text") and "empty text" in str(err)


def test_malformed_json_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "好", "label": "pos"}\n{"text": "差", "label": \n', encoding="utf-8")
    err = _error(path)
    assert err.line == 2 and "malformed JSON" in str(err)


def test_file_with_no_rows(tmp_path):
    header_only = tmp_path / "h.csv"
    header_only.write_text("text,label\n", encoding="utf-8")
    assert "no rows" in str(_error(header_only))
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    assert "no rows" in str(_error(empty))


def test_wrong_field_count_and_bad_labels(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("text,label\n好,pos\n差,neg,extra\n", encoding="utf-8")
    assert _error(path).line == 3
    reg = write_jsonl(tmp_path / "r.jsonl", [{"text": "好", "label": 1.5}, {"text": "差", "label": "high"}])
    err = _error(reg, parse=create_task("regression").parse_label)
    assert (err.line, err.field) == (2, "label") and "number" in str(err)
    missing = write_jsonl(tmp_path / "l.jsonl", [{"text": "好"}])
    assert _error(missing).field == "label"


def test_unseen_dev_label_is_an_error(tmp_path):
    task = create_task("text-classification")
    train = read_rows(write_csv(tmp_path / "t.csv", ["text", "label"], [["好", "pos"], ["差", "neg"]]), Columns(), task.parse_label)
    dev = read_rows(write_csv(tmp_path / "d.csv", ["text", "label"], [["好", "pos"], ["一般", "neutral"]]), Columns(), task.parse_label)
    task.fit(train)
    with pytest.raises(DataError) as info:
        task.check(dev, "dev")
    assert (info.value.path, info.value.line, info.value.field) == (str(tmp_path / "d.csv"), 3, "label")
    assert "neutral" in str(info.value)
