"""``langbert data check``: the validation training would do, plus a summary worth reading first."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from .coverage import coverage
from .rows import Row

# Above this share of [UNK] tokens the model reads too little of the text for fine-tuning alone to fix it.
UNK_HINT_AT = 0.05


def summarize(rows: Sequence[Row], tokenizer: Any = None, max_length: int | None = None,
              task: Any = None) -> dict[str, Any]:
    """Counts worth reading before training; the labels are summarised by ``task`` (its ``label_summary``)."""
    keys = [(r.text, r.pair) for r in rows]
    counts = Counter(keys)
    summary: dict[str, Any] = {
        "rows": len(rows),
        "duplicate_rows": sum(c - 1 for c in counts.values() if c > 1),
        "chars_per_text": quantiles([len(r.text) for r in rows]),
    }
    conflicting = _conflicting(rows)
    if conflicting:
        summary["texts_with_conflicting_labels"] = conflicting
    summary.update(task.label_summary(rows) if task is not None else label_counts(rows))
    if tokenizer is not None and max_length is not None:
        pairs = [r.pair for r in rows] if rows and rows[0].pair is not None else None
        lengths = tokenizer([r.text for r in rows], pairs, truncation=False, return_length=True)["length"]
        summary["tokens_per_text"] = quantiles(lengths)
        summary[f"over_max_length_{max_length}"] = sum(n > max_length for n in lengths)
        unk_rate = coverage(tokenizer, [t for r in rows for t in (r.text, r.pair) if t])["unk_rate"]
        summary["unk_rate"] = unk_rate
        hint = vocabulary_hint(unk_rate)
        if hint:
            summary["hint"] = hint
    return summary


def vocabulary_hint(unk_rate: float | None) -> str | None:
    """What to do where a model's vocabulary reads too little of a text (None where it reads enough)."""
    if unk_rate is None or unk_rate < UNK_HINT_AT:
        return None
    return (f"{unk_rate:.0%} of the tokens are [UNK]: the model's vocabulary does not cover this text; "
            "`langbert adapt --corpus ...` gives it one for this language")


def label_counts(rows: Sequence[Row]) -> dict[str, Any]:
    """Rows per label (a list is several labels, a span ``(start, end, type)`` counts for its type), or
    the range of numeric labels."""
    labels = [r.label for r in rows if r.label is not None]
    if labels and all(isinstance(v, float) for v in labels):
        return {"label_range": {"min": min(labels), "max": max(labels), "mean": sum(labels) / len(labels)}}
    if not labels:
        return {}
    flat = [v[2] if isinstance(v, tuple) else v for label in labels for v in (label if isinstance(label, list) else [label])]
    return {"labels": dict(sorted(Counter(flat).items(), key=lambda kv: (-kv[1], kv[0])))}


def quantiles(values: Sequence[int]) -> dict[str, int]:
    ordered = sorted(values)
    if not ordered:
        return {}
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"min": ordered[0], "median": pick(0.5), "p99": pick(0.99), "max": ordered[-1]}


def _conflicting(rows: Sequence[Row]) -> int:
    seen: dict[tuple, Any] = {}
    bad = set()
    for r in rows:
        key = (r.text, r.pair)
        label = tuple(r.label) if isinstance(r.label, list) else r.label
        if key in seen and seen[key] != label:
            bad.add(key)
        seen.setdefault(key, label)
    return len(bad)
