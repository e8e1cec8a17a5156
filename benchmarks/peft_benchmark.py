"""Full fine-tuning vs LoRA vs AdaLoRA vs IA3 on zh-sentiment with an adapted model: test accuracy, trainable
parameters, seconds per epoch, checkpoint size on disk. Equal data, epochs and seed for every row.

    python benchmarks/peft_benchmark.py --model benchmarks/work/adaptation/pretrain-word [--train-samples 4000]
        [--search-trials 20 --search-samples 500 --search-dev 400]

With ``--search-trials`` it also runs ``langbert search`` on a stated subset (train and dev rows by text
hash) and compares the best trial with the hand-written recipe (``zh-sentiment-demo``) on the same data:
rows ``search-best`` and ``default``, metric ``dev_accuracy``.
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
from _results import RESULTS, row, run_once, write_rows  # noqa: E402

from langbert.config import DataConfig, TrainConfig  # noqa: E402
from langbert.training import train  # noqa: E402

WEIGHTS = ("model.safetensors", "adapter_model.safetensors", "crf.safetensors")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--peft-learning-rate", type=float, default=None, help="default: TrainConfig's")
    p.add_argument("--work", default="benchmarks/work/peft")
    p.add_argument("--search-trials", type=int, default=0)
    p.add_argument("--search-samples", type=int, default=500)
    p.add_argument("--search-dev", type=int, default=400)
    p.add_argument("--skip-peft", action="store_true", help="only the search rows")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows: list[dict] = []
    # Rows of the part not run this time (the PEFT comparison, or the search) are kept from the earlier run.
    earlier = json.loads((RESULTS / "peft.json").read_text()) if (RESULTS / "peft.json").exists() else []
    if args.skip_peft:
        rows = [r for r in earlier if r["system"] not in ("default", "search-best")]
    kept_search = [] if args.search_trials else [r for r in earlier if r["system"] in ("default", "search-best")]
    # Full fine-tuning as the shipped zh-sentiment recipes do it (5e-5, embeddings at 10x); each peft method
    # with its defaults (peft_learning_rate, peft_embeddings: auto), and AdaLoRA with the embeddings frozen:
    # what a method without an embedding adapter did on an adapted vocabulary before ``auto``.
    systems = () if args.skip_peft else (("full", "none", "auto"), ("lora", "lora", "auto"),
                                         ("adalora", "adalora", "auto"), ("ia3", "ia3", "auto"),
                                         ("adalora-frozen-embeddings", "adalora", "frozen"))
    for system, peft, embeddings in systems:
        out = Path(args.work) / system
        config = TrainConfig(model=args.model, output_dir=str(out), peft=peft, learning_rate=5e-5, epochs=args.epochs,
                             embedding_lr_scale=10.0, peft_embeddings=embeddings,
                             **({"peft_learning_rate": args.peft_learning_rate} if args.peft_learning_rate else {}),
                             data=DataConfig(dataset="zh-sentiment", max_train_samples=args.train_samples),
                             eval_steps=10_000, progress=False, seed=args.seed)
        meta = run_once(out, config, lambda: train(config))
        logs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
        runtime = next(l["train_runtime"] for l in logs if "train_runtime" in l)
        size = sum((out / f).stat().st_size for f in WEIGHTS if (out / f).exists()) / 2**20
        extra = {"train_samples": args.train_samples or "all", "epochs": args.epochs,
                 "learning_rate": config.learning_rate if peft == "none" else config.peft_learning_rate,
                 **({"embedding_lr_scale": 10.0} if peft == "none" else {"peft_embeddings": embeddings})}
        for metric, value in (("test_accuracy", meta["metrics"]["test"]["accuracy"]),
                              ("trainable_percent", meta["parameters"]["trainable_percent"]),
                              ("checkpoint_mb", size), ("seconds_per_epoch", runtime / args.epochs)):
            rows.append(row("zh-sentiment", system, metric, round(float(value), 4), meta["wall_seconds"], **extra))
        write_rows("peft", rows)
        print(system, {r["metric"]: r["value"] for r in rows if r["system"] == system}, flush=True)
    rows.extend(search_rows(args) if args.search_trials else kept_search)
    write_rows("peft", rows)


SPACE = {"learning_rate": {"low": 1.0e-5, "high": 3.0e-4, "log": True}, "batch_size": [16, 32],
         "epochs": {"low": 1, "high": 3}, "warmup_ratio": {"low": 0.0, "high": 0.2},
         "weight_decay": {"low": 0.0, "high": 0.1}, "dropout": {"low": 0.0, "high": 0.2}}


def search_rows(args) -> list[dict]:
    """A search on a subset against the hand-written recipe on the same subset, both scored on dev."""
    import yaml

    from langbert.config import build_config
    from langbert.data import get_builtin
    from langbert.data.loading import hash_subset
    from langbert.recipes import recipe_path
    from langbert.training.search import run_search

    work = Path(args.work) / "search"
    work.mkdir(parents=True, exist_ok=True)
    splits = get_builtin("zh-sentiment").load().splits

    files = {}
    for split, n in (("train", args.search_samples), ("dev", args.search_dev)):
        files[split] = work / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps({"text": r.text, "label": r.label}, ensure_ascii=False) + "\n"
                                        for r in hash_subset(splits[split], n)), encoding="utf-8")
    default = yaml.safe_load(recipe_path("zh-sentiment-demo").read_text(encoding="utf-8"))
    default.update(model=args.model, seed=args.seed, progress=False, eval_steps=None,
                   data={"train": str(files["train"]), "dev": str(files["dev"])})
    extra = {"train_samples": args.search_samples, "dev_samples": args.search_dev}
    out: list[dict] = []
    start = time.perf_counter()
    folder = work / "default"
    if not (folder / "langbert.json").exists():
        train(build_config(default, {"output_dir": str(folder)}, where="zh-sentiment-demo"))
    dev = json.loads((folder / "langbert.json").read_text())["metrics"]["dev"]["accuracy"]
    out.append(row("zh-sentiment", "default", "dev_accuracy", round(dev, 4), time.perf_counter() - start, **extra))
    recipe = work / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**default, "output_dir": str(work / "trials"), "search": SPACE}, sort_keys=False),
                      encoding="utf-8")
    start = time.perf_counter()
    study = run_search(recipe, args.search_trials, output_dir=str(work / "trials"), seed=args.seed)
    out.append(row("zh-sentiment", "search-best", "dev_accuracy", round(study.best_value, 4), time.perf_counter() - start,
                   trials=len(study.trials), best_params=study.best_params, **extra))
    print("search", study.best_value, study.best_params, "default", dev, flush=True)
    return out


if __name__ == "__main__":
    main()
