"""Sequence labelling on People's Daily (zh-ner, zh-cws), test split, entity-level strict F1.

Systems: a classical CRF on character features (sklearn-crfsuite: unigrams and bigrams in a +-2 window,
L-BFGS, c1 = c2 = 0.05, 150 iterations), the embedded English model as-is, and the adapted model with a
softmax and with a CRF head; word segmentation (zh-cws, BMES) with the adapted model and a softmax
(`zh-cws`) or CRF (`zh-cws-crf`) head. All neural rows share one fine-tuning budget. `-lexicon` rows add
the lexicon's B/M/E/S features of each character (``--lexicon``: CC-CEDICT and the training split, out of
fold) to the classical CRF (`crf-baseline-lexicon`, and one row per source alone) and to the neural CRF
(`adapted-crf-lexicon`, `zh-cws-crf-lexicon`).

    pip install -e '.[bench]'
    python benchmarks/sequence_labeling.py --adapted benchmarks/work/adaptation/pretrain-char
    python benchmarks/sequence_labeling.py --systems crf-baseline crf-baseline-lexicon   # the classical rows
    python benchmarks/sequence_labeling.py --rescore-oov   # unseen / seen recall for rows trained without it
    python benchmarks/sequence_labeling.py --unseen-words-by-pos adapted-crf-lexicon-ngrams-rerun
    python benchmarks/sequence_labeling.py --adapted ... --sizes 100 500 2000 --seeds 0 1 2   # learning curve

The learning curve (`--sizes`) trains the classical CRF, with and without the lexicon, and the adapted model
through the dataset's packaged recipe on the same random subsets of N training sentences: rows `zh-ner@N`,
`zh-cws@N`, and the figure `results/sequence_labeling_curve.png`.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).parent))
from _results import RESULTS, command_line, pretraining_runs, row, run_once, write_rows  # noqa: E402

from langbert.config import AdaptConfig, DataConfig, TrainConfig, load_recipe  # noqa: E402
from langbert.data import get_builtin  # noqa: E402
from langbert.data.loading import Splits  # noqa: E402
from langbert.data.rows import Row  # noqa: E402
from langbert.recipes import recipe_path  # noqa: E402
from langbert.tasks import create_task  # noqa: E402
from langbert.tasks.options import TokenClassificationOptions  # noqa: E402
from langbert.training import train  # noqa: E402


def char_features(text: str, i: int) -> dict[str, str]:
    feats = {"bias": "1"}
    for d in (-2, -1, 0, 1, 2):
        j = i + d
        feats[f"c[{d}]"] = text[j] if 0 <= j < len(text) else "<pad>"
    for d in (-2, -1, 0, 1):
        a, b = i + d, i + d + 1
        ca = text[a] if 0 <= a < len(text) else "<pad>"
        cb = text[b] if 0 <= b < len(text) else "<pad>"
        feats[f"b[{d}]"] = ca + cb
    return feats


CRF_SETTINGS = {"c1": 0.05, "c2": 0.05, "max_iterations": 150}
"""The classical CRF's L-BFGS settings, as every classical row records them."""


def crf_baseline(dataset: str, lexicon_sources: Sequence[str] = (), spans: list | None = None,
                 train_rows: list | None = None, unlabeled: list | None = None,
                 shares: str = "equal") -> tuple[Any, float]:
    """The classical CRF, with the lexicon's B/M/E/S features of each character where sources are given
    (a training-split lexicon out of fold for the training sentences, whole for the test ones). ``spans``,
    where given, receives each test sentence's predicted spans; ``train_rows``, where given, replace the
    training split. With ``unlabeled`` sentences, one round of self-training as langbert's (``SELF_TRAINING``):
    the CRF tags them, the ``pseudo_label_fraction`` surest by their least sure character's marginal
    probability are kept (as many with spans as without, or with ``shares="labelled"`` in the labelled
    sentences' proportions: langbert's own selection), and a second CRF learns from the labelled sentences
    plus those (its training-split lexicon from both, as a student's)."""
    import sklearn_crfsuite

    from langbert.data.lexicon import build_lexicon, lexicon_for, whole

    data = get_builtin(dataset).load()
    scheme = get_builtin(dataset).task_options.get("tag_scheme", "BIO")
    task = create_task("token-classification", {"tag_scheme": scheme})
    if train_rows is None:
        train_rows = data.splits["train"]
    task.fit(train_rows)
    from langbert.data.spans import spans_to_tags

    start = time.perf_counter()
    lexicon = None

    def features(text: str, training: bool) -> list[dict[str, str]]:
        chars = [char_features(text, i) for i in range(len(text))]
        if lexicon is not None:
            source = lexicon_for(lexicon, text) if training else whole(lexicon)
            for feats, names in zip(chars, source.features(text)):
                feats.update({f"lex:{name}": "1" for name in names})
        return chars

    def fitted(rows: list) -> Any:
        """A CRF trained on ``rows``, the lexicon (its training-split source out of fold) built from them."""
        nonlocal lexicon
        lexicon = build_lexicon(lexicon_sources, rows) if lexicon_sources else None
        crf = sklearn_crfsuite.CRF(algorithm="lbfgs", **CRF_SETTINGS)
        crf.fit([features(r.text, True) for r in rows], [spans_to_tags(len(r.text), r.label, scheme) for r in rows])
        return crf

    model = fitted(train_rows)
    ids = {t: i for i, t in enumerate(task.labels)}
    if unlabeled:
        from langbert.training.self_training import labelled_shares, select_confident

        read = [features(r.text, False) for r in unlabeled]
        judged = []
        for tags, chars in zip(model.predict(read), model.predict_marginals(read)):
            found = task.spans([(i, i + 1, ids.get(t, 0)) for i, t in enumerate(tags)])
            predicted = {"spans": [{"start": a, "end": b, "type": k} for a, b, k in found],
                         "score": min((m[t] for m, t in zip(chars, tags)), default=1.0)}
            judged.append(task.pseudo_label(predicted))
        keep = select_confident([(j.group, j.confidence) for j in judged], SELF_TRAINING["pseudo_label_fraction"],
                                labelled_shares(task, train_rows) if shares == "labelled" else None)
        model = fitted([*train_rows, *(Row(unlabeled[i].text, label=judged[i].label) for i in keep)])
    test = data.splits["test"]
    predicted = model.predict([features(r.text, False) for r in test])
    outputs = [[(i, i + 1, ids.get(t, 0)) for i, t in enumerate(tags)] for tags in predicted]
    if spans is not None:
        spans.extend(task.spans(tokens) for tokens in outputs)
    return task.evaluate(outputs, test), time.perf_counter() - start


