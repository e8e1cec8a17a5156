"""Self-training: a model trained on a few labels labels the unlabelled texts it is surest of, and a fresh
model learns from both.

Round 0 trains on the labelled rows with the config's method (fine-tuning, SetFit, a cloze pattern, or a
zero-shot cloze model with no training step, whose students then learn from pseudo-labels alone). Each
round after it predicts every unlabelled text with the previous round's model, keeps the
``pseudo_label_fraction`` it is most confident of (the same number for each label, so a model that leans
to one label does not teach only that one, or with ``pseudo_label_shares: labelled`` the labelled rows'
proportions; for token classification the sentences whose least sure tag is surest, each with all its
predicted spans, or with ``pseudo_label_unsure_below`` its sure tags only, the unsure ones left untagged),
and fine-tunes a fresh copy of ``config.model`` on the labelled rows plus those (their labels, or with
``pseudo_label_targets: probabilities`` the teacher's probabilities, the soft targets of knowledge
distillation). The last round writes ``config.output_dir``; earlier rounds are kept under its
``self-training/`` folder, and a finished round is reused on a rerun, so a run stopped between rounds goes on
from the last one that finished. ``langbert.json`` records what every round kept and how sure the teacher
was.

Pseudo-labels are as wrong as the teacher that makes them; keeping only the surest share is what makes them
worth more than they cost (Yarowsky 1995; "Self-training Improves Pre-training for Natural Language
Understanding", Du et al. 2021).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

from ..artifacts import METADATA, read_metadata, write_metadata
from ..config import TrainConfig
from ..data.loading import Splits
from ..data.rows import Row
from ..errors import ConfigError
from ..evaluation.baselines import fit_tfidf_logreg
from ..kernels.hardware import use_bf16
from ..tasks import task_from_state
from ..tasks.base import PseudoLabel
from ..tasks.forward import forward_batches
from .finetune import prepare_task
from .finetune import train as train_once
from .unlabeled import unlabeled_pool

logger = logging.getLogger(__name__)

SELF_TRAINING_SETTINGS = ("unlabeled", "self_training_rounds", "pseudo_label_fraction", "pseudo_label_teacher",
                          "student_epochs", "pseudo_label_targets", "pseudo_label_shares", "pseudo_label_unsure_below")


def select_confident(predicted: Sequence[tuple[str, float]], fraction: float,
                     shares: dict[str, float] | None = None) -> list[int]:
    """Indices of the surest predictions (label, confidence): ``fraction`` of them in all, shared equally by
    the labels predicted, or in proportion to ``shares`` (label -> weight; a label without one gets none),
    a label predicted less often than its share giving all it has; surest first."""
    by_label: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for i, (label, confidence) in enumerate(predicted):
        by_label[label].append((confidence, i))
    if not by_label:
        return []
    total = sum(shares.values()) if shares else 0
    kept = len(predicted) * fraction
    share = ({label: round(kept * shares.get(label, 0) / total) for label in by_label} if total else
             dict.fromkeys(by_label, max(1, round(kept / len(by_label)))))
    return [i for label in sorted(by_label) for _, i in sorted(by_label[label], key=lambda c: -c[0])[:share[label]]]


def labelled_shares(task: Any, rows: Sequence[Row]) -> dict[str, float]:
    """Each self-training group's share of the labelled ``rows`` (``pseudo_label_shares: labelled``)."""
    counts = Counter(task.pseudo_label_group(r.label) for r in rows)
    return {group: n / len(rows) for group, n in sorted(counts.items())}


