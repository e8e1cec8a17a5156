"""Few labels on zh-sentiment: test accuracy against the number of labelled reviews, three random subsets each.

Systems, each given the same N reviews and nothing else (no dev split: where a method keeps its best
checkpoint it is judged on those same N reviews): ``tfidf-lr`` (character 1-3-grams + logistic
regression), ``finetune`` (the ``zh-sentiment-demo`` recipe, ``min_steps`` included), ``setfit``
(``--method setfit``), ``cloze`` (``cloze-classification`` fine-tuned, PET) and ``cloze-zero-shot`` (no
labels at all: ``zh-sentiment@0``); ``cloze-words`` and ``cloze-zero-shot-words`` read ten words a label
(``--verbalizer-words``, written once, before any scoring) where the others read one (``--verbalizer``);
``cloze-zero-shot-words-calibrated-on-texts`` subtracts as its prior the label scores' mean over
``--calibration-texts`` training reviews (their labels unread) instead of the empty text's.
Every neural system starts from ``--model``, the checkpoint the packaged pretraining recipe leaves
(adapted, masked-LM continued on the CPU, with its head).

Self-training systems also read the rest of the training split with its labels removed (the unlabelled
reviews a team with N labels has; the pretraining corpus holds the same texts): ``self-training``
(``finetune``, then ``--self-training-rounds`` rounds on its surest pseudo-labels), ``co-training`` (the
same, its pseudo-labels from the model's probabilities averaged with TF-IDF + LR's: ``pseudo_label_teacher
model+tfidf``), ``co-training-refit`` (the same, TF-IDF + LR refitted each round on the labels plus the last
round's pseudo-labels: ``model+tfidf-refit``; it differs from ``co-training`` from the second round on),
``setfit-co-training`` and ``cloze-words-co-training`` (the same with SetFit or PET as the
first teacher; PET's students are PET too) and their peer
``tfidf-lr-self-training`` (TF-IDF + LR labelling the same pool, the same
share kept per label by the same rule). Their first teacher is the ``finetune`` (or ``setfit``) run of the
same subset where it has finished (the same settings; its folder is copied in as round 0, its time added).
``--consistency-weight W`` adds consistency training (UDA) on that pool to every fine-tuned system
(students included; rows ``-uda-W``). A checkpoint from task-adaptive pretraining (``langbert pretrain
pretrain-zh-sentiment``: masked-LM on the training reviews' texts) is another ``--model``, its rows under a
``--variant``; rows record each pretraining run's steps and corpus where they differ.

    python benchmarks/few_labels.py --model benchmarks/work/few_labels/pretrained
    python benchmarks/few_labels.py --model ... --sizes 100 --seeds 0 --systems tfidf-lr setfit  # rows -subsets-0
    python benchmarks/few_labels.py --model ... --sizes full --no-zero-shot --systems tfidf-lr finetune
    python benchmarks/few_labels.py --model ... --sizes 100 500 --no-zero-shot \
        --systems tfidf-lr-self-training self-training
    python benchmarks/few_labels.py --model OTHER --variant NAME ...   # rows <system>-NAME beside the others
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import random
import re
import shutil
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import RESULTS, pretraining_runs, row, run_once, write_rows  # noqa: E402

from langbert.config import load_recipe  # noqa: E402
from langbert.data import get_builtin  # noqa: E402
from langbert.data.loading import Splits  # noqa: E402
from langbert.evaluation.baselines import fit_tfidf_logreg, tfidf_logreg  # noqa: E402
from langbert.recipes import recipe_path  # noqa: E402
from langbert.training import train  # noqa: E402
from langbert.training.self_training import select_confident  # noqa: E402

SYSTEMS = ["tfidf-lr", "finetune", "setfit", "cloze", "tfidf-lr-self-training", "self-training", "co-training",
           "setfit-co-training", "cloze-words", "cloze-words-co-training", "co-training-refit"]
SELF_TRAINED = {"self-training": "finetune", "co-training": "finetune", "setfit-co-training": "setfit",
                "cloze-words-co-training": "cloze-words", "co-training-refit": "finetune"}
"""Each self-training system and the system its first teacher is."""
TEACHER = {"self-training": "model", "co-training-refit": "model+tfidf-refit"}
"""Each self-training system's pseudo_label_teacher where it is not ``model+tfidf``."""
DEFAULT_SYSTEMS = SYSTEMS[:4]
DEFAULT_SEEDS = [0, 1, 2]
PATTERN = "{text}。总之很[MASK]。"
VERBALIZER = "positive=好,negative=差"
VERBALIZER_WORDS = "positive=好|棒|满意|不错|喜欢|值|赞|推荐|优秀|完美,negative=差|烂|失望|糟糕|垃圾|后悔|坑|差劲|贵|慢"
ZERO_SHOT = ["cloze-zero-shot", "cloze-zero-shot-uncalibrated", "cloze-zero-shot-words",
             "cloze-zero-shot-words-calibrated-on-texts"]