def fine_tune(model: str, dataset: str, out: Path, args, crf: bool, lexicon: Sequence[str] = ()) -> tuple[dict, float]:
    """Test metrics and wall seconds, the mean over ``--seeds`` (each seed's F1 and the spread beside it, per
    type and error counts from the first seed)."""
    runs = [_fine_tune_once(model, dataset, out if seed == args.seeds[0] else out.with_name(f"{out.name}-seed{seed}"),
                            args, crf, lexicon, seed) for seed in args.seeds]
    f1 = [m["entity_f1"] for m, _ in runs]
    metrics = {**runs[0][0], "entity_f1": float(np.mean(f1))}
    if len(runs) > 1:
        metrics.update(seeds=dict(zip(args.seeds, [round(v, 4) for v in f1])), std=round(float(np.std(f1)), 4))
    for key in SEEN_RECALL:
        if all(key in m for m, _ in runs):
            metrics[key] = float(np.mean([m[key] for m, _ in runs]))
    raw = [m["raw_weights_f1"] for m, _ in runs if "raw_weights_f1" in m]
    if raw:  # under --ema-decay: the same checkpoints' raw weights, so the average's gain is measured in-run
        metrics["raw_weights_f1"] = float(np.mean(raw))
        if len(raw) > 1:
            metrics["raw_weights_seeds"] = dict(zip(args.seeds, [round(v, 4) for v in raw]))
    return metrics, float(np.mean([w for _, w in runs]))


def _fine_tune_once(model: str, dataset: str, out: Path, args, crf: bool, lexicon: Sequence[str], seed: int):
    config = TrainConfig(task="token-classification", model=model, output_dir=str(out),
                         data=DataConfig(dataset=dataset),
                         options={"crf": crf, "crf_lr_scale": args.crf_lr_scale,
                                  **({"ngram_buckets": args.ngram_buckets, "ngram_lr_scale": args.ngram_lr_scale,
                                      "ngram_dropout": args.ngram_dropout} if args.ngram_buckets else {}),
                                  **_lexicon(args, lexicon)},
                         epochs=args.epochs, learning_rate=args.learning_rate, batch_size=32, max_length=128,
                         embedding_lr_scale=args.embedding_lr_scale, eval_steps=args.eval_steps, progress=False,
                         layer_lr_decay=args.layer_lr_decay, ema_decay=args.ema_decay, dropout=args.dropout, seed=seed)
    meta = run_once(out, config, lambda: train(config))
    per_type = json.loads((out / "eval.json").read_text(encoding="utf-8"))["test"]["per_class"]
    raw = meta.get("metrics_raw_weights", {}).get("test", {})
    return ({**meta["metrics"]["test"], "per_type": per_type,
             **({"raw_weights_f1": raw["entity_f1"]} if raw else {})}, meta["wall_seconds"])


SYSTEMS = ["crf-baseline", "crf-baseline-lexicon", "as-is", "adapted-crf", "adapted-crf-lexicon", "zh-cws",
           "adapted-softmax", "zh-cws-crf", "zh-cws-crf-lexicon"]
