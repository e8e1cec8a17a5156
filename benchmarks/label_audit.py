"""How many zh-sentiment test labels can a reader confirm? A blind reading of 500 test texts.

`zh_sentiment_label_audit.jsonl` (next to this script) holds 500 texts drawn at random from the test split
(two draws, 300 and 200, neither repeating a text).
They were read in random order with no label, prediction, or split position in view. Each got a
`reader` verdict: "positive", "negative", or null. Null means the line alone gives no polarity: a hotel's
reply, a fragment such as "餐饮：", a neutral fact, or praise and complaint in balance. `seen_with_label`
marks the texts that had been looked at with their label before the reading (an error listing); the
script reports the reader's figures with and without them.

The corpus labels lines by the file they came from (a negative review's "优点：..." line is "negative"),
so three things are counted: texts whose label the reader confirms, texts it contradicts, and undecidable
texts. From these follow two bounds on test accuracy: a system that always agrees with the reader and
guesses the undecidable texts at chance, and one that also gets every undecidable text right. TF-IDF + LR,
and `--model` (a fine-tuned langbert text classifier), are scored on each part.

Usage:
    python benchmarks/label_audit.py [--model runs/zh-sentiment]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import row, write_rows  # noqa: E402

AUDIT = Path(__file__).parent / "zh_sentiment_label_audit.jsonl"
DATASET = "zh-sentiment-audit"
VERDICTS = ("positive", "negative", None)


def read_audit(path: Path, gold_of: dict[str, str]) -> list[dict]:
    """The audit's entries, each with the split's label as ``gold``; a text not in the split is an error,
    since the figures would then describe other data."""
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        entry = json.loads(line)
        if entry.get("reader", "missing") not in VERDICTS:
            raise SystemExit(f"{path}:{n}: field 'reader' must be one of {VERDICTS}, got {entry.get('reader')!r}")
        if entry["text"] not in gold_of:
            raise SystemExit(f"{path}:{n}: field 'text' is not in the zh-sentiment test split (data changed?)")
        entries.append({**entry, "gold": gold_of[entry["text"]]})
    return entries


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of a proportion k/n; unlike the normal approximation, valid near 0 and 1."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def part(entry: dict) -> str:
    if entry["reader"] is None:
        return "undecidable"
    return "confirmed" if entry["reader"] == entry["gold"] else "disputed"


def reader_tally(entries: list[dict]) -> dict[str, float]:
    n = len(entries)
    counts = {p: sum(part(e) == p for e in entries) for p in ("confirmed", "disputed", "undecidable")}
    shares = {p: c / n for p, c in counts.items()}
    return {
        "texts": n, **{f"{p}_texts": c for p, c in counts.items()}, **shares,
        **{f"{p}_ci": wilson(c, n) for p, c in counts.items()},
        "ceiling_undecidable_at_chance": shares["confirmed"] + shares["undecidable"] / 2,
        "ceiling_undecidable_all_right": shares["confirmed"] + shares["undecidable"],
    }


def system_tally(entries: list[dict], predicted: list[str]) -> dict[str, float]:
    """Accuracy against the corpus labels on each part, and how often the system sides with the reader
    where reader and label disagree."""
    def share(ok, where):
        picked = [ok(e, p) for e, p in zip(entries, predicted) if where(e)]
        return sum(picked) / len(picked) if picked else float("nan")

    right = lambda e, p: p == e["gold"]  # noqa: E731
    return {
        "accuracy_on_sample": share(right, lambda e: True),
        "accuracy_where_confirmed": share(right, lambda e: part(e) == "confirmed"),
        "accuracy_where_undecidable": share(right, lambda e: part(e) == "undecidable"),
        "sides_with_reader_where_disputed": share(lambda e, p: p == e["reader"], lambda e: part(e) == "disputed"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a fine-tuned langbert text classifier to score beside TF-IDF + LR")
    parser.add_argument("--audit", type=Path, default=AUDIT)
    args = parser.parse_args()

    from langbert.evaluation.baselines import fit_tfidf_logreg
    from langbert.data.builtin import get_builtin

    splits = get_builtin("zh-sentiment").load().splits
    entries = read_audit(args.audit, {r.text: r.label for r in splits["test"]})
    texts = [e["text"] for e in entries]
    rows = []
    for system, subset in (("reader", entries), ("reader-unseen", [e for e in entries if not e["seen_with_label"]])):
        tally = reader_tally(subset)
        print(system, json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in tally.items()}))
        for metric in ("confirmed", "disputed", "undecidable", "ceiling_undecidable_at_chance",
                       "ceiling_undecidable_all_right"):
            extra = ({"count": tally[f"{metric}_texts"], "ci95": [round(x, 4) for x in tally[f"{metric}_ci"]]}
                     if f"{metric}_ci" in tally else {})
            rows.append(row(DATASET, system, metric, tally[metric], None, texts=tally["texts"], **extra))

    systems = {"tfidf-lr": (list(fit_tfidf_logreg(splits["train"]).predict(texts)), {})}
    if args.model:
        from langbert import Predictor

        systems["langbert"] = ([p["label"] for p in Predictor.load(args.model).predict(texts)], {"model": args.model})
    for system, (predicted, extra) in systems.items():
        tally = system_tally(entries, predicted)
        print(system, json.dumps({k: round(v, 4) for k, v in tally.items()}))
        rows += [row(DATASET, system, metric, value, None, texts=len(entries), **extra)
                 for metric, value in tally.items()]
    print(write_rows("label_audit", rows))


if __name__ == "__main__":
    main()
