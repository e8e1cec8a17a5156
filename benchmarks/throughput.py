"""Training throughput on a zh-sentiment subset, side by side in one run: real (non-padding) tokens/s.

(a) HF Trainer as a user sets it up (DataCollatorWithPadding, default arguments), (b) HF Trainer at its
best (group_by_length, bf16), (c) `langbert train` with its defaults. Same model (embedded MiniLM as-is),
same rows, batch size and steps (``--epochs``, default one; the as-is model needs a few hundred steps
before its dev accuracy says anything: at ~100 steps three seeds of it spread from 54% to 66%). MFU is
against the bf16 matmul peak measured in this run, and against the faster of the bf16 and fp32 peaks (on
CPUs without native bf16, fp32 is the real ceiling and langbert's default stays in fp32).

    python benchmarks/throughput.py [--samples 3200] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _results import row, write_rows  # noqa: E402

from langbert.config import DataConfig, TrainConfig, resolve_model  # noqa: E402
from langbert.data import get_builtin  # noqa: E402
from langbert.data.loading import hash_subset  # noqa: E402
from langbert.kernels.hardware import bf16_native  # noqa: E402
from langbert.training import train  # noqa: E402


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 20) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def hf_trainer(rows, dev, best: bool, work: Path, epochs: int) -> tuple[float, float]:
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    path = resolve_model("embedded")
    tok = AutoTokenizer.from_pretrained(path)
    labels = {"negative": 0, "positive": 1}

    def features(rs):
        enc = tok([r.text for r in rs], truncation=True, max_length=128)
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "token_type_ids": enc["token_type_ids"][i], "labels": labels[r.label]} for i, r in enumerate(rs)]

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    extra = {"train_sampling_strategy": "group_by_length", "bf16": True} if best else {}
    args = TrainingArguments(output_dir=str(work), per_device_train_batch_size=32, num_train_epochs=epochs,
                             report_to="none", save_strategy="no", use_cpu=True, disable_tqdm=True, seed=0, **extra)
    trainer = Trainer(model=model, args=args, train_dataset=features(rows), processing_class=tok,
                      data_collator=DataCollatorWithPadding(tok))
    runtime = trainer.train().metrics["train_runtime"]
    logits = trainer.predict(features(dev)).predictions
    accuracy = float(np.mean(logits.argmax(-1) == np.array([labels[r.label] for r in dev])))
    return runtime, accuracy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=3200)
    # Whole epochs: the real tokens trained on are then exactly real_tokens * epochs.
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--work", default="benchmarks/work/throughput")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(args.work)
    splits = get_builtin("zh-sentiment").load().splits
    subset = hash_subset(splits["train"], args.samples)
    dev = splits["dev"]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model("embedded"))
    real_tokens = sum(len(x) for x in tok([r.text for r in subset], truncation=True, max_length=128)["input_ids"])
    peak = matmul_peak(torch.bfloat16)
    fp32_peak = matmul_peak(torch.float32)
    print(f"matmul peak: bf16 {peak / 1e9:.0f} GFLOP/s, fp32 {fp32_peak / 1e9:.0f} GFLOP/s", flush=True)
    rows: list[dict] = []
    results = {}
    for system, best in (("hf-trainer-default", False), ("hf-trainer-best", True)):
        runtime, acc = hf_trainer(subset, dev, best, work / system, args.epochs)
        results[system] = real_tokens * args.epochs / runtime
        rows.append(row("zh-sentiment", system, "real_tokens_per_s", round(results[system], 1), runtime,
                        dev_accuracy=round(acc, 4), samples=args.samples, epochs=args.epochs))
        write_rows("throughput", rows)
        print(system, f"{results[system]:.0f} real tokens/s, dev acc {acc:.4f}", flush=True)

    out = work / "langbert"
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    config = TrainConfig(output_dir=str(out), data=DataConfig(dataset="zh-sentiment", max_train_samples=args.samples),
                         epochs=args.epochs, eval_steps=10_000, progress=False, seed=0)
    train(config)
    logs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    # train_runtime includes the dev evaluation langbert runs at the end of the epoch; the HF runs do not
    # evaluate inside train(), so it is taken out (the checkpoint save stays in).
    eval_seconds = sum(l.get("eval_runtime", 0.0) for l in logs)
    runtime = next(l["train_runtime"] for l in logs if "train_runtime" in l) - eval_seconds
    meta = json.loads((out / "langbert.json").read_text())
    results["langbert"] = real_tokens * args.epochs / runtime
    from transformers import AutoModel

    body = AutoModel.from_pretrained(resolve_model("embedded"))
    params = sum(p.numel() for n, p in body.named_parameters() if "embeddings" not in n)
    mean_len = real_tokens / len(subset)
    layers, hidden = body.config.num_hidden_layers, body.config.hidden_size
    flops_per_token = 6 * params + 12 * layers * hidden * mean_len  # dense + attention, forward + backward
    mfu = results["langbert"] * flops_per_token / peak
    rows.append(row("zh-sentiment", "langbert", "real_tokens_per_s", round(results["langbert"], 1), runtime,
                    dev_accuracy=round(meta["metrics"]["dev"]["accuracy"], 4), samples=args.samples, epochs=args.epochs,
                    eval_seconds_excluded=round(eval_seconds, 1),
                    ratio_vs_default=round(results["langbert"] / results["hf-trainer-default"], 2),
                    ratio_vs_best=round(results["langbert"] / results["hf-trainer-best"], 2)))
    rows.append(row("zh-sentiment", "langbert", "mfu_bf16", round(mfu, 4), runtime, bf16_peak_gflops=round(peak / 1e9, 1),
                    fp32_peak_gflops=round(fp32_peak / 1e9, 1)))
    # Where bf16 is emulated (no AVX512-BF16/AMX) the fp32 peak is the machine's real ceiling.
    best_peak = max(peak, fp32_peak)
    rows.append(row("zh-sentiment", "langbert", "mfu_best_peak", round(results["langbert"] * flops_per_token / best_peak, 4),
                    runtime, peak_gflops=round(best_peak / 1e9, 1), bf16_autocast=bf16_native()))
    write_rows("throughput", rows)
    print("langbert", f"{results['langbert']:.0f} real tokens/s, MFU {mfu:.1%} of {peak / 1e9:.0f} GFLOP/s bf16")


if __name__ == "__main__":
    main()
