"""Full fine-tuning vs LoRA vs AdaLoRA on zh-sentiment with an adapted model: test accuracy, trainable
parameters, seconds per epoch, checkpoint size on disk. Equal data, epochs and seed for every row.

    python benchmarks/peft_benchmark.py --model benchmarks/work/adaptation/pretrain-word [--train-samples 4000]
"""

# Not named peft.py: benchmark scripts put this folder first on sys.path, where it would shadow the peft package.
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import row, write_rows  # noqa: E402

from langbert.config import DataConfig, TrainConfig  # noqa: E402
from langbert.training import train  # noqa: E402

WEIGHTS = ("model.safetensors", "adapter_model.safetensors", "crf.safetensors")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--work", default="benchmarks/work/peft")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows: list[dict] = []
    # LoRA's few parameters take a larger step than full fine-tuning's (the usual practice, stated here).
    for system, peft, lr in (("full", "none", 1e-4), ("lora", "lora", 1e-3), ("adalora", "adalora", 1e-3)):
        out = Path(args.work) / system
        if not (out / "langbert.json").exists():
            start = time.perf_counter()
            train(TrainConfig(model=args.model, output_dir=str(out), peft=peft, learning_rate=lr, epochs=args.epochs,
                              data=DataConfig(dataset="zh-sentiment", max_train_samples=args.train_samples),
                              eval_steps=10_000, progress=False, seed=args.seed))
            meta = json.loads((out / "langbert.json").read_text())
            meta["wall_seconds"] = time.perf_counter() - start
            (out / "langbert.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False))
        meta = json.loads((out / "langbert.json").read_text())
        logs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
        runtime = next(l["train_runtime"] for l in logs if "train_runtime" in l)
        size = sum((out / f).stat().st_size for f in WEIGHTS if (out / f).exists()) / 2**20
        extra = {"train_samples": args.train_samples or "all", "epochs": args.epochs, "learning_rate": lr}
        for metric, value in (("test_accuracy", meta["metrics"]["test"]["accuracy"]),
                              ("trainable_percent", meta["parameters"]["trainable_percent"]),
                              ("checkpoint_mb", size), ("seconds_per_epoch", runtime / args.epochs)):
            rows.append(row("zh-sentiment", system, metric, round(float(value), 4), meta["wall_seconds"], **extra))
        write_rows("peft", rows)
        print(system, {r["metric"]: r["value"] for r in rows if r["system"] == system}, flush=True)


if __name__ == "__main__":
    main()
