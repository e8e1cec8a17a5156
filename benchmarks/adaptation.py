"""Language-adaptation ablation on zh-sentiment (test split), equal fine-tuning budget for every row.

Rows: tfidf-lr; the embedded model as-is; adapted with random / mean / dictionary init at char and word
granularity (no pretraining); dictionary init + continued pretraining; [UNK] rate and MLM perplexity on
held-out text. The learning curve (few labels) is ``benchmarks/few_labels.py``.

    python benchmarks/adaptation.py                       # the full run (hours on 2 CPU cores)
    python benchmarks/adaptation.py --train-samples 4000 --pretrain-minutes 10
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import row, run_once, write_rows  # noqa: E402

from langbert.evaluation.baselines import tfidf_logreg  # noqa: E402
from langbert.config import AdaptConfig, PretrainConfig, load_recipe  # noqa: E402
from langbert.language.adapt import adapt  # noqa: E402
from langbert.language.pretrain import pretrain  # noqa: E402
from langbert.recipes import recipe_path  # noqa: E402
from langbert.training import prepare_task, train  # noqa: E402


def fine_tune(model: str, out: Path, args, train_samples: int | None = None, epochs: float | None = None,
              seed: int | None = None) -> tuple[float, float]:
    """Test accuracy and wall seconds of one fine-tuning run (cached: a finished folder is reused)."""
    overrides = {"model": model, "output_dir": str(out), "seed": args.seed if seed is None else seed, "progress": False,
                 "epochs": epochs or args.epochs, "learning_rate": args.learning_rate, "eval_steps": 10_000,
                 "embedding_lr_scale": args.embedding_lr_scale}
    samples = train_samples or args.train_samples
    if samples:
        overrides["max_train_samples"] = samples
    config = load_recipe(recipe_path("zh-sentiment-demo"), overrides)
    meta = run_once(out, config, lambda: train(config))
    return meta["metrics"]["test"]["accuracy"], meta["wall_seconds"]


def timed_adapt(cfg: AdaptConfig) -> tuple[Path, float, dict]:
    out = Path(cfg.output_dir)
    meta = run_once(out, cfg, lambda: adapt(cfg))
    return out, meta["wall_seconds"], meta


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-samples", type=int, default=None, help="fixed random subset of the training split")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--embedding-lr-scale", type=float, default=1.0,
                   help="input embeddings learn at this multiple of the learning rate (every row alike)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--extra-seeds", type=int, nargs="*", default=[],
                   help="more seeds for the as-is and adapted rows (adapt + fine-tune): their value is then the "
                        "mean, with every seed's value beside it; pretraining uses --seed only")
    p.add_argument("--pretrain-minutes", type=float, default=25.0)
    p.add_argument("--pretrain-steps", type=int, default=4000)
    p.add_argument("--embeddings-only-steps", type=int, default=0)
    p.add_argument("--granularities", nargs="+", default=["char", "word"])
    p.add_argument("--inits", nargs="+", default=["random", "mean", "dictionary"])
    p.add_argument("--no-pretrain", action="store_true", help="skip continued pretraining")
    p.add_argument("--skip-as-is", action="store_true", help="skip fine-tuning the source model as it is")
    p.add_argument("--work", default="benchmarks/work/adaptation")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    work = Path(args.work)
    rows: list[dict] = []
    extra = {"seed": args.seed, "epochs": args.epochs, "train_samples": args.train_samples or "all",
             "learning_rate": args.learning_rate, "embedding_lr_scale": args.embedding_lr_scale}
    seeds = [args.seed, *args.extra_seeds]

    def seeded(name: str, seed: int) -> Path:  # --seed's folders keep the names they had before --extra-seeds
        return work / name if seed == args.seed else work / f"seed-{seed}" / name

    def mean_row(system: str, runs: list[tuple[float, float]], **more) -> dict:
        values = [a for a, _ in runs]
        spread = {"seeds": seeds, "values": values, "std": statistics.stdev(values)} if len(runs) > 1 else {}
        return row("zh-sentiment", system, "test_accuracy", statistics.fmean(values),
                   statistics.fmean(w for _, w in runs), **spread, **more, **extra)

    def emit(r: dict) -> None:
        rows.append(r)
        write_rows("adaptation", rows)  # partial results survive an interrupted run
        print(json.dumps({k: r[k] for k in ("dataset", "system", "metric", "value", "wall_seconds")}), flush=True)

    recipe = load_recipe(recipe_path("zh-sentiment-demo"), {"max_train_samples": args.train_samples})
    _, splits = prepare_task(recipe)
    tfidf = tfidf_logreg(splits.train, splits.test, seed=args.seed)
    emit(row("zh-sentiment", "tfidf-lr", "test_accuracy", tfidf["accuracy"], tfidf["wall_seconds"], **extra))
    if not args.skip_as_is:
        emit(mean_row("as-is", [fine_tune("embedded", seeded("as-is", s), args, seed=s) for s in seeds]))

    best: dict[str, dict] = {}  # init -> its row at the better granularity
    adapted_meta = {}
    for gran in args.granularities:
        for init in args.inits:
            runs, adapt_walls = [], []
            for seed in seeds:
                folder, adapt_wall, meta = timed_adapt(AdaptConfig(output_dir=str(seeded(f"adapt-{gran}-{init}", seed)),
                                                                   granularity=gran, init=init, seed=seed))
                adapted_meta.setdefault((gran, init), meta)
                acc, wall = fine_tune(str(folder), seeded(f"ft-{gran}-{init}", seed), args, seed=seed)
                runs.append((acc, wall + adapt_wall))
                adapt_walls.append(adapt_wall)
            r = mean_row(f"adapted-{init}-{gran}", runs, adapt_seconds=round(statistics.fmean(adapt_walls), 1))
            emit(r)
            if init not in best or r["value"] > best[init]["value"]:
                best[init] = {**r, "granularity": gran}
    for init, r in best.items():
        emit({**r, "system": f"adapted-{init}"})

    heldout_before = next(iter(adapted_meta.values()))["coverage"]["before"]
    emit(row("zh-heldout", "as-is", "unk_rate", heldout_before["unk_rate"], None))
    if "dictionary" in best:
        gran = best["dictionary"]["granularity"]
        meta = adapted_meta[(gran, "dictionary")]
        emit(row("zh-heldout", "adapted-dictionary", "unk_rate", meta["coverage"]["after"]["unk_rate"], None,
                 granularity=gran))
    if "dictionary" in best and not args.no_pretrain:
        gran = best["dictionary"]["granularity"]

        pre_dir = work / f"pretrain-{gran}"
        pre_cfg = PretrainConfig(model=str(work / f"adapt-{gran}-dictionary"), output_dir=str(pre_dir),
                                 max_steps=args.pretrain_steps, max_minutes=args.pretrain_minutes,
                                 embeddings_only_steps=args.embeddings_only_steps, progress=False,
                                 seed=args.seed, resume=(pre_dir / "checkpoints").exists())
        pre_meta = run_once(pre_dir, pre_cfg, lambda: pretrain(pre_cfg))
        pre_wall = pre_meta["wall_seconds"]
        ppl = pre_meta["heldout_perplexity"]
        emit(row("zh-heldout", "adapted-dictionary", "mlm_perplexity", ppl["before"], None, granularity=gran))
        emit(row("zh-heldout", "adapted-dictionary-pretrained", "mlm_perplexity", ppl["after"], pre_wall,
                 granularity=gran, pretrain_steps=pre_meta["steps"]))
        acc, wall = fine_tune(str(pre_dir), work / f"ft-{gran}-dictionary-pretrained", args)
        for system in ("adapted-dictionary-pretrained", f"adapted-dictionary-pretrained-{gran}"):
            emit(row("zh-sentiment", system, "test_accuracy", acc, wall + pre_wall, pretrain_seconds=round(pre_wall, 1),
                     pretrain_steps=pre_meta["steps"], granularity=gran, **extra))


if __name__ == "__main__":
    main()
