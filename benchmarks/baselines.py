"""Baselines on zh-sentiment test: char TF-IDF + LR, and the embedded English model fine-tuned as-is.

These are the numbers language adaptation has to beat. Usage:
    python benchmarks/baselines.py [--epochs 1] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import row, write_rows  # noqa: E402

from langbert.evaluation.baselines import tfidf_logreg  # noqa: E402
from langbert.config import load_recipe  # noqa: E402
from langbert.recipes import recipe_path  # noqa: E402
from langbert.training import prepare_task, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--learning-rate", type=float, default=None, help="default: the demo recipe's")
    parser.add_argument("--work", default="benchmarks/work/baselines")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    overrides = {"output_dir": f"{args.work}/as-is-seed{args.seed}-lr{args.learning_rate}", "epochs": args.epochs,
                 "seed": args.seed, "progress": False}
    if args.learning_rate:
        overrides["learning_rate"] = args.learning_rate
    config = load_recipe(recipe_path("zh-sentiment-demo"), overrides)
    _, splits = prepare_task(config)

    tfidf = tfidf_logreg(splits.train, splits.test, seed=args.seed)
    rows = [row("zh-sentiment", "tfidf-lr", "test_accuracy", tfidf["accuracy"], tfidf["wall_seconds"])]
    print("tfidf-lr", tfidf)

    start = time.perf_counter()
    out = train(config, splits=splits)
    wall = time.perf_counter() - start
    metrics = json.loads((out / "langbert.json").read_text(encoding="utf-8"))["metrics"]
    rows.append(row("zh-sentiment", "as-is", "test_accuracy", metrics["test"]["accuracy"], wall,
                    seed=args.seed, epochs=args.epochs, learning_rate=config.learning_rate,
                    pooling=json.loads((out / "langbert.json").read_text(encoding="utf-8"))["task"]["options"]["pooling"]))
    print("as-is", metrics["test"], f"{wall:.0f}s")
    print(write_rows("baselines", rows))


if __name__ == "__main__":
    main()
