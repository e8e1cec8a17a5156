"""What fine-tuning and masked-LM pretraining share around the Trainer: the output folder (a guard against
mixing two runs in one folder, resuming from the last complete checkpoint), the arguments both pass to
HF's ``TrainingArguments``, the CPU kernels, and finishing the folder so that it counts as done."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments

from ..artifacts import write_metadata
from ..errors import ConfigError
from ..evaluation import plot_training
from ..kernels import cpu_dropout
from ..kernels.hardware import use_bf16
from . import checkpoints

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunFolder:
    out: Path
    checkpoints: Path
    resume_from: Path | None
    """The newest complete checkpoint when resuming, else None."""


def open_run(output_dir: str, resume: bool) -> RunFolder:
    out = Path(output_dir)
    folder = out / "checkpoints"
    if not resume and checkpoints.checkpoints(folder):
        raise ConfigError(f"{folder} holds checkpoints of an earlier run: pass --resume to continue it, "
                          "or choose another --output-dir")
    out.mkdir(parents=True, exist_ok=True)
    resume_from = checkpoints.last_complete(folder) if resume else None
    if resume and resume_from is None:
        logger.warning("--resume: no complete checkpoint in %s, starting from scratch", folder)
    return RunFolder(out, folder, resume_from)


def shared_arguments(cfg: Any, run: RunFolder, **specific: Any) -> TrainingArguments:
    """``TrainingArguments`` from the settings every langbert config has, plus the caller's own."""
    return TrainingArguments(
        output_dir=str(run.checkpoints),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=specific.pop("learning_rate", cfg.learning_rate),
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a ratio of the total steps
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        bf16=use_bf16(cfg.bf16),
        use_cpu=not torch.cuda.is_available(),
        save_total_limit=None,  # rotation happens after the COMPLETE marker, in LangbertTrainer
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        report_to="none",  # TensorBoard, where wanted, is added explicitly, writing into the output folder
        disable_tqdm=not cfg.progress,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        # Our losses are per-batch means. With this on (HF's default) Trainer multiplies them by the number
        # of processes for any model whose forward takes **kwargs, BERT included: DDP gradients come out
        # world-size times too large (invisible to Adam, not to SGD or clipping).
        average_tokens_across_devices=False,
        **specific,
    )


def prepare_model(model: Any, args: TrainingArguments) -> None:
    """On a CPU, dropout that draws its masks cheaply (``kernels.cpu_dropout``); GPUs keep torch's."""
    if args.use_cpu:
        cpu_dropout.install(model)


def train_from(trainer: Any, run: RunFolder) -> None:
    trainer.train(resume_from_checkpoint=str(run.resume_from) if run.resume_from else None)


def save_model(trainer: Any, tokenizer: Any, out: Path) -> None:
    trainer.save_model(str(out))
    (out / "training_args.bin").unlink(missing_ok=True)  # a pickle; the folder stays loadable without pickles
    tokenizer.save_pretrained(str(out))


def finish(out: Path, metric: str, title: str, metadata: dict[str, Any]) -> Path:
    """The training plot, then ``langbert.json`` last: a folder that has it is a finished model."""
    plot_training(out / "metrics.jsonl", metric, out / "training.png", title=title)
    write_metadata(out, metadata)
    return out
