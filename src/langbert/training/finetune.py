"""``train(config) -> output folder``: one task-agnostic path over HF ``Trainer``.

Read top to bottom: load data -> fit the task's labels -> tokenise once -> build the model -> Trainer
(narrow overrides for atomic checkpoints and per-group learning rates) -> keep the best -> evaluate ->
write the folder.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from transformers import AutoTokenizer, EarlyStoppingCallback, TrainerCallback, TrainingArguments
from transformers.integrations import TensorBoardCallback

from ..artifacts import vocabulary_from_adapt
from ..config import TrainConfig, resolve_model
from ..data.builtin import get_builtin
from ..data.check import vocabulary_hint
from ..data.coverage import coverage
from ..data.loading import Splits, load_splits
from ..data.rows import Row
from ..errors import ConfigError
from ..evaluation import LOWER_IS_BETTER, write_reports
from ..data.script import converted_rows, declare_conversion
from ..tasks import Task, create_task
from ..tasks.forward import forward_batches
from ..tasks.heads import checkpoint_order
from . import peft, setfit
from .consistency import Consistency
from .layer_decay import layer_scales
from .run import RunFolder, finish, open_run, prepare_model, save_model, shared_arguments, train_from
from .trainer import FeatureDataset, LangbertTrainer, MetricsJsonl
from .unlabeled import unlabeled_pool
from .weight_average import UpdateAverage, WeightAverage, trainable_weights, weights_applied

logger = logging.getLogger(__name__)


def train(config: TrainConfig, callbacks: Sequence[TrainerCallback] = (), splits: Splits | None = None,
          unlabeled: Sequence[Row] | None = None):
    """``unlabeled`` rows (their labels ignored) replace ``config.unlabeled``'s sources for consistency
    training."""
    run = open_run(config.output_dir, config.resume)
    model_path = resolve_model(config.model)
    task, splits = prepare_task(config, splits)
    task.labels = checkpoint_order(task.labels, model_path)  # before encoding: targets are label indices
    tokenizer = _fast_tokenizer(config.model, model_path)
    if config.script_conversion:
        declare_conversion(tokenizer, config.script_conversion)
    train_rows = converted_rows(splits.train, tokenizer)  # as the tokenizer reads them
    unk_rate = _check_vocabulary(tokenizer, train_rows, config.model)
    train_set = FeatureDataset(task.encode(train_rows, tokenizer, config.max_length))
    # Shortest first, evaluated in this order (LangbertTrainer's eval sampler), so the task can line the
    # predictions up with its features and rows, and batches still carry little padding.
    dev_set = FeatureDataset(sorted(task.encode(converted_rows(splits.dev, tokenizer), tokenizer, config.max_length),
                                    key=lambda f: len(f["input_ids"])))
    task.bind_eval(splits.dev, dev_set.features)
    if not task.windowed:  # a windowed task reads a long text in overlapping windows: nothing is cut
        _log_truncation(train_set, config.max_length, "train")

    consistency = _consistency(config, task, tokenizer, splits, unlabeled) if config.consistency_weight else None

    torch.manual_seed(config.seed)  # the new head's initialisation is part of the run's identity
    model = task.build_model(model_path, dropout=config.dropout)
    fit = {"finetune": _finetune, "setfit": _setfit, "zero-shot": _zero_shot}[config.method]
    unsupervised = {"consistency": consistency} if consistency is not None else {}  # fine-tuning only (config)
    fitted = fit(config, task, model, tokenizer, train_set, dev_set, run, callbacks, **unsupervised)
    if fitted is None:  # not the main process of a distributed run: rank 0 writes the folder
        return run.out
    task.save_extra(fitted.model, run.out)

    def score() -> dict:
        return {name: task.evaluate(forward_batches(task, fitted.model, tokenizer, rows, config.max_length,
                                                    config.eval_batch_size), rows)
                for name, rows in (("dev", splits.dev), ("test", splits.test)) if rows}

    reports = score()
    if fitted.raw_weights is not None:  # what the average gave: the same checkpoint's raw weights, scored
        with weights_applied(fitted.model, fitted.raw_weights):
            fitted.extra["metrics_raw_weights"] = {name: r.metrics for name, r in score().items()}
    metric = config.metric or task.default_metric
    write_reports(reports, run.out, title=f"{config.task} on {splits.source}", note=fitted.note)
    return finish(run.out, metric, f"{config.task}: training loss and dev {metric}", {
        "task": task.state(),
        "max_length": config.max_length,
        "base_model": config.model,
        "config": config.to_dict(),
        "data": {"source": splits.source, "fingerprints": splits.fingerprints(),
                 "rows": {n: len(r) for n, r in splits.items()}, "train_unk_rate": unk_rate},
        "best_checkpoint": fitted.best_checkpoint,
        "best_dev_metric": {metric: fitted.best_metric},
        "metrics": {name: r.metrics for name, r in reports.items()},
        "steps": fitted.steps,
        "parameters": peft.trainable_report(fitted.model),
        **fitted.extra,
    })


@dataclass
class Fitted:
    """What a training method leaves for evaluation and the folder's metadata (the model is saved)."""

    model: Any
    steps: int
    note: str
    best_checkpoint: str | None = None
    best_metric: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw_weights: dict[str, torch.Tensor] | None = None
    """Under ``ema_decay``, the kept checkpoint's own weights (the model holds their average)."""