CLASSICAL = ("crf-baseline", "crf-baseline-lexicon")
CURVE_CLASSICAL = (*CLASSICAL, "crf-baseline-lexicon-self-training", "crf-baseline-lexicon-self-training-labelled-shares")
"""The classical systems of the learning curve: the CRF without and with the lexicon, and the latter
self-trained on the unlabelled rest of the training split as the neural ``-self-training`` systems are
(``-labelled-shares``: its kept sentences with and without spans in the labelled ones' proportions)."""
SEEN_RECALL = ("oov_recall", "iv_recall")
"""Recall on gold spans whose text the training split never held as a span, and on the others (per row,
the mean over its seeds; ``oov_rate`` is the test split's share of unseen spans)."""
METRIC = {"zh-ner": "entity_f1", "zh-cws": "word_f1"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adapted", default=None, help="adapted (+pretrained) checkpoint; default: adapt one here")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--embedding-lr-scale", type=float, default=1.0,
                   help="learning-rate multiple for the input embeddings (new rows of an adapted vocabulary)")
    p.add_argument("--crf-lr-scale", type=float, default=100.0,
                   help="learning-rate multiple for the CRF's scores (rows with a CRF head)")
    p.add_argument("--layer-lr-decay", type=float, default=1.0,
                   help="neural rows: layer-wise learning-rate decay (1: every layer at the same rate)")
    p.add_argument("--ema-decay", type=float, default=0.0,
                   help="neural rows: keep an exponential moving average of the weights (0: off); the row also "
                        "records the same checkpoint's raw weights' F1 (raw_weights_f1)")
    p.add_argument("--eval-steps", type=int, default=None,
                   help="neural rows: evaluate on dev (and keep the best checkpoint) every N steps; default once "
                        "an epoch")
    p.add_argument("--lexicon-input", action="store_true",
                   help="neural -lexicon rows: the encoder reads the lexicon features at its input too "
                        "(token classification's lexicon_input)")
    p.add_argument("--ngram-buckets", type=int, default=0,
                   help="neural rows: hashed n-gram scores beside the encoder (token classification's ngram_buckets: "
                        "the classical CRF's unigram and bigram features in a +-2 window, hashed into this many rows)")
    p.add_argument("--ngram-lr-scale", type=float, default=100.0,
                   help="neural rows with --ngram-buckets: the n-gram scores' learning-rate multiple")
    p.add_argument("--lexicon-lr-scale", type=float, default=TokenClassificationOptions.lexicon_lr_scale,
                   help="neural -lexicon rows: the lexicon features' learning-rate multiple (token classification's "
                        "lexicon_lr_scale)")
    p.add_argument("--dropout", type=float, default=None,
                   help="neural rows: the encoder's hidden, attention and classifier dropout (default: the model's)")
    p.add_argument("--ngram-dropout", type=float, default=0.0,
                   help="neural rows with --ngram-buckets: the share of n-gram scores dropped while training")
    p.add_argument("--variant", default=None,
                   help="neural rows: an ablation's name, appended to the system (adapted-crf-lexicon-VARIANT) and "
                        "its work folders, so its rows stand beside the main ones instead of replacing them")
    p.add_argument("--seeds", type=int, nargs="+", default=[42],
                   help="neural rows: one fine-tuning per seed, the mean as the value, each seed's F1 beside it")
    p.add_argument("--skip-as-is", action="store_true")
    p.add_argument("--systems", nargs="+", default=SYSTEMS, choices=SYSTEMS,
                   help="rows to (re)run, in this order; the others keep their rows from the last run")
    p.add_argument("--datasets", nargs="+", default=list(METRIC), choices=list(METRIC),
                   help="datasets of the classical CRF rows")
    p.add_argument("--lexicon", nargs="+", default=["cc-cedict", "train"],
                   help="lexicon sources of crf-baseline-lexicon: cc-cedict, train (out of fold), or a file; "
                        "with more than one, each source alone gets a row of its own too (--lexicon-ablation)")
    p.add_argument("--lexicon-ablation", action=argparse.BooleanOptionalAction, default=True,
                   help="crf-baseline-lexicon: a row per source alone beside the row of all sources")
    p.add_argument("--work", default="benchmarks/work/sequence_labeling")
    p.add_argument("--rescore-oov", action="store_true",
                   help="instead of training: add oov_recall / iv_recall to the neural rows whose fine-tuned "
                        "folders are under --work, by evaluating each seed's saved model on test again")
    p.add_argument("--unseen-words-by-pos", default=None, metavar="ROW",
                   help="instead of training: recall of the zh-cws test words unseen in training, per part of speech "
                        "(zh-pos tags the same sentences), for the neural row ROW (its first seed's saved model) and "
                        "the classical CRF with --lexicon, stored in both rows as oov_recall_by_pos")
    p.add_argument("--teacher-sureness", default=None, metavar="FOLDER",
                   help="instead of training: how sure the learning-curve model in FOLDER (its run on subset --seeds "
                        "of --sizes sentences of the first of --datasets) is of its tags on --probe-sentences of the "
                        "training split's other sentences, against their own tags, and what a self-training round "
                        "would teach with and without its unsure tags (printed as JSON, no row)")
    p.add_argument("--probe-sentences", type=int, default=3000, help="--teacher-sureness: how many sentences")
    p.add_argument("--encoder-hardware", default=None,
                   help="where --adapted was pretrained, if not on this machine's CPU (e.g. 'NVIDIA H200'): its "
                        "rows are named <system>-gpu-encoder and say so, reported beside the CPU-only rows")
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="instead of the full-data rows: a learning curve, rows <dataset>@N for N labelled sentences "
                        "(one random subset per --seeds), systems --curve-systems")
    p.add_argument("--curve-systems", nargs="+", default=["crf-baseline", "crf-baseline-lexicon", "adapted-recipe"],
                   choices=CURVE_SYSTEMS, help="--sizes: the systems to (re)run; the others keep their rows")
    p.add_argument("--min-steps", type=int, default=300,
                   help="--sizes: the neural rows' least optimizer steps (the recipe's epochs, more where few sentences)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    work = Path(args.work)
    if args.rescore_oov:
        return rescore_oov(work)
    if args.unseen_words_by_pos:
        return unseen_words_by_pos(work, args.unseen_words_by_pos, args.lexicon)
    if args.teacher_sureness:
        return print(json.dumps(teacher_sureness(args.teacher_sureness, args.datasets[0], args.sizes[0], args.seeds[0],
                                                 args.probe_sentences), indent=1))
    extra = {**({"seed": args.seeds[0]} if len(args.seeds) == 1 else {}), "epochs": args.epochs, "train_samples": "all",
             "learning_rate": args.learning_rate, "embedding_lr_scale": args.embedding_lr_scale,
             **({"layer_lr_decay": args.layer_lr_decay} if args.layer_lr_decay != 1 else {}),
             **({"ema_decay": args.ema_decay} if args.ema_decay else {}), "eval_steps": args.eval_steps or "epoch",
             **({"dropout": args.dropout} if args.dropout is not None else {}),
             **({"ngram_buckets": args.ngram_buckets, "ngram_lr_scale": args.ngram_lr_scale} if args.ngram_buckets else {}),
             **({"ngram_dropout": args.ngram_dropout} if args.ngram_buckets and args.ngram_dropout else {})}
    suffix, encoder = ("-gpu-encoder", {"encoder_hardware": args.encoder_hardware}) if args.encoder_hardware else ("", {})
    if args.variant:  # an ablation: rows and work folders of their own
        suffix, encoder = f"{suffix}-{args.variant}", {**encoder, "variant": args.variant}
    folder = f"-{args.variant}" if args.variant else ""
    systems = [s for s in args.systems if not (s == "as-is" and args.skip_as_is)]
    previous = RESULTS / "sequence_labeling.json"
    kept = [r for r in (json.loads(previous.read_text()) if previous.exists() else [])
            if _system_of(r) not in systems or r.get("variant") != args.variant
            or _system_of(r) in CLASSICAL and r["dataset"] not in args.datasets
            or r["system"].startswith("crf-baseline-lexicon-") and not args.lexicon_ablation]
    rows: list[dict] = []

    def emit(r: dict) -> None:
        rows.append(r)
        write_rows("sequence_labeling", kept + rows)
        print(json.dumps({k: r[k] for k in ("dataset", "system", "metric", "value", "wall_seconds")}), flush=True)

    adapted = args.adapted
    if adapted is None:
        from langbert.language.adapt import adapt

        adapted = str(work / "adapted-char")
        if not (Path(adapted) / "langbert.json").exists():
            adapt(AdaptConfig(output_dir=adapted, granularity="char", init="dictionary"))
    if args.sizes:
        return learning_curve(args, adapted, work)

    crf_settings = {"train_samples": "all", **CRF_SETTINGS}
    for system in systems:
        if system == "crf-baseline":
            for dataset in args.datasets:
                report, wall = crf_baseline(dataset)
                emit(row(dataset, system, METRIC[dataset], report.metrics["entity_f1"], wall, **_detail(report),
                         **crf_settings))
        elif system == "crf-baseline-lexicon":
            variants = [(args.lexicon, system)]
            if len(args.lexicon) > 1 and args.lexicon_ablation:
                variants += [([source], f"{system}-{Path(source).name}") for source in args.lexicon]
            for dataset in args.datasets:
                for sources, name in variants:
                    report, wall = crf_baseline(dataset, sources)
                    emit(row(dataset, name, METRIC[dataset], report.metrics["entity_f1"], wall, lexicon=sources,
                             **_detail(report), **crf_settings))
        elif system == "as-is":
            metrics, wall = fine_tune("embedded", "zh-ner", work / "ner-as-is", args, crf=False)
            emit(row("zh-ner", "as-is", "entity_f1", metrics["entity_f1"], wall, **_detail(metrics), **extra))
        elif system.startswith("zh-cws"):
            crf = "crf" in system
            lexicon = args.lexicon if system.endswith("-lexicon") else []
            head = ("adapted-crf" if crf else "adapted-softmax") + ("-lexicon" if lexicon else "")
            metrics, wall = fine_tune(adapted, "zh-cws", work / f"cws-{head}{folder}", args, crf=crf, lexicon=lexicon)
            emit(row("zh-cws", head + suffix, "word_f1", metrics["entity_f1"], wall, model=adapted, **_encoder(adapted),
                     **_lexicon(args, lexicon), **_detail(metrics), **_crf_extra(args, crf),
                     **encoder, **extra))
        else:
            crf = system.startswith("adapted-crf")
            lexicon = args.lexicon if system.endswith("-lexicon") else []
            metrics, wall = fine_tune(adapted, "zh-ner", work / f"ner-{system}{folder}", args, crf=crf, lexicon=lexicon)
            emit(row("zh-ner", system + suffix, "entity_f1", metrics["entity_f1"], wall, model=adapted, **_encoder(adapted),
                     **_lexicon(args, lexicon), **_detail(metrics), **_crf_extra(args, crf),
                     **encoder, **extra))


SELF_TRAINING = {"self_training_rounds": 1, "pseudo_label_fraction": 0.3, "student_epochs": 2}
"""One round: the model the recipe trains on the labelled sentences tags the training split's other
sentences, and a fresh model learns from the labelled ones plus the 30% it was surest of (the sentences
whose least sure tag is surest), two epochs."""

CURVE_NEURAL = {"adapted-recipe": {}, "adapted-recipe-no-ngrams": {"ngram_buckets": 0},
                "adapted-recipe-lexicon-lr-100": {"lexicon_lr_scale": 100},
                "adapted-recipe-lexicon-lr-100-dropout-0.3": {"lexicon_lr_scale": 100, "dropout": 0.3},
                "adapted-recipe-dropout-0.3": {"dropout": 0.3},
                "adapted-recipe-self-training": SELF_TRAINING,
                "adapted-recipe-self-training-labelled-shares": {**SELF_TRAINING, "pseudo_label_shares": "labelled"},
                "adapted-recipe-self-training-labelled-shares-unsure-0.99":
                    {**SELF_TRAINING, "pseudo_label_shares": "labelled", "pseudo_label_unsure_below": 0.99},
                "adapted-recipe-lexicon-lr-100-dropout-0.3-self-training":
                    {"lexicon_lr_scale": 100, "dropout": 0.3, **SELF_TRAINING}}
"""The adapted model fine-tuned by the packaged recipe of the dataset (``zh-ner``, ``zh-cws``), the same
recipe without its n-gram scores (the part that learns only from the labelled sentences), with the lexicon
features learning at 100 times the rate instead of 10, with that and dropout 0.3 (on ``zh-cws`` the
packaged recipe ``zh-cws-few-labels``, which a test keeps equal to it), with dropout 0.3 alone, and the
packaged and few-label recipes followed by a round of self-training on the rest of the training split's
sentences, their tags unread (``SELF_TRAINING``; ``-labelled-shares``: the kept sentences with and without
predicted spans in the labelled sentences' proportions instead of half and half; ``-unsure-0.99``: and the
kept sentences' tags the teacher was less than 99% sure of left untagged, partial labels)."""
CURVE_SYSTEMS = (*CURVE_CLASSICAL, *CURVE_NEURAL)
"""Systems of the learning curve (--sizes): the ``CURVE_CLASSICAL`` and ``CURVE_NEURAL`` ones, on the same
sentences."""


def learning_curve(args, adapted: str, work: Path) -> None:
    """Test F1 against the number of labelled sentences: per size, one random subset of the training split
    per seed, each system trained on the same subsets; the mean as the value, the spread beside it. The
    neural rows run the dataset's packaged recipe with at least --min-steps optimizer steps (evaluated as
    often as the recipe's epochs would be) and the subset itself as dev, for a team with N labelled
    sentences has no larger dev set; the recipe's early stopping is off, as that dev set cannot judge it.
    With --variant (another encoder, say) the neural rows and folders carry its name; the classical rows,
    which read no encoder, do not."""
    path = RESULTS / "sequence_labeling.json"
    variant = getattr(args, "variant", None)

    def named(system: str) -> str:
        return f"{system}-{variant}" if variant and system not in CURVE_CLASSICAL else system

    made = {(f"{d}@{n}", named(s)) for d in args.datasets for n in args.sizes for s in args.curve_systems}
    kept = [r for r in json.loads(path.read_text(encoding="utf-8")) if (r["dataset"], r["system"]) not in made]
    rows: list[dict] = []
    for n in args.sizes:
        for dataset in args.datasets:
            splits = get_builtin(dataset).load().splits
            subsets = {seed: curve_subset(splits["train"], n, seed) for seed in args.seeds}
            for system in args.curve_systems:
                found, walls = [], []
                sources = args.lexicon if system.startswith("crf-baseline-lexicon") else []
                extends = _extends(system)
                shares = "labelled" if system.endswith("-labelled-shares") else "equal"
                extra = ({**CRF_SETTINGS, **({"lexicon": sources} if sources else {}),
                          **({k: SELF_TRAINING[k] for k in ("self_training_rounds", "pseudo_label_fraction")}
                             if extends else {}), **({"pseudo_label_shares": shares} if shares != "equal" else {})}
                         if system in CURVE_CLASSICAL else
                         {"recipe": dataset, **CURVE_NEURAL[system], "min_steps": args.min_steps, "model": adapted,
                          **_encoder(adapted), **({"variant": variant} if variant else {})})
                for seed, few in subsets.items():
                    # the training split's other sentences, their tags unread
                    rest = ([Row(r.text, source=r.source, line=r.line) for r in curve_rest(splits["train"], few)]
                            if extends else None)
                    if system in CURVE_CLASSICAL:
                        report, wall = crf_baseline(dataset, sources, train_rows=few, unlabeled=rest, shares=shares)
                        found.append(report.metrics); walls.append(wall)
                        continue
                    overrides = {"model": adapted,
                                 "output_dir": str(_curve_folder(work, system, dataset, n, seed, variant)),
                                 "seed": seed, "progress": False, "min_steps": args.min_steps,
                                 "early_stopping_patience": None, **CURVE_NEURAL[system]}
                    config = load_recipe(recipe_path(dataset), overrides)
                    curve = Splits(train=few, dev=few, test=splits["test"], source=f"{dataset}, {n} training sentences")
                    if extends:
                        _first_round_from(_curve_folder(work, extends, dataset, n, seed, variant),
                                          Path(config.output_dir))
                    meta = run_once(Path(config.output_dir), config, lambda: train(config, splits=curve, unlabeled=rest))
                    shutil.rmtree(Path(config.output_dir) / "checkpoints", ignore_errors=True)  # resume state only
                    found.append(meta["metrics"]["test"])
                    walls.append(meta["wall_seconds"] + (_copied_round_seconds(Path(config.output_dir)) if extends
                                                         else 0.0))
                f1 = [m["entity_f1"] for m in found]
                # A self-trained neural model's training sentences include the pseudo-labelled ones, so its
                # "unseen" words are not those the labelled sentences lack: not comparable, not recorded.
                seen = {} if extends else {k: round(statistics.mean(m[k] for m in found), 4)
                                                for k in (*SEEN_RECALL, "oov_rate") if all(k in m for m in found)}
                r = row(f"{dataset}@{n}", named(system), METRIC[dataset], statistics.mean(f1), statistics.mean(walls),
                        std=round(statistics.stdev(f1), 4) if len(f1) > 1 else None, seeds=args.seeds,
                        values=[round(v, 4) for v in f1], labelled=n, **seen, **extra)
                rows.append(r)
                write_rows("sequence_labeling", kept + rows)
                print(json.dumps({k: r[k] for k in ("dataset", "system", "value", "std", "values", "wall_seconds")}),
                      flush=True)
                plot_curve(kept + rows, RESULTS / "sequence_labeling_curve.png")


def curve_subset(rows: Sequence[Row], n: int, seed: int) -> list[Row]:
    """The learning curve's ``n`` labelled sentences for ``seed``: a random subset of the training split."""
    return random.Random(seed).sample(rows, n)


def curve_rest(rows: Sequence[Row], few: Sequence[Row]) -> list[Row]:
    """The training split's sentences outside a curve subset ``few``: its self-training pool."""
    labelled = {id(r) for r in few}
    return [r for r in rows if id(r) not in labelled]


def _extends(system: str) -> str | None:
    """The curve system whose model a self-training system's first round is (None for the others)."""
    return system.split("-self-training")[0] if "-self-training" in system else None


def _curve_folder(work: Path, system: str, dataset: str, n: int, seed: int, variant: str | None = None) -> Path:
    name = "" if system == "adapted-recipe" else f"{system.removeprefix('adapted-recipe-')}-"
    return work / f"curve-{name}{dataset}-{n}-seed{seed}{f'-{variant}' if variant else ''}"


def _first_round_from(run: Path, out: Path) -> None:
    """Self-training's first round is the run of the curve system it extends, on the same sentences: where
    that run is finished in ``run``, a copy of it becomes the round of ``out`` (self-training reuses a
    finished round whose settings and data match, and trains over it otherwise)."""
    first = out / "self-training" / "round-0"
    if (run / "langbert.json").is_file() and not first.exists() and not (out / "langbert.json").exists():
        shutil.copytree(run, first, ignore=shutil.ignore_patterns("checkpoints"))


def _copied_round_seconds(out: Path) -> float:
    """The wall seconds of a first round copied in by ``_first_round_from`` and reused, which the row adds to
    its own; 0 where the round was trained (and timed) within the self-training run, as its folder then
    holds no wall seconds."""
    meta = out / "self-training" / "round-0" / "langbert.json"
    return float(json.loads(meta.read_text()).get("wall_seconds", 0.0)) if meta.is_file() else 0.0


FULL_RECIPE_ROWS = {("zh-ner", "adapted-recipe"): "adapted-crf-lexicon-llrd-0.9-ngrams-rerun",
                    ("zh-cws", "adapted-recipe"): "adapted-crf-lexicon-ngrams-rerun",
                    ("zh-cws", "adapted-recipe-lexicon-lr-100-dropout-0.3"):
                        "adapted-crf-lexicon-ngrams-lexicon-lr-100-dropout-0.3"}
"""The full-data rows run with a curve system's settings on the curve's encoder: that line's last point."""

CURVE_LINES = {"crf-baseline": ("classical CRF", "black", "--"),
               "crf-baseline-lexicon": ("classical CRF + lexicon", "grey", "--"),
               "crf-baseline-lexicon-self-training": ("classical CRF + lexicon, then self-training", "grey", ":"),
               "crf-baseline-lexicon-self-training-labelled-shares":
                   ("classical CRF + lexicon, then self-training in the labelled proportions", "silver", ":"),
               "adapted-recipe": ("adapted model, packaged recipe (lexicon + n-grams)", "crimson", "-"),
               "adapted-recipe-no-ngrams": ("the same without n-gram scores", "tab:blue", "-"),
               "adapted-recipe-lexicon-lr-100": ("the same, lexicon features at 100x the learning rate", "darkorange", "-"),
               "adapted-recipe-lexicon-lr-100-dropout-0.3": ("the same, also dropout 0.3 (recipe zh-cws-few-labels)",
                                                             "tab:green", "-"),
               "adapted-recipe-dropout-0.3": ("the packaged recipe with dropout 0.3", "tab:purple", "-"),
               "adapted-recipe-self-training": ("the packaged recipe, then self-training on unlabelled sentences",
                                                "tab:brown", "-"),
               "adapted-recipe-self-training-labelled-shares":
                   ("the same, kept sentences in the labelled proportions of those with and without spans",
                    "tab:cyan", "-"),
               "adapted-recipe-self-training-labelled-shares-unsure-0.99":
                   ("the same, tags the teacher was less than 99% sure of left untagged", "tab:pink", "-"),
               "adapted-recipe-lexicon-lr-100-dropout-0.3-self-training":
                   ("zh-cws-few-labels, then self-training on unlabelled sentences", "tab:olive", "-")}
"""Each curve system's line in the figure (label, colour, dashes), in ``CURVE_SYSTEMS``' order."""


def plot_curve(rows: list[dict], path: Path) -> None:
    """One panel a dataset: test F1 against labelled sentences (log scale), a line per system measured at two
    sizes or more, the spread of the subsets shaded; the whole training split is the last point (the
    full-data rows of the same systems, ``FULL_RECIPE_ROWS`` for the neural ones, where the same encoder has
    one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for ax, dataset in zip(axes, METRIC):
        full = {r["system"]: r for r in rows if r["dataset"] == dataset}
        everything = len(get_builtin(dataset).load().splits["train"])
        sizes = set()
        for system, (label, colour, dashes) in CURVE_LINES.items():
            pts = [(r["labelled"], r["value"], r.get("std") or 0.0) for r in rows
                   if r["dataset"].startswith(f"{dataset}@") and r["system"] == system]
            last = full.get(FULL_RECIPE_ROWS.get((dataset, system), system))
            if last is not None and pts:
                pts.append((everything, last["value"], last.get("std") or 0.0))
            if len(pts) < 2:  # a single-size ablation is in the tables, not worth a line
                continue
            pts.sort()
            xs, ys, sd = zip(*pts)
            sizes.update(xs)
            ax.plot(xs, ys, marker="o", lw=1.6, label=label, color=colour, ls=dashes)
            ax.fill_between(xs, [y - e for y, e in zip(ys, sd)], [y + e for y, e in zip(ys, sd)], color=colour,
                            alpha=0.15)
        ax.set_xscale("log")
        ax.set_xticks(sorted(sizes), [f"all {n:,}" if n == everything else f"{n:,}" for n in sorted(sizes)])
        ax.minorticks_off()
        ax.set_title(f"{dataset}: {'entity' if dataset == 'zh-ner' else 'word'} F1 on test", fontsize=10)
        ax.set_xlabel("labelled training sentences")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("People's Daily: F1 against labelled sentences (mean of three random subsets, at 'all' of the "
                 "full-data rows' seeds; band: ±1 std; 2 CPU cores, CPU-pretrained encoder)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rescore_oov(work: Path) -> None:
    """Recall on unseen and seen spans for neural rows trained before reports carried it: each seed's saved
    model is evaluated on test again, told the training split's spans. A seed whose F1 differs from the one
    the row stores by more than 0.001 is reported and its row left as it was."""
    from langbert import Predictor
    from langbert.evaluation.seen_spans import SeenSpans

    path = RESULTS / "sequence_labeling.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    splits = {d: get_builtin(d).load().splits for d in METRIC}
    seen = {d: SeenSpans.from_rows(s["train"]) for d, s in splits.items()}
    for r in rows:
        if _system_of(r) in CLASSICAL or r.get("encoder_hardware") or "oov_recall" in r:
            continue
        folder = work / f"{'ner' if r['dataset'] == 'zh-ner' else 'cws'}-{r['system']}"
        seeds = [int(s) for s in r.get("seeds", {})] or [r.get("seed", 42)]
        folders = [folder if i == 0 else folder.with_name(f"{folder.name}-seed{seed}") for i, seed in enumerate(seeds)]
        stored = [r["seeds"][str(seed)] for seed in seeds] if "seeds" in r else [r["value"]]
        if not all((f / "langbert.json").is_file() for f in folders):
            continue
        found = []
        for f, want in zip(folders, stored):
            predictor = Predictor.load(f, unpadded=False)  # padded batches, as training scored test
            predictor.task.seen = seen[r["dataset"]]
            metrics = predictor.evaluate(splits[r["dataset"]]["test"]).metrics
            print(f"{f}: F1 {metrics['entity_f1']:.4f} now, {want:.4f} in the row", flush=True)
            if abs(metrics["entity_f1"] - want) > 1e-3:
                print("  too far apart: the row is left as it was", flush=True)
                break
            found.append(metrics)
        else:
            r.update({k: round(float(np.mean([m[k] for m in found])), 4) for k in SEEN_RECALL},
                     oov_rate=round(found[0]["oov_rate"], 4), oov_spans=found[0]["oov_spans"],
                     oov_command=command_line())
            write_rows("sequence_labeling", rows)
            print(r["dataset"], r["system"], {k: r[k] for k in (*SEEN_RECALL, "oov_rate")}, flush=True)


def teacher_sureness(folder: str, dataset: str, n: int, seed: int, sentences: int,
                     thresholds: Sequence[float] = (0.9, 0.95, 0.99, 0.999)) -> dict:
    """How sure a learning-curve model (``folder``: its run on subset ``seed`` of ``n`` sentences) is of the
    tags it gives ``sentences`` of the training split's other sentences, against their own tags: per
    threshold, the share of its tags below it and of its wrong tags and missed name characters among those;
    and what one self-training round in the labelled proportions (``SELF_TRAINING``'s fraction) would teach,
    every kept tag or only those at or above each threshold (``pseudo_label_unsure_below``). Printed, not
    a row: it explains the self-training rows, it does not compare systems."""
    from langbert import Predictor
    from langbert.data.spans import spans_to_tags
    from langbert.tasks.forward import forward_batches
    from langbert.training.self_training import labelled_shares, select_confident

    splits = get_builtin(dataset).load().splits
    few = curve_subset(splits["train"], n, seed)
    rest = curve_rest(splits["train"], few)
    pool = random.Random(1).sample(rest, min(sentences, len(rest)))
    teacher = Predictor.load(folder, unpadded=False)
    task, rows = teacher.task, [Row(r.text) for r in pool]
    outputs = forward_batches(task, teacher.model, teacher.tokenizer, rows, teacher.max_length)
    predicted = task.decode(outputs, rows)
    gold = [spans_to_tags(len(r.text), r.label, task.scheme) for r in pool]
    tokens = [(task.labels[t], g[s], p) for o, g in zip(outputs, gold) for (s, _, t), p in zip(o, o.each)]
    shares, fraction = labelled_shares(task, few), SELF_TRAINING["pseudo_label_fraction"]
    taught = {}
    for below in (None, *thresholds):
        judged = [task.pseudo_label(p, o, below) for p, o in zip(predicted, outputs)]
        keep = select_confident([(j.group, j.confidence) for j in judged], fraction, shares)
        taught["every tag" if below is None else f"tags at or above {below}"] = taught_tags(
            [spans_to_tags(len(pool[i].text), judged[i].label, task.scheme) for i in keep], [gold[i] for i in keep],
            [judged[i].untagged for i in keep])
    return {"teacher": folder, "sentences": len(pool), **sureness_by_threshold(tokens, thresholds),
            "kept_sentences": len(keep), "taught": taught}


def sureness_by_threshold(tokens: Sequence[tuple[str, str, float]], thresholds: Sequence[float]) -> dict:
    """From (predicted tag, gold tag, sureness) per token: how many tags, wrong ones and name characters
    tagged "O", and per threshold the share of the tags below it and of the wrong and missed ones there."""
    wrong = [p != g for p, g, _ in tokens]
    missed = [p == "O" and g != "O" for p, g, _ in tokens]
    table = {"tags": len(tokens), "wrong": sum(wrong), "missed_name_tags": sum(missed)}
    for t in thresholds:
        below = [sure < t for *_, sure in tokens]
        table[f"below {t}"] = {
            "share_of_tags": round(sum(below) / max(1, len(tokens)), 4),
            "share_of_wrong": round(sum(b and w for b, w in zip(below, wrong)) / max(1, sum(wrong)), 4),
            "share_of_missed_names": round(sum(b and m for b, m in zip(below, missed)) / max(1, sum(missed)), 4)}
    return table


def taught_tags(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]],
                untagged: Sequence[Sequence[tuple[int, int]] | None]) -> dict:
    """What pseudo-labelled sentences teach (character tags, predicted against gold), their ``untagged``
    characters left out: how many characters are taught and left out, how many taught tags are wrong, how
    many name characters are taught as "O", and how many name characters are taught."""
    counts = dict.fromkeys(("characters", "untagged", "wrong", "missed_names_taught_as_o", "name_characters"), 0)
    for pred, true, ranges in zip(predicted, gold, untagged):
        out = {c for s, e in ranges or () for c in range(s, e)}
        counts["untagged"] += len(out)
        for c, (p, g) in enumerate(zip(pred, true)):
            if c in out:
                continue
            counts["characters"] += 1
            counts["wrong"] += p != g
            counts["missed_names_taught_as_o"] += p == "O" and g != "O"
            counts["name_characters"] += g != "O"
    return counts


def unseen_words_by_pos(work: Path, system: str, lexicon: Sequence[str]) -> None:
    """Where a segmenter finds or loses the words its training split never held: per part of speech of the
    gold word (zh-pos's tag of the same span; nouns split by their subtype, as nr person, ns place), how many
    there are and the share each system segments exactly."""
    from langbert import Predictor
    from langbert.evaluation.seen_spans import SeenSpans

    splits = get_builtin("zh-cws").load().splits
    seen = SeenSpans.from_rows(splits["train"])
    tags = {(r.text, start, end): kind for r in get_builtin("zh-pos").load().splits["test"] for start, end, kind in r.label}
    test = splits["test"]
    neural = Predictor.load(work / f"cws-{system}", unpadded=False).predict([r.text for r in test])
    found = {system: [{(s["start"], s["end"]) for s in p["spans"]} for p in neural]}
    classical: list = []
    crf_baseline("zh-cws", lexicon, spans=classical)
    found["crf-baseline-lexicon"] = [{(start, end) for start, end, _ in p} for p in classical]
    total: dict[str, int] = {}
    hits: dict[str, dict[str, int]] = {name: {} for name in found}
    for i, r in enumerate(test):
        for start, end, _ in r.label:
            if r.text[start:end] in seen:
                continue
            kind = tags.get((r.text, start, end), "?")
            kind = kind[:2] if kind.startswith("n") else kind[:1]
            total[kind] = total.get(kind, 0) + 1
            for name, spans in found.items():
                hits[name][kind] = hits[name].get(kind, 0) + ((start, end) in spans[i])
    path = RESULTS / "sequence_labeling.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    for r in rows:
        if r["dataset"] == "zh-cws" and r["system"] in found:
            r["oov_recall_by_pos"] = {k: {"words": n, "recall": round(hits[r["system"]][k] / n, 4)}
                                      for k, n in sorted(total.items(), key=lambda kv: -kv[1])}
            r["oov_by_pos_command"] = command_line()
    write_rows("sequence_labeling", rows)
    for k, n in sorted(total.items(), key=lambda kv: -kv[1]):
        print(k, n, {name: round(hits[name][k] / n, 4) for name in found}, flush=True)


def _lexicon(args, lexicon: Sequence[str]) -> dict:
    """The lexicon options of a neural row, as it records them; the learning-rate multiple only where it is
    not the option's default, so the folders of rows run before the flag existed are still reused."""
    if not lexicon:
        return {}
    default = TokenClassificationOptions.lexicon_lr_scale
    faster = {"lexicon_lr_scale": args.lexicon_lr_scale} if args.lexicon_lr_scale != default else {}
    return {"lexicon": list(lexicon), "lexicon_input": args.lexicon_input, **faster}


def _crf_extra(args, crf: bool) -> dict:
    """What a row with a CRF head records about it."""
    return {"crf_lr_scale": args.crf_lr_scale} if crf else {}


def _system_of(r: dict) -> str:
    """The --systems name a row was made by (rows of an encoder pretrained elsewhere are never replaced by
    a CPU run)."""
    if r.get("encoder_hardware"):
        return r["system"]
    if r.get("variant"):
        return _system_of({**r, "system": r["system"].removesuffix(f"-{r['variant']}"), "variant": None})
    if r["system"].startswith("crf-baseline"):
        return "crf-baseline-lexicon" if r["system"].startswith("crf-baseline-lexicon") else "crf-baseline"
    if r["dataset"] == "zh-cws":
        return {"adapted-crf": "zh-cws-crf", "adapted-crf-lexicon": "zh-cws-crf-lexicon"}.get(r["system"], "zh-cws")
    return r["system"]


def _detail(found) -> dict:
    """Precision, recall beside the headline F1; with a full report, per type its F1 and the gold spans
    missed, found with wrong bounds or type, and the spurious predictions."""
    metrics = found.metrics if hasattr(found, "metrics") else found
    keep = ("entity_precision", "entity_recall", *SEEN_RECALL, "oov_rate", "oov_spans")
    detail = {k: round(v, 4) for k, v in metrics.items()
              if isinstance(v, (int, float)) and (k in keep or k.endswith("_f1") and k != "entity_f1")}
    detail.update({k: metrics[k] for k in ("seeds", "std", "raw_weights_f1", "raw_weights_seeds") if k in metrics})
    table = found.table if hasattr(found, "table") else metrics.get("per_type")
    if table:
        detail["per_type"] = {r["label"]: {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()
                                           if k != "label" and k not in ("precision", "recall")} for r in table}
    return detail


def _encoder(path: str) -> dict:
    """What a row records of its encoder's masked-LM, where langbert pretrained it."""
    runs = pretraining_runs(path)
    if not runs:
        return {}
    meta = runs[0]
    return {"encoder_steps": meta.get("steps"), "encoder_perplexity": meta.get("heldout_perplexity"),
            **({"encoder_wall_seconds": meta["wall_seconds"]} if "wall_seconds" in meta else {})}


if __name__ == "__main__":
    main()
