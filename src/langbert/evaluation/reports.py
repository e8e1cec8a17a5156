"""Metric reports shared by tasks: numbers in eval.json, a Markdown report a person reads, and plots."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifacts import atomic_write_text
from .plots import plot_report


@dataclass
class Report:
    metrics: dict[str, float]
    """Headline numbers (fractions, not percentages)."""
    table: list[dict[str, Any]] = field(default_factory=list)
    """Per-class (or per-type) rows: label, precision, recall, f1, support."""
    labels: list[str] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    """Rows are true labels, columns predicted labels, in ``labels`` order."""
    scatter: tuple[list[float], list[float]] | None = None
    """(true, predicted) for regression."""
    outcomes: dict[str, dict[str, int]] | None = None
    """Per label, how its spans fared: ``found`` exactly and each kind of error (sequence labelling)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metrics": self.metrics, "per_class": self.table}
        if self.confusion is not None:
            out["confusion"] = {"labels": self.labels, "matrix": self.confusion}
        return out


def single_label_report(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> Report:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    ids = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    table = [
        {"label": labels[i], "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i in ids
    ]
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": _macro_f1(y_true, y_pred, labels=ids),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=ids, average="weighted", zero_division=0)),
        "examples": len(y_true),
    }
    confusion = confusion_matrix(y_true, y_pred, labels=ids).tolist()
    return Report(metrics, table, list(labels), confusion)


def _macro_f1(y_true, y_pred, **kwargs) -> float:
    """Mean F1 over the classes that occur in the gold labels or the predictions. A class that is in neither
    (a rare label missing from a small dev split) has no F1; counting it as 0 would pull macro-F1 down with
    nothing wrong, 0.5 at 100% accuracy for a two-class model whose dev split holds one class. A class only
    predicted still counts, as 0."""
    from sklearn.metrics import f1_score

    value = f1_score(y_true, y_pred, average="macro", zero_division=np.nan, **kwargs)
    return 0.0 if np.isnan(value) else float(value)


def multi_label_report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> Report:
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    table = [
        {"label": labels[i], "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i in range(len(labels))
    ]
    metrics = {
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": _macro_f1(y_true, y_pred),
        "subset_accuracy": float(np.mean(np.all(y_true == y_pred, axis=1))),
        "examples": int(len(y_true)),
    }
    return Report(metrics, table, list(labels))


def regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> Report:
    from scipy.stats import pearsonr, spearmanr

    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    constant = np.ptp(y_true) == 0 or np.ptp(y_pred) == 0
    metrics = {
        "pearson": 0.0 if constant else float(pearsonr(y_true, y_pred)[0]),
        "spearman": 0.0 if constant else float(spearmanr(y_true, y_pred)[0]),
        "mse": float(np.mean((y_true - y_pred) ** 2)),
        "mae": float(np.mean(np.abs(y_true - y_pred))),
        "examples": int(len(y_true)),
    }
    return Report(metrics, scatter=(y_true.tolist(), y_pred.tolist()))


TABLE_COLUMNS = ("label", "precision", "recall", "f1", "support")


def write_reports(reports: dict[str, Report], out_dir: str | Path, title: str = "", note: str = "") -> dict[str, Path]:
    """Write ``eval.json``, ``eval.md`` and one plot per split; returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {"json": out / "eval.json", "markdown": out / "eval.md"}
    atomic_write_text(written["json"], json.dumps({s: r.to_dict() for s, r in reports.items()}, indent=2))
    lines = [f"# Evaluation{': ' + title if title else ''}", "", *([note, ""] if note else [])]
    for split, report in reports.items():
        lines += [f"## {split}", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in report.metrics.items()]
        if report.table:
            # A task's own columns (e.g. sequence labelling's error counts) follow the common ones.
            extra = [k for k in report.table[0] if k not in TABLE_COLUMNS]
            columns = [*TABLE_COLUMNS, *extra]
            lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(_fmt(row[k]) for k in columns) + " |" for row in report.table]
        plot = plot_report(report, out, split)
        if plot is not None:
            written[f"plot_{split}"] = plot
            lines += ["", f"![{split}]({plot.name})"]
        lines.append("")
    atomic_write_text(written["markdown"], "\n".join(lines))
    return written


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