def _finetune(config, task, model, tokenizer, train_set, dev_set, run, callbacks,
              consistency: Consistency | None = None) -> Fitted | None:
    """The task's head and body trained on the labels (and, with ``consistency``, on unlabelled texts), the
    best dev checkpoint kept."""
    args = training_arguments(config, task, run, len(train_set))
    prepare_model(model, args)
    model, extra = _with_adapter(model, config, task, len(train_set), args.max_steps)
    trainer = LangbertTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=dev_set,
                              processing_class=tokenizer, data_collator=task.collator(tokenizer),
                              compute_metrics=task.compute_metrics, compute_loss_func=task.loss_function(),
                              callbacks=[*_callbacks(config, run), *extra, *callbacks])
    trainer.keep_checkpoints = config.keep_checkpoints
    # Rows of a transferred vocabulary start where no training put them, the body is already trained.
    # Under peft everything trained already takes the adapter's larger rate. The multiples compose: a
    # word embedding under layer decay takes the embeddings' decayed rate times its own scale.
    embeddings = [([model.get_input_embeddings().weight], config.embedding_lr_scale)] if config.peft == "none" else []
    trainer.lr_scales = [*layer_scales(model, config.layer_lr_decay), *embeddings, *task.lr_scaled_parameters()]
    if config.ema_decay:
        trainer.weight_average = WeightAverage(model, config.ema_decay)
        trainer.add_callback(UpdateAverage(trainer.weight_average))
    trainer.consistency = consistency
    train_from(trainer, run)
    if not trainer.is_world_process_zero():
        return None
    recorded = {"consistency": consistency.summary()} if consistency is not None else {}
    if consistency is not None:
        logger.info("consistency training: %s", recorded["consistency"])
    raw = None
    if trainer.weight_average is not None:
        raw = trainable_weights(trainer.model)
        trainer.weight_average.copy_to(trainer.model)
    save_model(trainer, tokenizer, run.out)
    averaged = f" (its exponential moving average of the weights, decay {config.ema_decay})" if raw else ""
    return Fitted(trainer.model, trainer.state.global_step,
                  f"The checkpoint kept is the one with the best dev `{args.metric_for_best_model}`{averaged}.",
                  trainer.state.best_model_checkpoint, trainer.state.best_metric, recorded, raw_weights=raw)


