"""load_splits: a dev split held out of the training file when none is given, without leaks."""

from __future__ import annotations

import logging

from langbert.config import DataConfig
from langbert.data.loading import load_splits


def test_without_a_dev_file_a_tenth_is_held_out_by_text_and_said_so(tmp_path, caplog):
    path = tmp_path / "train.csv"
    texts = [f"text number {i}" for i in range(500)]
    # Every text twice, the file sorted by label: a positional split would leak and skew.
    lines = [f"{t},{'a' if i < 250 else 'b'}" for i, t in enumerate(texts) for _ in range(2)]
    path.write_text("text,label\n" + "\n".join(lines) + "\n", encoding="utf-8")

    with caplog.at_level(logging.INFO, logger="langbert.data.loading"):
        splits = load_splits(DataConfig(dataset=None, train=str(path)))

    assert len(splits.train) + len(splits.dev) == 1000
    assert 60 <= len(splits.dev) <= 140  # 10% of 500 texts, two rows each
    assert not {r.text for r in splits.dev} & {r.text for r in splits.train}
    assert {r.label for r in splits.dev} == {"a", "b"}
    assert f"{len(splits.dev)} of 1000 rows of {path} held out as dev" in caplog.text
    again = load_splits(DataConfig(dataset=None, train=str(path)))
    assert [r.text for r in again.dev] == [r.text for r in splits.dev]


def test_max_train_samples_takes_the_same_mixed_subset_every_time(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\n" + "\n".join(f"t{i},{'a' if i < 100 else 'b'}" for i in range(200)) + "\n",
                    encoding="utf-8")
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\nx,a\ny,b\n", encoding="utf-8")
    config = DataConfig(dataset=None, train=str(path), dev=str(dev), max_train_samples=50)
    first, second = load_splits(config), load_splits(config)
    assert [r.text for r in first.train] == [r.text for r in second.train]
    assert len(first.train) == 50 and {r.label for r in first.train} == {"a", "b"}
    assert len(first.dev) == 2
