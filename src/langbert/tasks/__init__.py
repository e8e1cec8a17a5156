"""Tasks register themselves on import; everything else resolves them by name once, at the edge."""

from . import cloze, question_answering, sequence_classification, token_classification  # noqa: F401  (registers the tasks)
from .base import Task, create_task, get_task_class, register_task, task_from_state, task_names

__all__ = ["Task", "create_task", "get_task_class", "register_task", "task_from_state", "task_names"]
