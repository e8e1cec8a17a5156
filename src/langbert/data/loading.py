"""From a ``DataConfig`` to train/dev/test rows, whatever the source."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Callable

from ..config import DataConfig
from .builtin import get_builtin
from .readers import Columns, LabelParser, read_rows
from .rows import Row, fingerprint
from .split import split_of

logger = logging.getLogger(__name__)


@dataclass
class Splits:
    train: list[Row]
    dev: list[Row]
    test: list[Row] = field(default_factory=list)
    source: str = ""

    def fingerprints(self) -> dict[str, str]:
        return {name: fingerprint(rows) for name, rows in self.items()}

    def items(self) -> list[tuple[str, list[Row]]]:
        return [(n, r) for n, r in (("train", self.train), ("dev", self.dev), ("test", self.test)) if r]


def columns_of(cfg: DataConfig) -> Columns:
    return Columns(cfg.text_column, cfg.pair_column, cfg.label_column, cfg.label_delimiter)


def load_splits(cfg: DataConfig, read: Callable[..., list[Row]] | None = None,
                parse_label: LabelParser | None = None) -> Splits:
    """``read(path, columns)`` reads a user file (a Task's reader); ``parse_label`` normalises built-in labels."""
    read = read or (lambda path, columns: read_rows(path, columns, parse_label))
    if cfg.dataset is not None:
        data = get_builtin(cfg.dataset).load()
        rows = data.splits
        if parse_label is not None:
            rows = {s: [_relabel(r, parse_label) for r in split_rows] for s, split_rows in rows.items()}
        splits = Splits(rows["train"], rows["dev"], rows["test"], source=f"built-in:{cfg.dataset}")
    else:
        columns = columns_of(cfg)
        train = read(cfg.train, columns)
        if cfg.dev:
            dev = read(cfg.dev, columns)
        else:
            # Hold out by hash, not by position: a sorted file would otherwise give a skewed dev set.
            held = [split_of(_key(r), dev_percent=10, test_percent=0) == "dev" for r in train]
            dev = [r for r, h in zip(train, held) if h]
            train = [r for r, h in zip(train, held) if not h]
            logger.info("no dev file: %d of %d rows of %s held out as dev (10%% by text hash; --dev sets one)",
                        len(dev), len(dev) + len(train), cfg.train)
        test = read(cfg.test, columns) if cfg.test else []
        splits = Splits(train, dev, test, source=str(cfg.train))
    if cfg.max_train_samples is not None:
        splits.train = hash_subset(splits.train, cfg.max_train_samples)
    return splits


def hash_subset(rows: list[Row], n: int) -> list[Row]:
    """The first ``n`` rows in the order of a hash of their text: a fixed random subset, so a subset of a
    file sorted by label stays mixed and every run (and benchmark) draws the same rows."""
    return sorted(rows, key=lambda r: hashlib.sha1(_key(r).encode("utf-8")).hexdigest())[:n]


def _key(row: Row) -> str:
    return row.text if row.pair is None else f"{row.text}\t{row.pair}"


def _relabel(row: Row, parse_label: LabelParser) -> Row:
    return Row(row.text, parse_label(row.label), row.pair, row.source, row.line)