def _setfit(config, task, model, tokenizer, train_set, dev_set, run, callbacks) -> Fitted | None:
    """SetFit: the encoder trained on pairs of training texts, then a logistic-regression head (``setfit``)."""
    pairs = setfit.pair_dataset(train_set.features, config)
    max_steps, save_steps = planned_steps(config, len(pairs))
    args = shared_arguments(config, run, num_train_epochs=config.epochs, max_steps=max_steps,
                            gradient_accumulation_steps=config.gradient_accumulation_steps,
                            optim="adamw_torch_fused" if config.optimizer == "adamw" else "sgd",
                            eval_strategy="no", save_strategy="epoch" if save_steps is None else "steps",
                            save_steps=save_steps)
    prepare_model(model, args)
    siamese = setfit.Siamese(model)
    trainer = LangbertTrainer(model=siamese, args=args, train_dataset=pairs, processing_class=tokenizer,
                              data_collator=setfit.PairCollator(task.collator(tokenizer)),
                              callbacks=[*_callbacks(config, run), *callbacks])
    trainer.keep_checkpoints = config.keep_checkpoints
    trainer.lr_scales = [([model.get_input_embeddings().weight], config.embedding_lr_scale)]
    train_from(trainer, run)
    if not trainer.is_world_process_zero():
        return None
    head = setfit.fit_head(model, train_set.features, task.collator(tokenizer), config.eval_batch_size, config.seed)
    logger.info("setfit: %d pairs, %d steps; logistic-regression head, training accuracy %.3f",
                len(pairs), trainer.state.global_step, head["train_accuracy"])
    model.save_pretrained(str(run.out))
    tokenizer.save_pretrained(str(run.out))
    return Fitted(model, trainer.state.global_step,
                  f"SetFit: the encoder trained on {len(pairs)} pairs of training texts, then a logistic-regression "
                  "head on its vectors; no dev selection.", extra={"setfit": {"pairs": len(pairs), **head}})


def _zero_shot(config, task, model, tokenizer, train_set, dev_set, run, callbacks) -> Fitted:
    """No training step: the checkpoint's own head (``Task.head_in_checkpoint``) as it is."""
    model.eval()
    model.save_pretrained(str(run.out))
    tokenizer.save_pretrained(str(run.out))
    (run.out / "metrics.jsonl").touch()
    return Fitted(model, 0, "Zero-shot: no training step; the training split was only checked.")


def _consistency(config: TrainConfig, task: Task, tokenizer: Any, splits: Splits,
                 unlabeled: Sequence[Row] | None) -> Consistency:
    unlabeled = unlabeled_pool("consistency_weight", config, task, splits, unlabeled)
    rows = [dataclasses.replace(r, label=None, probabilities=None) for r in converted_rows(unlabeled, tokenizer)]
    features = task.encode(rows, tokenizer, config.max_length, with_labels=False)
    return Consistency(features, task.collator(tokenizer), tokenizer.all_special_ids,
                       weight=config.consistency_weight, noise=config.consistency_noise,
                       threshold=config.consistency_threshold, temperature=config.consistency_temperature,
                       batch_size=config.batch_size * config.consistency_batch_ratio, seed=config.seed,
                       rank=int(os.environ.get("RANK", "0")))


def task_for(config: TrainConfig) -> Task:
    """The config's task with its options: a built-in dataset's (e.g. BMES tags for word segmentation),
    overridden by the recipe's and the flags'. Validated here, before any data or model is loaded."""
    implied = get_builtin(config.data.dataset).task_options if config.data.dataset else {}
    return create_task(config.task, {**implied, **config.options})


def prepare_task(config: TrainConfig, splits: Splits | None = None) -> tuple[Task, Splits]:
    task = task_for(config)
    if config.peft != "none":
        peft.get_peft_method(config.peft)  # an unknown method fails before the data is read
    if config.method == "setfit" and not task.setfit:
        raise ConfigError(f"method setfit: task '{task.name}' has no contrastive recipe (single-label "
                          "classification over a pooled vector has: text-classification, pair-classification)")
    if config.method == "zero-shot" and not task.head_in_checkpoint:
        raise ConfigError(f"method zero-shot: task '{task.name}' starts with a new, untrained head; a task that "
                          "reads the checkpoint's own head (cloze-classification) can predict without training")
    if config.method != "finetune" and config.peft != "none":
        raise ConfigError(f"method {config.method} trains no adapter: use peft with method finetune")
    splits = splits or load_splits(config.data, task.read, task.parse_label)
    task.fit(splits.train)
    for name, rows in splits.items():
        task.check(rows, name)
        task.check_rows_have_pairs(rows)
    if not splits.dev:
        raise ConfigError("no dev rows: give a dev file or more training rows")
    return task, splits