def fine_tuned(system: str) -> bool:
    """Whether the system (its first model, for self-training) is fine-tuned by gradient steps on the labels:
    not TF-IDF, not SetFit's contrastive loop, not zero-shot."""
    first = SELF_TRAINED.get(system, system)
    return not (first.startswith("tfidf") or first == "setfit" or first.startswith("cloze-zero-shot"))


def shaping(system: str, args) -> str:
    """The name's mark for fine-tuning run with other steps or rate than the recipe's, or shaped by layer-wise
    learning-rate decay or a weight average."""
    if not fine_tuned(system):
        return ""
    return (f"-steps-{args.min_steps}" if args.min_steps is not None else "") + \
        (f"-lr-{args.learning_rate:g}" if args.learning_rate is not None else "") + \
        (f"-llrd-{args.layer_lr_decay:g}" if args.layer_lr_decay != 1 else "") + \
        (f"-ema-{args.ema_decay:g}" if args.ema_decay else "") + consistency_mark(args)


def consistency_mark(args) -> str:
    """``-uda-W`` for consistency training at weight W on the unlabelled pool, with the noise and threshold
    where they are not the defaults (0.1, 0.8)."""
    if not args.consistency_weight:
        return ""
    return f"-uda-{args.consistency_weight:g}" + \
        (f"-noise-{args.consistency_noise:g}" if args.consistency_noise != 0.1 else "") + \
        (f"-threshold-{args.consistency_threshold:g}" if args.consistency_threshold != 0.8 else "")


def schedule(args) -> dict:
    """The fine-tuning overrides a fine-tuned system (students included) runs with."""
    return {"layer_lr_decay": args.layer_lr_decay, "ema_decay": args.ema_decay,
            **({"consistency_weight": args.consistency_weight, "consistency_noise": args.consistency_noise,
                "consistency_threshold": args.consistency_threshold} if args.consistency_weight else {}),
            **({"min_steps": args.min_steps} if args.min_steps is not None else {}),
            **({"learning_rate": args.learning_rate} if args.learning_rate is not None else {})}


def variant(system: str, args) -> str:
    """The row's system: a self-training system run with other rounds, share, student epochs or targets than
    the defaults says so, a fine-tuned one with other steps or rate, layer-wise decay or a weight average too,
    and every system of a ``--variant`` run ends with its name."""
    named = f"-{args.variant}" if args.variant else ""
    if system not in SELF_TRAINED and system != "tfidf-lr-self-training":
        return system + shaping(system, args) + ("" if system == "tfidf-lr" else named)
    rounds = "" if args.self_training_rounds == 1 else f"-{args.self_training_rounds}-rounds"
    share = "" if args.pseudo_label_fraction == 0.3 else f"-fraction-{args.pseudo_label_fraction:g}"
    longer = "" if args.student_epochs is None or system not in SELF_TRAINED \
        else f"-student-epochs-{args.student_epochs:g}"
    soft = "-soft-targets" if args.pseudo_label_targets == "probabilities" and system in SELF_TRAINED else ""
    return system + rounds + share + longer + soft + shaping(system, args) + \
        ("" if system == "tfidf-lr-self-training" else named)


