"""The README's main job: fine-tune the embedded model on ``zh-sentiment`` and put it next to a baseline."""

from __future__ import annotations

import time
from pathlib import Path

from .baselines import tfidf_logreg
from .recipes import recipe_path
from .config import load_recipe
from .training import prepare_task, train


def run_demo(output_dir: str = "runs/demo", max_steps: int | None = None) -> list[dict]:
    overrides = {"output_dir": output_dir}
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    config = load_recipe(recipe_path("zh-sentiment-demo"), overrides)
    _, splits = prepare_task(config)

    baseline = tfidf_logreg(splits.train, splits.test)
    baseline_dev = tfidf_logreg(splits.train, splits.dev)
    start = time.perf_counter()
    out = train(config, splits=splits)
    seconds = time.perf_counter() - start

    import json

    metrics = json.loads((Path(out) / "langbert.json").read_text(encoding="utf-8"))["metrics"]
    rows = [
        {"system": "tfidf-lr (char 1-3-gram)", "dev_accuracy": baseline_dev["accuracy"],
         "test_accuracy": baseline["accuracy"], "seconds": baseline["wall_seconds"]},
        {"system": f"{config.model} fine-tuned as-is", "dev_accuracy": metrics["dev"]["accuracy"],
         "test_accuracy": metrics["test"]["accuracy"], "seconds": seconds},
    ]
    print(f"\nzh-sentiment ({len(splits.train)} train / {len(splits.dev)} dev / {len(splits.test)} test)")
    print(f"{'system':<40} {'dev acc':>8} {'test acc':>9} {'seconds':>8}")
    for r in rows:
        print(f"{r['system']:<40} {r['dev_accuracy']:>8.2%} {r['test_accuracy']:>9.2%} {r['seconds']:>8.0f}")
    print(f"\nmodel, eval.md and confusion.png in {out}/")
    return rows