def planned_steps(config: TrainConfig, train_features: int) -> tuple[int, int | None]:
    """(max_steps, eval_steps) for ``train_features`` examples: the config's, or ``min_steps`` where its
    epochs make fewer optimizer steps, evaluated as often as those epochs would have been."""
    per_epoch = max(1, math.ceil(train_features / (config.batch_size * config.gradient_accumulation_steps)))
    planned = config.max_steps if config.max_steps > 0 else math.ceil(config.epochs * per_epoch)
    if config.max_steps > 0 or planned >= config.min_steps:
        logger.info("training: %d examples, %d optimizer steps (%d per epoch)", train_features, planned, per_epoch)
        return config.max_steps, config.eval_steps
    evaluations = max(1, math.ceil(config.epochs)) if config.eval_steps is None else max(1, planned // config.eval_steps)
    eval_steps = max(1, math.ceil(config.min_steps / evaluations))
    logger.info("training: %d examples make %d optimizer steps in %g epoch(s); running min_steps=%d instead "
                "(%.1f epochs), evaluated every %d steps", train_features, planned, config.epochs, config.min_steps,
                config.min_steps / per_epoch, eval_steps)
    return config.min_steps, eval_steps


def training_arguments(config: TrainConfig, task: Task, run: RunFolder, train_features: int) -> TrainingArguments:
    metric = config.metric or task.default_metric
    max_steps, eval_steps = planned_steps(config, train_features)
    per_epoch = eval_steps is None
    return shared_arguments(
        config, run,
        learning_rate=config.learning_rate if config.peft == "none" else config.peft_learning_rate,
        num_train_epochs=config.epochs,
        max_steps=max_steps,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        # One kernel for the whole update, HF's own default since torch 2.8.
        optim="adamw_torch_fused" if config.optimizer == "adamw" else "sgd",
        optim_args=f"momentum={config.momentum}" if config.optimizer == "sgd" else None,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        eval_strategy="epoch" if per_epoch else "steps",
        save_strategy="epoch" if per_epoch else "steps",
        eval_steps=eval_steps,
        save_steps=eval_steps,
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=metric not in LOWER_IS_BETTER,
    )


def _fast_tokenizer(name: str, path: str):
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{name}: langbert needs a fast (Rust) tokenizer for character offsets")
    return tokenizer


def _check_vocabulary(tokenizer, rows, model: str) -> float | None:
    """The share of [UNK] tokens in (up to 2,000 of) the training texts; a warning where the vocabulary
    reads too little of them for fine-tuning alone to make up for it."""
    texts = [t for r in rows[:2000] for t in (r.text, r.pair) if t]
    unk_rate = coverage(tokenizer, texts)["unk_rate"]
    hint = vocabulary_hint(unk_rate)
    if hint:
        logger.warning("training text under %s: %s", model, hint)
    return unk_rate


def _with_adapter(model, config: TrainConfig, task: Task, train_features: int, max_steps: int):
    """The model wrapped by the config's peft method (and the callbacks it needs), or as it was."""
    if config.peft == "none":
        return model, []
    steps = max_steps if max_steps > 0 else math.ceil(
        train_features / (config.batch_size * config.gradient_accumulation_steps)) * math.ceil(config.epochs)
    embeddings = peft.embeddings_mode(config.peft, config.peft_embeddings,
                                      vocabulary_from_adapt(resolve_model(config.model)))
    model, callbacks = peft.wrap(model, config.peft, task.head_modules(), config.lora_r, config.lora_alpha,
                                 config.lora_dropout, config.target_modules, total_steps=steps, embeddings=embeddings)
    task.bind(model)
    logger.info("peft %s at learning rate %g (word embeddings: %s): %s", config.peft, config.peft_learning_rate,
                embeddings, peft.trainable_report(model))
    return model, callbacks


def _callbacks(config: TrainConfig, run: RunFolder) -> list[TrainerCallback]:
    tensorboard = TensorBoardCallback()
    tensorboard.logging_dir = str(run.out / "tensorboard")  # HF would pick a dated folder under checkpoints/
    found: list[TrainerCallback] = [MetricsJsonl(run.out / "metrics.jsonl"), tensorboard]
    if config.early_stopping_patience:
        found.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    return found


def _log_truncation(dataset: FeatureDataset, max_length: int, split: str) -> None:
    lengths = np.array([len(f["input_ids"]) for f in dataset.features])
    truncated = int((lengths >= max_length).sum())
    if truncated:
        logger.warning("%d of %d %s texts reach max_length=%d tokens and are truncated",
                       truncated, len(lengths), split, max_length)