def subsets_mark(args) -> str:
    """``-subsets-0-1-2-3-4`` on every row of a run over other subsets than the three the issue's rows use
    (``--seeds 0 1 2``), so a row over more (or other) subsets stands beside the three-subset one; the work
    folders stay per subset, so the subsets a row shares with another are trained once."""
    return "" if args.seeds == DEFAULT_SEEDS else "-subsets-" + "-".join(map(str, args.seeds))


def verbalizer_of(system: str, args) -> str:
    words = SELF_TRAINED.get(system, system).removesuffix("-calibrated-on-texts").endswith("-words")
    return args.verbalizer_words if words else args.verbalizer


def subset(rows: list, n: int, seed: int) -> list:
    """N reviews drawn at random; 32 is 16 of each label (the few-shot convention); the whole split
    (shuffled by the seed) where N is its size."""
    rng = random.Random(seed)
    if n == 32:
        by_label = defaultdict(list)
        for r in rows:
            by_label[r.label].append(r)
        return [r for label in sorted(by_label) for r in rng.sample(by_label[label], 16)]
    return rng.sample(rows, n)


def tfidf_self_training(few: list, pool: list, test: list, seed: int, args) -> tuple[float, float]:
    """TF-IDF + LR given the same unlabelled pool: each round labels it, keeps the surest share per label
    (``select_confident``, as langbert's self-training does) and refits on labels plus pseudo-labels."""
    start = time.perf_counter()
    model = fit_tfidf_logreg(few, seed)
    for _ in range(args.self_training_rounds):
        probabilities = model.predict_proba([r.text for r in pool])
        predicted = [(str(model.classes_[p.argmax()]), float(p.max())) for p in probabilities]
        keep = select_confident(predicted, args.pseudo_label_fraction)
        model = fit_tfidf_logreg(few + [replace(pool[i], label=predicted[i][0]) for i in keep], seed)
    accuracy = statistics.mean(float(p == r.label) for p, r in zip(model.predict([r.text for r in test]), test))
    return accuracy, time.perf_counter() - start


