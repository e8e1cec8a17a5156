"""``train(config) -> output folder``: one task-agnostic path over HF ``Trainer``.

Read top to bottom: load data -> fit the task's labels -> tokenise once -> build the model ->
Trainer (with narrow overrides for atomic checkpoints) -> keep the best -> evaluate -> write the folder.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers import AutoTokenizer, EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.integrations import TensorBoardCallback

from . import adapters, checkpoints, cpu_dropout
from .artifacts import write_metadata
from .config import TrainConfig, resolve_model
from .data.loading import Splits, load_splits
from .errors import ConfigError
from .evaluation import LOWER_IS_BETTER, plot_training, write_reports
from .hardware import use_bf16
from .predict import Predictor
from .tasks import Task, create_task
from .tasks.heads import checkpoint_order
from .tasks.pooling import resolve_pooling

logger = logging.getLogger(__name__)


class FeatureDataset(torch.utils.data.Dataset):
    """Features tokenised once up front; ``lengths`` lets the length-grouped sampler skip a pass."""

    def __init__(self, features: list[dict]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]


class LangbertTrainer(Trainer):
    """HF Trainer whose checkpoints count only once complete (see ``checkpoints``), and where some
    parameters (new vocabulary rows, a CRF's scores) may learn at a multiple of the base learning rate."""

    keep_checkpoints: int = 2
    lr_scales: Sequence[tuple[list[Any], float]] = ()
    """(parameters, multiple of the learning rate) pairs, each moved into parameter groups of its own."""

    def __init__(self, *args: Any, compute_loss_func: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Every langbert loss is a per-batch mean: the models' own (BERT-family heads take **kwargs but
        # ignore num_items_in_batch), the CRF's, the masked-only MLM's. HF would take any of them as
        # already normalised over the accumulated batch and skip dividing by the accumulation steps, so
        # gradients came out N times too large under gradient accumulation (Adam hides it; clipping and
        # SGD do not). Stated once here: no model gets num_items_in_batch, every loss is divided.
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = False
        # A task's own loss (CRF, masked-only MLM) is applied in compute_loss below, not handed to HF as
        # compute_loss_func: HF 5.17 never divides such a loss by the accumulation steps
        # (loss_is_scaled_for_ga came later), so the division above would not hold there.
        self.batch_mean_loss = compute_loss_func

    def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False, num_items_in_batch: Any = None):
        if self.batch_mean_loss is None or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = self.batch_mean_loss(outputs, labels)
        return (loss, outputs) if return_outputs else loss

    def _get_eval_sampler(self, eval_dataset: Any) -> Any:
        # HF evaluates in length-grouped random order when training groups by length; the dev features are
        # already sorted by length, and a task's dev metric (``Task.bind_eval``) needs them in that order.
        if eval_dataset is None or self.args.world_size > 1:
            return None  # distributed: accelerate splits the set in order and gathers it back in order
        return torch.utils.data.SequentialSampler(eval_dataset)

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        # HF 5 matches missing keys against _keys_to_ignore_on_save, which tied models no longer set: every
        # resumed masked-LM run warned that its decoder, tied to the embeddings and so never saved, was missing.
        tied = set(getattr(self.model, "_tied_weights_keys", None) or ())
        if load_result.missing_keys and set(load_result.missing_keys) <= tied:
            self.model.tie_weights()
            load_result = load_result._replace(missing_keys=[])
        super()._issue_warnings_after_load(load_result)

    def create_optimizer(self, model: Any = None) -> Any:
        optimizer = super().create_optimizer(model)
        if getattr(self, "_lr_groups_split", False):  # HF calls this again on resume; split once
            return optimizer
        self._lr_groups_split = True
        # Groups of their own keep each parameter's weight decay; the schedule scales every group alike.
        for params, scale in self.lr_scales:
            ids = {id(p) for p in params}
            if scale == 1.0 or not ids:
                continue
            for group in list(optimizer.param_groups):
                moved = [p for p in group["params"] if id(p) in ids]
                if moved:
                    group["params"] = [p for p in group["params"] if id(p) not in ids]
                    optimizer.add_param_group({**{k: v for k, v in group.items() if k != "params"},
                                               "params": moved, "lr": group["lr"] * scale})
        return optimizer

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = Path(self._get_output_dir(trial)) / f"checkpoint-{self.state.global_step}"
            checkpoints.mark_complete(folder)
            checkpoints.rotate(folder.parent, self.keep_checkpoints, self.state.best_model_checkpoint)


class MetricsJsonl(TrainerCallback):
    """Every log line (loss, lr, dev metrics) as JSON lines: easy to plot, grep and diff."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and state.global_step > 0 and self.path.exists():
            # Resumed: drop lines logged after the checkpoint, they will be logged again.
            kept = [l for l in self.path.read_text(encoding="utf-8").splitlines()
                    if l.strip() and json.loads(l).get("step", 0) <= state.global_step]
            self.path.write_text("".join(l + "\n" for l in kept), encoding="utf-8")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


def task_options(config: TrainConfig) -> dict:
    """Options for the task's constructor: the generic ones, plus task-specific ones the task accepts.
    A non-default option the task does not take is an error, not silently ignored."""
    import inspect

    from .data.builtin import get_builtin
    from .tasks import get_task_class

    accepted = inspect.signature(get_task_class(config.task).__init__).parameters
    builtin = get_builtin(config.data.dataset).task_options if config.data.dataset else {}
    wanted = {"threshold": config.threshold, "crf": config.crf, "scheme": config.tag_scheme or builtin.get("scheme"),
              "stride": config.stride, "pooling": config.pooling}
    defaults = {"threshold": 0.5, "crf": False, "scheme": None, "stride": 32, "pooling": "auto"}
    if "pooling" in accepted:
        wanted["pooling"] = resolve_pooling(config.pooling, resolve_model(config.model))
    options = {}
    for key, value in wanted.items():
        if key in accepted:
            if value is not None:
                options[key] = value
        elif value != defaults[key]:
            raise ConfigError(f"task '{config.task}' has no option '{key}'")
    return options


def prepare_task(config: TrainConfig, splits: Splits | None = None) -> tuple[Task, Splits]:
    task = create_task(config.task, **task_options(config))
    splits = splits or load_splits(config.data, task.read, task.parse_label)
    task.fit(splits.train)
    for name, rows in splits.items():
        task.check(rows, name)
        task.check_rows_have_pairs(rows)
    if not splits.dev:
        raise ConfigError("no dev rows: give a dev file or more training rows")
    return task, splits


def training_arguments(config: TrainConfig, task: Task, checkpoint_dir: Path) -> TrainingArguments:
    metric = config.metric or task.default_metric
    per_epoch = config.eval_steps is None
    bf16 = use_bf16(config.bf16)
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        # HF's own default since torch 2.8 (one kernel for the whole update). In isolation it ran ~6x faster
        # than the per-parameter loop on MiniLM-sized tensors; end to end (benchmarks/throughput.py) the
        # epoch took the same time either way.
        optim="adamw_torch_fused" if config.optimizer == "adamw" else "sgd",
        optim_args=f"momentum={config.momentum}" if config.optimizer == "sgd" else None,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        lr_scheduler_type=config.scheduler,
        warmup_steps=config.warmup_ratio,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        eval_strategy="epoch" if per_epoch else "steps",
        save_strategy="epoch" if per_epoch else "steps",
        eval_steps=config.eval_steps,
        save_steps=config.eval_steps,
        save_total_limit=None,  # rotation happens after the COMPLETE marker, in LangbertTrainer
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=metric not in LOWER_IS_BETTER,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        report_to="none",  # TensorBoard is added explicitly, writing into the output folder
        disable_tqdm=not config.progress,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        # Our losses are per-batch means. With this on (HF's default) Trainer multiplies them by the number
        # of processes for any model whose forward takes **kwargs, BERT included: DDP gradients come out
        # world-size times too large (invisible to Adam, not to SGD or clipping).
        average_tokens_across_devices=False,
    )


def train(config: TrainConfig, callbacks: Sequence[TrainerCallback] = (), splits: Splits | None = None) -> Path:
    out = Path(config.output_dir)
    checkpoint_dir = out / "checkpoints"
    if not config.resume and checkpoints.checkpoints(checkpoint_dir):
        raise ConfigError(f"{checkpoint_dir} holds checkpoints of an earlier run: pass --resume to continue it, "
                          "or choose another --output-dir")
    out.mkdir(parents=True, exist_ok=True)
    model_path = resolve_model(config.model)

    task, splits = prepare_task(config, splits)
    task.labels = checkpoint_order(task.labels, model_path)  # before encoding: targets are label indices
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{config.model}: langbert needs a fast (Rust) tokenizer for character offsets")
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
    args = training_arguments(config, task, checkpoint_dir)
    if args.use_cpu:
        cpu_dropout.install(model)
    extra: list[TrainerCallback] = [MetricsJsonl(out / "metrics.jsonl"), _tensorboard(out / "tensorboard")]
    if config.peft != "none":
        steps = config.max_steps if config.max_steps > 0 else math.ceil(
            len(train_set) / (config.batch_size * config.gradient_accumulation_steps)) * math.ceil(config.epochs)
        model = adapters.wrap(model, config.peft, task.head_modules(), config.lora_r, config.lora_alpha,
                              config.lora_dropout, config.target_modules, total_steps=steps)
        task.bind(model)
        logger.info("peft %s: %s", config.peft, adapters.trainable_report(model))
        if config.peft == "adalora":
            extra.append(adapters.AdaLoraBudget(model))
    if config.early_stopping_patience:
        extra.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    trainer = LangbertTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=dev_set,
        processing_class=tokenizer,
        data_collator=task.collator(tokenizer),
        compute_metrics=task.compute_metrics,
        compute_loss_func=task.loss_function(),
        callbacks=[*extra, *callbacks],
    )
    trainer.keep_checkpoints = config.keep_checkpoints
    # Rows of a transferred vocabulary start where no training put them, the body is already trained.
    trainer.lr_scales = [([model.get_input_embeddings().weight], config.embedding_lr_scale),
                         *task.lr_scaled_parameters(config)]
    resume_from = checkpoints.last_complete(checkpoint_dir) if config.resume else None
    if config.resume and resume_from is None:
        logger.warning("--resume: no complete checkpoint in %s, starting from scratch", checkpoint_dir)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)

    if not trainer.is_world_process_zero():
        return out
    trainer.save_model(str(out))
    (out / "training_args.bin").unlink(missing_ok=True)  # a pickle; the folder stays loadable without pickles
    task.save_extra(trainer.model, out)
    tokenizer.save_pretrained(str(out))
    predictor = Predictor(task, trainer.model, tokenizer, config.max_length, {})
    reports = {name: predictor.evaluate(rows, config.eval_batch_size)
               for name, rows in (("dev", splits.dev), ("test", splits.test)) if rows}
    write_reports(reports, out, title=f"{config.task} on {splits.source}")
    plot_training(out / "metrics.jsonl", args.metric_for_best_model, out / "training.png",
                  title=f"{config.task}: training loss and dev {args.metric_for_best_model}")
    write_metadata(out, {
        "task": task.state(),
        "max_length": config.max_length,
        "base_model": config.model,
        "config": config.to_dict(),
        "data": {"source": splits.source, "fingerprints": splits.fingerprints(),
                 "rows": {n: len(r) for n, r in splits.items()}},
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_dev_metric": {args.metric_for_best_model: trainer.state.best_metric},
        "metrics": {name: r.metrics for name, r in reports.items()},
        "steps": trainer.state.global_step,
        "parameters": adapters.trainable_report(trainer.model),
    })
    return out


def _tensorboard(path: Path) -> TensorBoardCallback:
    callback = TensorBoardCallback()
    callback.logging_dir = str(path)  # HF would pick a dated folder under checkpoints/
    return callback


def _log_truncation(dataset: FeatureDataset, max_length: int, split: str) -> None:
    lengths = np.array([len(f["input_ids"]) for f in dataset.features])
    truncated = int((lengths >= max_length).sum())
    if truncated:
        logger.warning("%d of %d %s texts reach max_length=%d tokens and are truncated",
                       truncated, len(lengths), split, max_length)
