"""The README's main job on the embedded default: adapt -> short continued pretraining -> fine-tune ->
evaluate, next to a TF-IDF baseline and the English model as it was.

Budget on 2 CPU cores: about 1 minute to adapt, 6 to pretrain, 8-10 to fine-tune one epoch, and about 3
for the few-label row (100 reviews: TF-IDF + LR beside SetFit on the pretrained model).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from .evaluation.baselines import tfidf_logreg
from .config import AdaptConfig, PretrainConfig, load_recipe
from .recipes import recipe_path
from .data.loading import Splits
from .training import prepare_task, train

FEW_LABELS = 100
# The few-label method of benchmarks/few_labels.py that wins at 100 reviews, with its settings there.
FEW_LABEL_METHOD = {"method": "setfit", "epochs": 1.0, "min_steps": 0, "batch_size": 16, "setfit_iterations": 5}


def _stored_as_is() -> tuple[float | None, str]:
    """The as-is accuracy ``benchmarks/baselines.py`` stored, and where it comes from, when this is a source
    checkout and the row was measured with the head this demo trains (a [CLS]-pooler row does not compare).
    Fine-tuning the as-is model too would add the time of a second epoch-long run to the demo."""
    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "baselines.json"
    if results.exists():
        for row in json.loads(results.read_text(encoding="utf-8")):
            if row["system"] == "as-is" and row["metric"] == "test_accuracy" and row.get("pooling") == "mean":
                return row["value"], f"stored, {row.get('date', '')}: benchmarks/results/baselines.json"
    return None, "not run here; `python benchmarks/baselines.py` in a source checkout measures it"


def run_demo(output_dir: str = "runs/demo", max_steps: int | None = None, pretrain_minutes: float = 6.0) -> list[dict]:
    from .language.adapt import adapt
    from .language.pretrain import pretrain

    root = Path(output_dir)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    adapted = adapt(AdaptConfig(output_dir=str(root / "adapted"), granularity="word", init="dictionary",
                                 script_conversion="tw2sp"))
    timings["adapt"] = time.perf_counter() - start
    coverage = json.loads((adapted / "langbert.json").read_text(encoding="utf-8"))["coverage"]

    start = time.perf_counter()
    pretrained = pretrain(PretrainConfig(model=str(adapted), output_dir=str(root / "pretrained"), max_steps=250,
                                         max_minutes=pretrain_minutes, eval_steps=125, progress=False))
    timings["pretrain"] = time.perf_counter() - start
    perplexity = json.loads((pretrained / "langbert.json").read_text(encoding="utf-8"))["heldout_perplexity"]

    overrides = {"output_dir": str(root / "model"), "model": str(pretrained)}
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    config = load_recipe(recipe_path("zh-sentiment-demo"), overrides)
    _, splits = prepare_task(config)
    baseline = tfidf_logreg(splits.train, splits.test)
    start = time.perf_counter()
    out = train(config, splits=splits)
    timings["fine-tune"] = time.perf_counter() - start
    metrics = json.loads((out / "langbert.json").read_text(encoding="utf-8"))["metrics"]

    few = random.Random(0).sample(splits.train, FEW_LABELS)
    few_baseline = tfidf_logreg(few, splits.test)
    start = time.perf_counter()
    few_config = load_recipe(recipe_path("zh-sentiment-demo"), {
        "output_dir": str(root / f"model-{FEW_LABELS}"), "model": str(pretrained), **FEW_LABEL_METHOD,
        **({"max_steps": max_steps} if max_steps is not None else {})})
    # No dev split beyond the same 100 reviews: a team with 100 labels has no 1,800 more to choose with.
    few_out = train(few_config, splits=Splits(train=few, dev=few, test=splits.test, source=f"zh-sentiment, {FEW_LABELS} reviews"))
    timings[f"{FEW_LABEL_METHOD['method']} ({FEW_LABELS} reviews)"] = time.perf_counter() - start
    few_metrics = json.loads((few_out / "langbert.json").read_text(encoding="utf-8"))["metrics"]

    as_is, as_is_source = _stored_as_is()
    rows = [
        {"system": "tfidf-lr (char 1-3-gram)", "test_accuracy": baseline["accuracy"]},
        {"system": "embedded as-is, 1 epoch", "test_accuracy": as_is, "source": as_is_source},
        {"system": "adapted + pretrained, 1 epoch", "test_accuracy": metrics["test"]["accuracy"]},
    ]
    print(f"\nzh-sentiment: {len(splits.train)} train / {len(splits.dev)} dev / {len(splits.test)} test")
    print(f"[UNK] rate on held-out text: {coverage['before']['unk_rate']:.2%} before, {coverage['after']['unk_rate']:.2%} after")
    print(f"held-out MLM perplexity: {perplexity['before']:.1f} before pretraining, {perplexity['after']:.1f} after")
    print(f"\n{'system':<48} {'test accuracy':>13}")
    for r in rows:
        value = "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.2%}"
        print(f"{r['system']:<48} {value:>13}" + (f"   ({r['source']})" if r.get("source") else ""))
    print(f"\nwith {FEW_LABELS} labelled reviews (the same {FEW_LABELS} for both):")
    print(f"{'tfidf-lr (char 1-3-gram)':<48} {few_baseline['accuracy']:>12.2%}")
    print(f"{'adapted + pretrained, ' + FEW_LABEL_METHOD['method']:<48} {few_metrics['test']['accuracy']:>12.2%}")
    rows += [{"system": f"tfidf-lr, {FEW_LABELS} reviews", "test_accuracy": few_baseline["accuracy"]},
             {"system": f"adapted + pretrained, {FEW_LABEL_METHOD['method']}, {FEW_LABELS} reviews",
              "test_accuracy": few_metrics["test"]["accuracy"]}]
    print("\nseconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    print(f"model, eval.md and confusion.png in {out}/")
    return rows