def neural(system: str, model: str, splits: Splits, folder: Path, seed: int, args,
           pool: list | None = None, teacher: Path | None = None) -> tuple[float, float, float, dict]:
    """Test accuracy, wall seconds of the whole run, seconds of its (last) training loop, and extra fields.
    ``teacher``: a self-training system's first model, copied in as its round 0 where it has finished."""
    overrides = {"model": model, "output_dir": str(folder), "seed": seed, "progress": False,
                 "batch_size": args.batch_size}
    if fine_tuned(system):
        overrides.update(schedule(args))
    if system in SELF_TRAINED:
        overrides.update(self_training_rounds=args.self_training_rounds,
                         pseudo_label_fraction=args.pseudo_label_fraction, student_epochs=args.student_epochs,
                         pseudo_label_targets=args.pseudo_label_targets,
                         pseudo_label_teacher=TEACHER.get(system, "model+tfidf"))
        if teacher is not None and (teacher / "langbert.json").exists() and not (folder / "self-training" / "round-0").exists():
            shutil.copytree(teacher, folder / "self-training" / "round-0", ignore=shutil.ignore_patterns("checkpoints"))
    if system.startswith("cloze-zero-shot"):
        overrides.update(task="cloze-classification", method="zero-shot", pattern=args.pattern,
                         verbalizer=verbalizer_of(system, args), calibrate=not system.endswith("uncalibrated"),
                         calibration_texts=args.calibration_texts if system.endswith("-calibrated-on-texts") else 0)
    elif SELF_TRAINED.get(system, system) == "setfit":
        # Pairs per text so that every size draws about --setfit-pairs pairs (SetFit's iterations, scaled).
        overrides.update(method="setfit", epochs=1.0, min_steps=0,
                         setfit_iterations=max(1, round(args.setfit_pairs / (2 * len(splits.train)))))
    elif system.startswith("cloze"):
        overrides.update(task="cloze-classification", pattern=args.pattern, verbalizer=verbalizer_of(system, args))
    config = load_recipe(recipe_path("zh-sentiment-demo"), overrides)
    meta = run_once(folder, config, lambda: train(config, splits=splits, unlabeled=pool))
    logged = [json.loads(l) for l in (folder / "metrics.jsonl").read_text().splitlines() if l.strip()]
    loop = next((l["train_runtime"] for l in logged if "train_runtime" in l), 0.0)
    extra, wall = {}, meta["wall_seconds"]
    if "consistency" in meta:
        extra["consistency_share_counted"] = meta["consistency"]["share_counted"]
    if "self_training" in meta:  # what the first teacher scored, and what each round kept
        first = json.loads((folder / "self-training" / "round-0" / "langbert.json").read_text())
        extra.update(teacher_accuracy=first["metrics"]["test"]["accuracy"],
                     pseudo_labels=[r["pseudo_labels"] for r in meta["self_training"]])
        wall += first.get("wall_seconds", 0.0)  # a teacher copied from the finetune row: its time counts too
    return meta["metrics"]["test"]["accuracy"], wall, float(loop), extra


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="adapted + pretrained checkpoint with its masked-LM head")
    p.add_argument("--sizes", nargs="*", default=["32", "100", "500", "2000"],
                   help="labelled reviews per subset, or 'full' (the whole training split; no unlabelled pool)")
    p.add_argument("--seeds", type=int, nargs="+", default=DEFAULT_SEEDS,
                   help="one random subset (and run seed) each; rows over others than 0 1 2 are named -subsets-...")
    p.add_argument("--systems", nargs="+", default=DEFAULT_SYSTEMS, choices=SYSTEMS)
    p.add_argument("--zero-shot", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--pattern", default=PATTERN)
    p.add_argument("--verbalizer", default=VERBALIZER)
    p.add_argument("--verbalizer-words", default=VERBALIZER_WORDS, help="the -words systems' verbalizer")
    p.add_argument("--zero-shot-systems", nargs="+", default=ZERO_SHOT, choices=ZERO_SHOT)
    p.add_argument("--calibration-texts", type=int, default=1000,
                   help="-calibrated-on-texts zero-shot systems: training reviews (their labels unread) whose mean "
                        "label scores are the prior (cloze's calibration_texts)")
    p.add_argument("--setfit-pairs", type=int, default=1000)
    p.add_argument("--self-training-rounds", type=int, default=1)
    p.add_argument("--pseudo-label-fraction", type=float, default=0.3)
    p.add_argument("--student-epochs", type=float, default=None,
                   help="self-training systems: epochs of each student (student_epochs); unset: the recipe's")
    p.add_argument("--pseudo-label-targets", choices=["label", "probabilities"], default="label",
                   help="self-training systems: what students learn from the pool (pseudo_label_targets); "
                        "probabilities: the teacher's, rows named -soft-targets")
    p.add_argument("--min-steps", type=int, default=None,
                   help="fine-tuned systems (students included): at least this many optimizer steps (min_steps) "
                        "instead of the recipe's 100, rows named -steps-N")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="fine-tuned systems (students included): the peak learning rate instead of the recipe's "
                        "5e-5, rows named -lr-X")
    p.add_argument("--layer-lr-decay", type=float, default=1.0,
                   help="fine-tuned systems (students included): layer-wise learning-rate decay, rows named -llrd-X")
    p.add_argument("--ema-decay", type=float, default=0.0,
                   help="fine-tuned systems (students included): an exponential moving average of the weights is "
                        "the model, rows named -ema-X")
    p.add_argument("--consistency-weight", type=float, default=0.0,
                   help="fine-tuned systems (students included): consistency training (UDA) on the unlabelled pool at "
                        "this weight, rows named -uda-W")
    p.add_argument("--consistency-noise", type=float, default=0.1, help="with --consistency-weight: share of tokens "
                   "replaced (consistency_noise), rows named -noise-X where not 0.1")
    p.add_argument("--consistency-threshold", type=float, default=0.8, help="with --consistency-weight: "
                   "confidence a clean prediction needs to count (consistency_threshold), -threshold-X where not 0.8")
    p.add_argument("--batch-size", type=int, default=16, help="every neural system's (the recipe's min_steps stays)")
    p.add_argument("--variant", default=None,
                   help="a name appended to every neural system (rows and work folders), e.g. for another --model, "
                        "so its rows stand beside the main ones instead of replacing them")
    p.add_argument("--work", default="benchmarks/work/few_labels")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    work = Path(args.work)
    data = get_builtin("zh-sentiment").load()
    train_rows, test = data.splits["train"], data.splits["test"]
    previous = RESULTS / "few_labels.json"
    rows: list[dict] = [r for r in json.loads(previous.read_text())] if previous.exists() else []

    def emit(new: dict) -> None:
        rows[:] = [r for r in rows if (r["dataset"], r["system"]) != (new["dataset"], new["system"])] + [new]
        write_rows("few_labels", rows)
        plot(rows, RESULTS / "learning_curve.png")

    def common(system: str) -> dict:
        cloze = system.startswith("cloze")
        return {"model": args.model, **({} if system.startswith("tfidf") else encoder),
                **({"pattern": args.pattern, "verbalizer": verbalizer_of(system, args)} if cloze else {}),
                **(schedule(args) if shaping(system, args) else {})}
    encoder = _encoder(args.model)
    if args.zero_shot:
        for system in args.zero_shot_systems:
            # Calibrating on texts reads the whole training split's texts, never its labels.
            texts = system.endswith("-calibrated-on-texts")
            splits = Splits(train=train_rows if texts else subset(train_rows, 32, 0), dev=subset(train_rows, 32, 0),
                            test=test, source="zh-sentiment (zero-shot: no training)")
            acc, wall, _, _ = neural(system, args.model, splits, work / variant(system, args), 0, args)
            emit(row("zh-sentiment@0", variant(system, args), "test_accuracy", acc, wall, **common(system),
                     **({"calibration_texts": args.calibration_texts} if texts else {})))

    for size in args.sizes:
        n = len(train_rows) if size == "full" else int(size)
        for system in args.systems:
            name = variant(system, args)
            values, walls, loops, extras = [], [], [], defaultdict(list)
            for seed in args.seeds:
                few = subset(train_rows, n, seed)
                chosen = {id(r) for r in few}
                pool = [replace(r, label=None) for r in train_rows if id(r) not in chosen]
                reads_pool = system in SELF_TRAINED or bool(args.consistency_weight) and fine_tuned(system)
                if reads_pool and not pool:
                    raise SystemExit(f"{system} needs unlabelled reviews: none are left at {size}")
                if system == "tfidf-lr":
                    t = tfidf_logreg(few, test, seed=seed)
                    values.append(t["accuracy"]); walls.append(t["wall_seconds"]); loops.append(t["wall_seconds"])
                    continue
                if system == "tfidf-lr-self-training":
                    acc, wall = tfidf_self_training(few, pool, test, seed, args)
                    values.append(acc); walls.append(wall); loops.append(wall)
                    continue
                splits = Splits(train=few, dev=few, test=test, source=f"zh-sentiment, {n} training reviews (seed {seed})")
                first = work / f"{variant(SELF_TRAINED[system], args)}-{size}-seed{seed}" \
                    if system in SELF_TRAINED else None
                acc, wall, loop, extra = neural(system, args.model, splits, work / f"{name}-{size}-seed{seed}", seed,
                                                args, pool if reads_pool else None, first)
                values.append(acc); walls.append(wall); loops.append(loop)
                for k, v in extra.items():
                    extras[k].append(v)
            if reads_pool:
                extras.update(unlabeled=len(train_rows) - n)
            if system in SELF_TRAINED or system == "tfidf-lr-self-training":
                extras.update(self_training_rounds=args.self_training_rounds,
                              pseudo_label_fraction=args.pseudo_label_fraction, unlabeled=len(train_rows) - n,
                              **({"student_epochs": args.student_epochs} if "-student-epochs" in name else {}),
                              **({"pseudo_label_targets": "probabilities"} if "-soft-targets" in name else {}))
            emit(row(f"zh-sentiment@{size}", name + subsets_mark(args), "test_accuracy", statistics.mean(values),
                     statistics.mean(walls),
                     std=statistics.stdev(values) if len(values) > 1 else None, seeds=args.seeds,
                     values=[round(v, 4) for v in values], train_loop_seconds=round(statistics.mean(loops), 1), labelled=n,
                     **common(system), **extras))


