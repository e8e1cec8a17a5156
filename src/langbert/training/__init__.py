"""Fine-tuning (``train``), the Trainer both it and masked-LM pretraining run on, checkpoints that resume,
parameter-efficient methods and hyperparameter search."""

from .finetune import prepare_task, task_for
from .pipeline import train

__all__ = ["prepare_task", "task_for", "train"]