def self_train(config: TrainConfig, callbacks: Sequence[Any] = (), splits: Splits | None = None,
               unlabeled: Sequence[Row] | None = None) -> Path:
    """Round 0 on the labels, then ``config.self_training_rounds`` rounds on labels plus pseudo-labels.
    ``unlabeled`` rows (their labels ignored) replace ``config.unlabeled``'s sources."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("self-training runs in one process: each round reads the folder the one before wrote; "
                          "run it without torchrun/accelerate launch")
    task, splits = prepare_task(config, splits)
    pairs = task.needs_pair or any(r.pair is not None for r in splits.train)
    unlabeled = unlabeled_pool("self_training_rounds", config, task, splits, unlabeled)
    # A zero-shot first round learns from no row: the training rows only name the labels, so the students
    # learn from pseudo-labels alone and no label reaches them.
    labelled = [] if config.method == "zero-shot" else splits.train
    second_view = None
    soft = config.pseudo_label_targets == "probabilities"
    over_labels = [f"{name} {value}" for name, value, default in (
        ("pseudo_label_targets", config.pseudo_label_targets, "label"),
        ("pseudo_label_teacher", config.pseudo_label_teacher, "model")) if value != default]
    if over_labels and not task.single_label:
        raise ConfigError(f"{' and '.join(over_labels)} read probabilities over one label per text; task "
                          f"'{task.name}' predicts no such label (leave the defaults: label, model)")
    if config.pseudo_label_teacher != "model":
        if not labelled:
            raise ConfigError(f"pseudo_label_teacher {config.pseudo_label_teacher} fits TF-IDF on labelled rows; "
                              "method zero-shot has none")
        if pairs:
            raise ConfigError(f"pseudo_label_teacher {config.pseudo_label_teacher}: TF-IDF reads single texts, "
                              "these rows are pairs")
        second_view = _tfidf_probabilities(splits.train, unlabeled, task.labels, config.seed)
    unsure_below = config.pseudo_label_unsure_below
    if unsure_below is not None and not task.partial_labels:
        raise ConfigError(f"pseudo_label_unsure_below leaves a text's unsure tags out; task '{task.name}' gives one "
                          "label per text (leave it unset)")
    if config.pseudo_label_shares == "labelled" and not labelled:
        raise ConfigError("pseudo_label_shares labelled reads the labelled rows' proportions; method zero-shot "
                          "has none (leave it equal)")
    shares = labelled_shares(task, labelled) if config.pseudo_label_shares == "labelled" else None
    tfidf_rows = len(labelled)
    out, work = Path(config.output_dir), Path(config.output_dir) / "self-training"
    # Each round is a plain training run: the self-training settings at their defaults.
    single = dataclasses.replace(config, **{name: getattr(TrainConfig(), name) for name in SELF_TRAINING_SETTINGS})
    # Under consistency_weight every round also learns consistency on the same unlabelled texts.
    pool = unlabeled if config.consistency_weight else None
    folder = _finished_or_train(dataclasses.replace(single, output_dir=str(work / "round-0")), callbacks, splits,
                                pool)
    rounds = []
    for n in range(1, config.self_training_rounds + 1):
        teacher = read_metadata(folder)
        outputs, predicted = _predict(folder, teacher, unlabeled, config)
        if second_view is not None:
            predicted = [_averaged(p, q) for p, q in zip(predicted, second_view)]
        # A task's own pseudo_label written before partial labels takes one prediction and gives a 3-tuple.
        judged = [PseudoLabel(*(task.pseudo_label(p) if unsure_below is None else
                                task.pseudo_label(p, o, unsure_below))) for p, o in zip(predicted, outputs)]
        keep = select_confident([(j.group, j.confidence) for j in judged], config.pseudo_label_fraction, shares)
        pseudo = [dataclasses.replace(unlabeled[i], label=judged[i].label, untagged=judged[i].untagged,
                                      probabilities=tuple(predicted[i]["probabilities"].items()) if soft else None)
                  for i in keep]
        counts = dict(sorted(Counter(judged[i].group for i in keep).items()))
        rounds.append({"round": n, "teacher": str(folder), "teacher_dev": teacher["metrics"].get("dev"),
                       "labelled_by": config.pseudo_label_teacher,
                       **({"tfidf_fitted_on": tfidf_rows} if second_view is not None else {}),
                       "targets": config.pseudo_label_targets,
                       "unlabeled": len(unlabeled), "pseudo_labels": counts,
                       **({"labelled_shares": {k: round(v, 4) for k, v in shares.items()}} if shares else {}),
                       "lowest_confidence_kept": round(min(judged[i].confidence for i in keep), 6),
                       **({"unsure_below": unsure_below,
                           "untagged_characters": sum(e - s for i in keep for s, e in judged[i].untagged or ()),
                           "characters": sum(len(unlabeled[i].text) for i in keep)} if unsure_below is not None
                          else {})})
        logger.info("self-training round %d/%d: %d of %d unlabelled texts kept as %s", n,
                    config.self_training_rounds, len(pseudo), len(unlabeled), counts)
        if task.single_label and len(counts) < len(task.labels):
            logger.warning("self-training round %d: the teacher predicts no unlabelled text as %s; the next model "
                           "learns those labels from the labelled rows alone", n,
                           sorted(set(task.labels) - set(counts)))
        student = dataclasses.replace(single, method="finetune", epochs=config.student_epochs or config.epochs,
                                      output_dir=str(out if n == config.self_training_rounds else work / f"round-{n}"))
        folder = _finished_or_train(student, callbacks, dataclasses.replace(splits, train=[*labelled, *pseudo]), pool)
        if config.pseudo_label_teacher == "model+tfidf-refit" and n < config.self_training_rounds:
            # The classical view learns from the pseudo-labels the two views chose together, as the student did.
            second_view = _tfidf_probabilities([*labelled, *pseudo], unlabeled, task.labels, config.seed)
            tfidf_rows = len(labelled) + len(pseudo)
    write_metadata(out, {**read_metadata(out), "config": config.to_dict(), "self_training": rounds})
    return out


def _finished_or_train(config: TrainConfig, callbacks: Sequence[Any], splits: Splits,
                       unlabeled: Sequence[Row] | None) -> Path:
    """A round's folder that a run of this same config on these same rows finished, or a new training."""
    folder = Path(config.output_dir)
    if (folder / METADATA).is_file():
        done = read_metadata(folder)
        # A moved folder is the same run; a setting added since it was written ran at today's default.
        saved = {**TrainConfig().to_dict(), **done.get("config", {}), "output_dir": config.output_dir}
        same = saved == config.to_dict()
        if same and done.get("data", {}).get("fingerprints") == splits.fingerprints():
            logger.info("self-training: %s is finished, reusing it", folder)
            return folder
    return train_once(config, callbacks, splits, unlabeled)


