"""HF ``Trainer`` with narrow overrides that fine-tuning and pretraining both run on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import Trainer, TrainerCallback

from . import checkpoints
from .consistency import Consistency
from .weight_average import WeightAverage


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
    """(parameters, multiple of the learning rate) pairs, each moved into parameter groups of its own; a
    parameter named in several takes the product of their multiples."""
    weight_average: WeightAverage | None = None
    """Where set, evaluation reads the averaged weights (the raw ones are scored too, as ``eval_raw_*``),
    each checkpoint saves the average beside the raw weights, and loading a checkpoint (resume, best
    model) loads its average too."""

    consistency: Consistency | None = None
    """Where set, every training step adds its consistency loss on unlabelled texts (``consistency``)."""
    _consistency_started = False

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
        result = self._labelled_loss(model, inputs, return_outputs, num_items_in_batch)
        if self.consistency is None or not model.training:
            return result
        if not self._consistency_started:  # here, not in on_train_begin: a resumed state is loaded after it
            self.consistency.start(self.state.global_step * self.args.gradient_accumulation_steps)
            self._consistency_started = True
        loss, outputs = result if return_outputs else (result, None)
        loss = loss + self.consistency.loss(model)
        return (loss, outputs) if return_outputs else loss

    def _labelled_loss(self, model: Any, inputs: dict, return_outputs: bool, num_items_in_batch: Any):
        if self.batch_mean_loss is None or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = self.batch_mean_loss(outputs, labels)
        return (loss, outputs) if return_outputs else loss

    def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval"):
        if self.weight_average is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        # The raw weights' scores are logged only: early stopping and the best checkpoint follow the average.
        loader = self.get_eval_dataloader(eval_dataset)
        raw = self.evaluation_loop(loader, description="Evaluation (raw weights)", ignore_keys=ignore_keys,
                                   metric_key_prefix=f"{metric_key_prefix}_raw")
        self.log(raw.metrics)
        with self.weight_average.applied(self.model):
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        self._load_average(resume_from_checkpoint)

    def _load_best_model(self) -> None:
        super()._load_best_model()
        self._load_average(self.state.best_model_checkpoint)

    def _load_average(self, folder: str) -> None:
        if self.weight_average is not None and not self.weight_average.load(folder):
            raise FileNotFoundError(f"{folder} holds no weight average: it was saved by a run without ema_decay")

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
        optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
        return optimizer

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = Path(self._get_output_dir(trial)) / f"checkpoint-{self.state.global_step}"
            if self.weight_average is not None:
                self.weight_average.save(folder)
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
