"""The pictures a person would rather see than a table: confusion matrices, regression scatter, sequence
labelling's errors per type, and the training curve with its best point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .direction import LOWER_IS_BETTER

if TYPE_CHECKING:  # reports writes the plots; the type alone is needed here
    from .reports import Report


def plot_report(report: Report, out: Path, split: str) -> Path | None:
    if report.confusion is None and report.scatter is None and not report.outcomes:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if report.confusion is not None:
        matrix = np.asarray(report.confusion)
        n = len(report.labels)
        fig, ax = plt.subplots(figsize=(2.2 + 0.7 * n, 1.8 + 0.6 * n))
        # Row-normalised colour (recall per true class) with raw counts written in: readable at any class balance.
        norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{matrix[i, j]}\n{norm[i, j]:.0%}", ha="center", va="center",
                        color="white" if norm[i, j] > 0.6 else "black", fontsize=9)
        ax.set_xticks(range(n), report.labels, rotation=45, ha="right")
        ax.set_yticks(range(n), report.labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        acc = report.metrics.get("accuracy")
        ax.set_title(f"{split}: confusion" + (f" (accuracy {acc:.1%})" if acc is not None else ""))
        path = out / (f"confusion_{split}.png" if split != "test" else "confusion.png")
    elif report.outcomes:
        fig, ax = _outcome_bars(plt, report, split)
        path = out / (f"errors_{split}.png" if split != "test" else "errors.png")
    else:
        y, yhat = report.scatter
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.scatter(y, yhat, s=8, alpha=0.5)
        lo, hi = min(min(y), min(yhat)), max(max(y), max(yhat))
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
        ax.set_title(f"{split}: pearson {report.metrics['pearson']:.3f}")
        path = out / (f"scatter_{split}.png" if split != "test" else "scatter.png")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_training(metrics_jsonl: str | Path, metric: str, out: str | Path, title: str = "training") -> Path | None:
    """Training loss and the dev ``metric`` against the step, from ``metrics.jsonl``: how the run went,
    where the best checkpoint sits, whether it was still learning. A dev loss shares the training loss's
    axis (one scale for both); any other metric gets its own. None when nothing was logged."""
    lines = [json.loads(l) for l in Path(metrics_jsonl).read_text(encoding="utf-8").splitlines() if l.strip()]
    train = [(l["step"], l["loss"]) for l in lines if "loss" in l]
    dev = sorted({l["step"]: l[f"eval_{metric}"] for l in lines if f"eval_{metric}" in l}.items())
    if not train and not dev:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    if train:
        ax.plot(*zip(*train), color="#4a72b0", lw=1.2, label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss" if metric == "loss" else "training loss")
    if dev:
        dev_ax = ax if metric == "loss" else ax.twinx()
        dev_ax.plot(*zip(*dev), color="#c43c35", marker="o", lw=1.2, label=f"dev {metric}")
        best = (min if metric in LOWER_IS_BETTER else max)(dev, key=lambda point: point[1])
        dev_ax.annotate(f"best {best[1]:.4g}", best, textcoords="offset points", xytext=(0, 8), ha="center",
                        fontsize=8, color="#c43c35")
        dev_ax.margins(y=0.15)
        if dev_ax is not ax:
            dev_ax.set_ylabel(f"dev {metric}")
        handles = ax.get_legend_handles_labels()[0] + (dev_ax.get_legend_handles_labels()[0] if dev_ax is not ax else [])
        ax.legend(handles=handles, fontsize=8, frameon=False, loc="center right")
    ax.set_title(title)
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# The gold-side errors warm to cold, spurious predictions grey.
_ERROR_COLOURS = {"missed": "#c43c35", "wrong_bounds": "#e8912d", "wrong_type": "#8e5bb5", "spurious": "#9a9a9a"}


def _outcome_bars(plt: Any, report: Report, split: str) -> tuple[Any, Any]:
    """The errors of each label (the 30 with most), stacked by kind; found spans and F1 in the label.
    Found spans are left out of the bars: at 95% F1 they would dwarf the errors a reader looks for."""
    outcomes = report.outcomes
    errors_of = lambda k: sum(v for kind, v in outcomes[k].items() if kind != "found")  # noqa: E731
    labels = sorted(outcomes, key=lambda k: -errors_of(k))[:30]
    rows = {row["label"]: row for row in report.table}
    fig, ax = plt.subplots(figsize=(7.5, 1.4 + 0.42 * len(labels)))
    left = np.zeros(len(labels))
    for kind, colour in _ERROR_COLOURS.items():
        values = np.array([outcomes[k].get(kind, 0) for k in labels], dtype=float)
        ax.barh(range(len(labels)), values, left=left, color=colour, label=kind.replace("_", " "))
        left += values
    names = [f"{k}: F1 {rows[k]['f1']:.1%}, {outcomes[k]['found']:,} of {rows[k]['support']:,} found" if k in rows
             else k for k in labels]
    ax.set_yticks(range(len(labels)), names)
    ax.invert_yaxis()
    ax.set_xlabel("spans")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    headline = report.metrics.get("entity_f1")
    ax.set_title(f"{split}: errors per type" + (f" (F1 {headline:.1%})" if headline is not None else ""))
    return fig, ax
