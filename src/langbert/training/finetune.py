"""``train(config) -> output folder``: one task-agnostic path over HF ``Trainer``.

Read top to bottom: load data -> fit the task's labels -> tokenise once -> build the model -> Trainer
(narrow overrides for atomic checkpoints and per-group learning rates) -> keep the best -> evaluate ->
write the folder.
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

import numpy as np
import torch
from transformers import AutoTokenizer, EarlyStoppingCallback, TrainerCallback, TrainingArguments
from transformers.integrations import TensorBoardCallback

from ..config import TrainConfig, resolve_model
from ..data.builtin import get_builtin
from ..data.check import vocabulary_hint
from ..data.coverage import coverage
from ..data.loading import Splits, load_splits
from ..errors import ConfigError
from ..evaluation import LOWER_IS_BETTER, write_reports
from ..tasks import Task, create_task
from ..tasks.forward import forward_batches
from ..tasks.heads import checkpoint_order
from . import peft
from .run import RunFolder, finish, open_run, prepare_model, save_model, shared_arguments, train_from
from .trainer import FeatureDataset, LangbertTrainer, MetricsJsonl

logger = logging.getLogger(__name__)


def train(config: TrainConfig, callbacks: Sequence[TrainerCallback] = (), splits: Splits | None = None):
    run = open_run(config.output_dir, config.resume)
    model_path = resolve_model(config.model)
    task, splits = prepare_task(config, splits)
    task.labels = checkpoint_order(task.labels, model_path)  # before encoding: targets are label indices
    tokenizer = _fast_tokenizer(config.model, model_path)
    unk_rate = _check_vocabulary(tokenizer, splits.train, config.model)
    train_set = FeatureDataset(task.encode(splits.train, tokenizer, config.max_length))
    # Shortest first, evaluated in this order (LangbertTrainer's eval sampler), so the task can line the
    # predictions up with its features and rows, and batches still carry little padding.
    dev_set = FeatureDataset(sorted(task.encode(splits.dev, tokenizer, config.max_length),
                                    key=lambda f: len(f["input_ids"])))
    task.bind_eval(splits.dev, dev_set.features)
    if not task.windowed:  # a windowed task reads a long text in overlapping windows: nothing is cut
        _log_truncation(train_set, config.max_length, "train")

    torch.manual_seed(config.seed)  # the new head's initialisation is part of the run's identity
    model = task.build_model(model_path, dropout=config.dropout)
    args = training_arguments(config, task, run)
    prepare_model(model, args)
    model, extra = _with_adapter(model, config, task, len(train_set))
    trainer = LangbertTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=dev_set,
                              processing_class=tokenizer, data_collator=task.collator(tokenizer),
                              compute_metrics=task.compute_metrics, compute_loss_func=task.loss_function(),
                              callbacks=[*_callbacks(config, run), *extra, *callbacks])
    trainer.keep_checkpoints = config.keep_checkpoints
    # Rows of a transferred vocabulary start where no training put them, the body is already trained.
    trainer.lr_scales = [([model.get_input_embeddings().weight], config.embedding_lr_scale),
                         *task.lr_scaled_parameters()]
    train_from(trainer, run)

    if not trainer.is_world_process_zero():
        return run.out
    save_model(trainer, tokenizer, run.out)
    task.save_extra(trainer.model, run.out)
    reports = {name: task.evaluate(forward_batches(task, trainer.model, tokenizer, rows, config.max_length,
                                                   config.eval_batch_size), rows)
               for name, rows in (("dev", splits.dev), ("test", splits.test)) if rows}
    metric = args.metric_for_best_model
    write_reports(reports, run.out, title=f"{config.task} on {splits.source}",
                  note=f"The checkpoint kept is the one with the best dev `{metric}`.")
    return finish(run.out, metric, f"{config.task}: training loss and dev {metric}", {
        "task": task.state(),
        "max_length": config.max_length,
        "base_model": config.model,
        "config": config.to_dict(),
        "data": {"source": splits.source, "fingerprints": splits.fingerprints(),
                 "rows": {n: len(r) for n, r in splits.items()}, "train_unk_rate": unk_rate},
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_dev_metric": {metric: trainer.state.best_metric},
        "metrics": {name: r.metrics for name, r in reports.items()},
        "steps": trainer.state.global_step,
        "parameters": peft.trainable_report(trainer.model),
    })


def task_for(config: TrainConfig) -> Task:
    """The config's task with its options: a built-in dataset's (e.g. BMES tags for word segmentation),
    overridden by the recipe's and the flags'. Validated here, before any data or model is loaded."""
    implied = get_builtin(config.data.dataset).task_options if config.data.dataset else {}
    return create_task(config.task, {**implied, **config.options})


def prepare_task(config: TrainConfig, splits: Splits | None = None) -> tuple[Task, Splits]:
    task = task_for(config)
    if config.peft != "none":
        peft.get_peft_method(config.peft)  # an unknown method fails before the data is read
    splits = splits or load_splits(config.data, task.read, task.parse_label)
    task.fit(splits.train)
    for name, rows in splits.items():
        task.check(rows, name)
        task.check_rows_have_pairs(rows)
    if not splits.dev:
        raise ConfigError("no dev rows: give a dev file or more training rows")
    return task, splits


def training_arguments(config: TrainConfig, task: Task, run: RunFolder) -> TrainingArguments:
    metric = config.metric or task.default_metric
    per_epoch = config.eval_steps is None
    return shared_arguments(
        config, run,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        # One kernel for the whole update, HF's own default since torch 2.8.
        optim="adamw_torch_fused" if config.optimizer == "adamw" else "sgd",
        optim_args=f"momentum={config.momentum}" if config.optimizer == "sgd" else None,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        eval_strategy="epoch" if per_epoch else "steps",
        save_strategy="epoch" if per_epoch else "steps",
        eval_steps=config.eval_steps,
        save_steps=config.eval_steps,
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


def _with_adapter(model, config: TrainConfig, task: Task, train_features: int):
    """The model wrapped by the config's peft method (and the callbacks it needs), or as it was."""
    if config.peft == "none":
        return model, []
    steps = config.max_steps if config.max_steps > 0 else math.ceil(
        train_features / (config.batch_size * config.gradient_accumulation_steps)) * math.ceil(config.epochs)
    model, callbacks = peft.wrap(model, config.peft, task.head_modules(), config.lora_r, config.lora_alpha,
                                 config.lora_dropout, config.target_modules, total_steps=steps)
    task.bind(model)
    logger.info("peft %s: %s", config.peft, peft.trainable_report(model))
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