def _tfidf_probabilities(labelled: Sequence[Row], rows: Sequence[Row], labels: Sequence[str],
                         seed: int) -> list[dict[str, float]]:
    """Each row's label probabilities from TF-IDF + LR fitted on the labelled rows (labels it never saw: 0)."""
    classical = fit_tfidf_logreg(labelled, seed)
    classes = [str(c) for c in classical.classes_]
    return [{label: float(p[classes.index(label)]) if label in classes else 0.0 for label in labels}
            for p in classical.predict_proba([r.text for r in rows])]


def _averaged(predicted: dict[str, Any], other: dict[str, float]) -> dict[str, Any]:
    mean = {label: (p + other[label]) / 2 for label, p in predicted["probabilities"].items()}
    best = max(mean, key=mean.__getitem__)
    return {"label": best, "score": mean[best], "probabilities": mean}


def _predict(folder: Path, metadata: dict[str, Any], rows: Sequence[Row],
             config: TrainConfig) -> tuple[Any, list[dict[str, Any]]]:
    """What the model in ``folder`` (``metadata``: its ``langbert.json``) makes of ``rows``, read as training
    reads (on the accelerator, bf16 where it is): its task's ``gather`` outputs and their ``decode``."""
    import torch
    from transformers import AutoTokenizer

    task = task_from_state(metadata["task"])
    model = task.load_model(str(folder)).to("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    outputs = forward_batches(task, model, tokenizer, rows, int(metadata["max_length"]), config.eval_batch_size,
                              bf16=use_bf16(config.bf16))
    return outputs, task.decode(outputs, rows)