def _encoder(path: str) -> dict:
    """What a row records of its checkpoint's masked-LM where langbert pretrained it: the steps of every
    pretraining run it continues, summed, and the last one's held-out perplexity (on its own corpus); where
    the runs read more than one corpus, each run's steps and corpus, first run first."""
    runs = pretraining_runs(path)
    if not runs:
        return {}
    found = {"encoder_perplexity": runs[0]["heldout_perplexity"]["after"],
             "encoder_steps": sum(meta["steps"] for meta in runs)}
    corpora = [meta.get("config", {}).get("corpus") for meta in reversed(runs)]
    if len({str(c) for c in corpora}) > 1:
        found["encoder_runs"] = [{"steps": meta["steps"], "corpus": c} for meta, c in zip(reversed(runs), corpora)]
    return found


def labelled(row: dict) -> int:
    """A row's number of labelled reviews (``@full`` rows state theirs)."""
    return row.get("labelled") or int(row["dataset"].split("@")[1])


def best_off_the_lines(curve: list[dict], lines: list[str]) -> list[dict]:
    """Per size, the best row of a system not drawn as a line, where it beats every line's row at that size."""
    found = []
    for size in sorted({labelled(r) for r in curve}):
        here = [r for r in curve if labelled(r) == size]
        best = max((r for r in here if r["system"] not in lines), key=lambda r: r["value"], default=None)
        if best and all(best["value"] > r["value"] for r in here if r["system"] in lines):
            found.append(best)
    return found


def task_adapted(system: str) -> bool:
    """Whether the system's encoder also read the training reviews by masked-LM (a ``-tapt`` or ``-tapt-2x``
    row); TF-IDF rows read no encoder and belong to either side."""
    return re.search(r"-tapt(-2x)?(-|$)", system) is not None


# The zero-shot rows drawn as horizontal lines on each panel: from the encoder itself and from the task-adapted one.
ZERO_SHOT_LINES = {False: ("cloze-zero-shot-words", "cloze-zero-shot-words-calibrated-on-texts"),
                   True: ("cloze-zero-shot-words-tapt", "cloze-zero-shot-words-calibrated-on-texts-tapt")}


def plot(rows: list[dict], path: Path) -> None:
    """Two panels, the systems from the CPU-pretrained encoder and those from the task-adapted encoder (TAPT),
    each with TF-IDF + LR in black as the line to beat and its zero-shot rows as horizontal lines. In a panel,
    one line per system measured at two sizes or more (``coloured_lines`` in colour, the other variants thin
    and grey); of the single-size rows (ablations, which would crowd the figure into noise) each size's best
    is a star with its spread, where it beats every line there."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(15, 7.8), sharey=True)
    curve = [r for r in rows if r["dataset"].startswith("zh-sentiment@") and r["dataset"] != "zh-sentiment@0"]
    titles = {False: "from the CPU-pretrained encoder",
              True: "encoder also masked-LM-trained on the training reviews (TAPT)"}
    for ax, adapted in zip(axes, (False, True)):
        here = [r for r in curve if r["system"].startswith("tfidf-lr") or task_adapted(r["system"]) == adapted]
        zero_shot = [r for name in ZERO_SHOT_LINES[adapted] for r in rows
                     if r["dataset"] == "zh-sentiment@0" and r["system"] == name]
        _panel(ax, here, zero_shot, plt.get_cmap("tab20").colors)
        ax.set_title(titles[adapted], fontsize=10)
    axes[0].set_ylabel("test accuracy")
    fig.suptitle("zh-sentiment: accuracy against labelled data (x: labelled training reviews, mean of three random "
                 "subsets unless the legend says; band: ±1 std)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# The methods, drawn in colour on each panel (with the panel's encoder suffix) beside each size's leader.
NAMED_LINES = ("tfidf-lr", "finetune", "setfit", "cloze")


def coloured_lines(curve: list[dict], systems: list[str]) -> list[str]:
    """The lines drawn in colour: TF-IDF, the named methods and, per size, the system with the best mean;
    the other variants are drawn thin and grey, so a dozen ablations do not hide the comparison."""
    named = [s for s in systems if re.sub(r"-tapt(-2x)?$", "", s) in NAMED_LINES]
    leaders = [max((r for r in curve if labelled(r) == size and r["system"] in systems), key=lambda r: r["value"])["system"]
               for size in sorted({labelled(r) for r in curve if r["system"] in systems})]
    return list(dict.fromkeys([*named, *leaders]))


def _panel(ax, curve: list[dict], zero_shot: list[dict], palette) -> None:
    systems = [s for s in dict.fromkeys(r["system"] for r in curve) if sum(r["system"] == s for r in curve) > 1]
    coloured = coloured_lines(curve, systems)
    # No greys (the zero-shot lines and the other variants are grey).
    colours = itertools.cycle([c for c in palette[::2] + palette[1::2] if len(set(c)) > 1])
    others = False
    for system in sorted(systems, key=lambda s: (s != "tfidf-lr", s not in coloured)):
        pts = sorted((labelled(r), r["value"], r.get("std") or 0.0) for r in curve if r["system"] == system)
        xs, ys, sd = [n for n, *_ in pts], [v for _, v, _ in pts], [s for *_, s in pts]
        if system not in coloured:
            ax.plot(xs, ys, color="silver", lw=0.9, zorder=1,
                    label=None if others else "other variants (benchmarks/RESULTS.md)")
            others = True
            continue
        style = dict(color="black", lw=2.2, ls="--") if system == "tfidf-lr" else dict(color=next(colours), lw=1.6)
        ax.plot(xs, ys, marker="o", label=system, zorder=3, **style)
        ax.fill_between(xs, [y - s for y, s in zip(ys, sd)], [y + s for y, s in zip(ys, sd)], color=style["color"],
                        alpha=0.12)
    for best in best_off_the_lines(curve, systems):
        size, subsets = labelled(best), len(best.get("seeds") or [0, 1, 2])
        over = "" if subsets == 3 else f", {subsets} subsets"
        ax.errorbar([size], [best["value"]], yerr=[best.get("std") or 0.0], marker="*", ms=13, color="crimson",
                    capsize=3, ls="none", label=f"best at {size:,}: {best['system']} ({best['value']:.3f}{over})")
    for r in zero_shot:
        calibrated = "-calibrated-on-texts" in r["system"]
        ax.axhline(r["value"], ls="-." if calibrated else ":", color="grey",
                   label=f"zero-shot, ten words{', calibrated on texts' if calibrated else ''} ({r['value']:.3f})")
    ax.set_xscale("log")
    sizes = sorted({(labelled(r), r["dataset"].endswith("@full")) for r in curve})
    ax.set_xticks([n for n, _ in sizes], [f"all {n:,}" if full else f"{n:,}" for n, full in sizes])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2)


if __name__ == "__main__":
    main()
