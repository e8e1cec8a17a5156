"""The Task protocol and its registry.

A Task owns everything that differs between tasks: the label space, the model head, how rows become
features, the collator, the metrics and how model output is decoded for a user. Training, evaluation,
prediction, export and serving take a Task object and never look at its name.
"""

from __future__ import annotations

import dataclasses

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Sequence

import numpy as np

from ..data.readers import Columns, read_rows
from ..data.rows import Row
from ..errors import ConfigError, DataError
from ..evaluation import Report
from .adapter_folders import base_model_of, is_adapter, load_adapter
from .hf_auto import base_config_class, register_saved
from .options import TaskOptions


class PseudoLabel(NamedTuple):
    """Self-training's reading of one prediction (``Task.pseudo_label``)."""
    label: Any
    """What a student learns."""
    group: str
    """Whose share of the kept predictions it competes for (``select_confident``)."""
    confidence: float
    """How sure the model was: the surest are kept."""
    untagged: tuple[tuple[int, int], ...] | None = None
    """Character ranges left untagged (``Row.untagged``), where the model was unsure of its tags."""


class Task(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    default_metric: ClassVar[str]
    """Dev metric for early stopping / best checkpoint unless the config names another."""
    needs_pair: ClassVar[bool] = False
    head_in_checkpoint: ClassVar[bool] = False
    """The head is already in the checkpoint (a masked-LM head read through a pattern): the model predicts
    before any training step, so ``method: zero-shot`` may use it."""
    setfit: ClassVar[bool] = False
    """Single-label classes from a linear classifier over a pooled vector: SetFit's contrastive training
    (``method: setfit``) applies."""
    self_training: ClassVar[bool] = False
    """A prediction with its confidence (``decode`` gives a ``score``; ``pseudo_label`` reads it): a trained
    model's surest predictions can label unlabelled texts (``self_training_rounds``)."""
    single_label: ClassVar[bool] = False
    """One label per text, with a probability for each label (``decode`` gives ``probabilities``):
    consistency training on unlabelled texts (``consistency_weight``: a few replaced tokens should not change
    the answer, where a tag per token would change with its token) and a teacher's probabilities as
    self-training targets apply."""
    partial_labels: ClassVar[bool] = False
    """A row may leave parts of its text untagged (``Row.untagged``) and train on the rest: self-training
    can keep a sentence's sure tags without its unsure ones (``pseudo_label_unsure_below``)."""
    windowed: ClassVar[bool] = False
    """Long texts are cut into overlapping windows rather than truncated."""
    Options: ClassVar[type[TaskOptions]] = TaskOptions
    """The options this task takes (a frozen dataclass; recipes, flags and the saved state fill it)."""

    def __init__(self, options: TaskOptions | None = None, labels: Sequence[str] | None = None):
        self.options = options if options is not None else self.Options()
        if not isinstance(self.options, self.Options):
            raise ConfigError(f"task '{self.name}' takes {self.Options.__name__}, got {type(self.options).__name__}")
        self.labels: list[str] = list(labels) if labels is not None else []
        self._eval: tuple[Sequence[Row], list[dict]] | None = None

    # -- labels ---------------------------------------------------------------------------------
    @abstractmethod
    def parse_label(self, raw: Any) -> Any:
        """Raw value from a file -> the task's label; ``ValueError`` with a reason if it is wrong."""

    def fit(self, rows: Sequence[Row]) -> None:
        """Learn the label space from the training rows (no-op for tasks without classes)."""

    def check(self, rows: Sequence[Row], split: str) -> None:
        """Reject rows whose labels training never saw: a model cannot predict them, and metrics lie."""

    def label_summary(self, rows: Sequence[Row]) -> dict[str, Any]:
        """What ``langbert data check`` says of the labels: rows per class by default."""
        from ..data.check import label_counts

        return label_counts(rows)

    def read(self, path: str | Path, columns: Columns = Columns(), label_required: bool = True) -> list[Row]:
        """A user file -> rows; tasks with their own formats (CoNLL, spans) override this."""
        return read_rows(path, columns, self.parse_label, label_required=label_required)

    # -- model ----------------------------------------------------------------------------------
    @abstractmethod
    def build_model(self, name_or_path: str, dropout: float | None = None) -> Any:
        """A fresh head on a pretrained body."""

    def load_model(self, path: str) -> Any:
        """A trained model from a langbert output folder; a parameter-efficient adapter is put back on a
        fresh head over its base model."""
        register_saved(path)
        if is_adapter(path):
            model = load_adapter(self.build_model(base_model_of(path)), path)
            self.bind(model)
            return model
        return self.load_trained(path)

    @abstractmethod
    def load_trained(self, path: str) -> Any:
        """A fully fine-tuned model (no adapter) from a langbert output folder."""

    def lr_scaled_parameters(self) -> list[tuple[list[Any], float]]:
        """(parameters, multiple of the learning rate) for parts of the head that need another rate."""
        return []

    # -- features -------------------------------------------------------------------------------
    @abstractmethod
    def encode(self, rows: Sequence[Row], tokenizer: Any, max_length: int, with_labels: bool = True) -> list[dict]:
        """Rows -> model features (unpadded); padding is the collator's job."""

    @abstractmethod
    def collator(self, tokenizer: Any) -> Any: ...

    # -- metrics and decoding -------------------------------------------------------------------
    @abstractmethod
    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        """The cheap metrics the Trainer logs at each evaluation."""

    def bind_eval(self, rows: Sequence[Row], features: list[dict]) -> None:
        """The dev rows and their features, in the order the Trainer evaluates them: for a task whose
        dev metric needs more than per-feature outputs and targets (QA's answers across windows)."""
        self._eval = (rows, features)

    @abstractmethod
    def evaluate(self, outputs: np.ndarray, rows: Sequence[Row]) -> Report:
        """The full report (per-class table, plots) for ``langbert eval``."""

    @abstractmethod
    def decode(self, outputs: Any, rows: Sequence[Row]) -> list[dict[str, Any]]:
        """Outputs of ``gather`` -> what a user reads, one dict per row."""

    def pseudo_label(self, predicted: dict[str, Any], output: Any = None,
                     unsure_below: float | None = None) -> PseudoLabel:
        """Self-training: from one prediction of ``decode`` (and ``output``, what ``gather`` gave for it), the
        label a student learns, the group whose share of the kept predictions it competes for, and how sure
        the model was; ``unsure_below``: where the task has ``partial_labels``, the parts the model was less
        sure of go untagged. By default the predicted class is both the label and the group."""
        return PseudoLabel(predicted["label"], self.pseudo_label_group(predicted["label"]), predicted["score"])

    def pseudo_label_group(self, label: Any) -> str:
        """The self-training group of a label (a pseudo-label's or a labelled row's, so that the kept
        pseudo-labels can share the labelled rows' proportions): by default the class itself."""
        return label

    def unbatch(self, model: Any, outputs: Any, batch: dict) -> list[Any]:
        """A model's batch output -> one result per feature (default: its logits row)."""
        return list(outputs.logits.float().cpu().numpy())

    def gather(self, results: list[Any], features: list[dict], rows: Sequence[Row]) -> Any:
        """Per-feature results -> per-row outputs (tasks that split a row into windows merge them here)."""
        return np.stack(results) if results else np.zeros((0,))

    def loss_function(self) -> Any:
        """A ``compute_loss_func`` for HF Trainer, or None for the model's own loss."""
        return None

    def head_modules(self) -> list[str]:
        """Modules trained and saved alongside a parameter-efficient adapter (the task head)."""
        return ["classifier"]

    def bind(self, model: Any) -> None:
        """Called once the model is final (e.g. wrapped by peft): resolve references into it."""

    def attach_exported(self, model: Any, path: str) -> None:
        """Give an exported (ONNX) model what decoding needs beyond logits (e.g. CRF transitions)."""

    def save_extra(self, model: Any, out: str | Path) -> None:
        """Files beyond the HF checkpoint that ``load_model`` needs."""

    def extra_files(self) -> list[str]:
        """The names of the files ``save_extra`` writes: an export carries them beside its graph."""
        return []

    def export_inputs(self, tokenizer: Any) -> dict[str, Any]:
        """A sample of every input the model takes, by name, for tracing an export: the tokenizer's ids,
        mask and segment ids; a task whose model reads more (lexicon features) adds them."""
        sample = tokenizer(["export", "导出 onnx"], padding=True, return_tensors="pt", return_token_type_ids=True)
        return {k: sample[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

    # -- export parity ----------------------------------------------------------------------------
    def sample_rows(self, texts: Sequence[str] | None = None) -> list[Row]:
        """Rows an exported model is checked on: ``texts`` where given, else a few built-in samples."""
        texts = list(texts or SAMPLE_TEXTS)
        return [Row(text=t, pair=t if self.needs_pair else None) for t in texts]

    def parity(self, a: Any, b: Any, rows: Sequence[Row]) -> tuple[float, float]:
        """Largest difference between two runs' outputs (``gather``'s) and the share of rows whose
        predictions agree: how an exported model is held to the one it came from."""
        if isinstance(a, np.ndarray):
            diff = float(np.abs(a - b).max()) if a.size else 0.0
            if a.ndim == 2 and a.shape[1] > 1:
                return diff, float(np.mean(a.argmax(-1) == b.argmax(-1)))
            return diff, float(np.mean(np.abs(a - b) < 0.1))
        same = [x == y for x, y in zip(self.decode(a, rows), self.decode(b, rows))]
        return 0.0, float(np.mean(same)) if same else 1.0

    # -- persistence ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What ``task_from_state`` needs to rebuild this task: name, options and what ``fit`` learned."""
        return {"name": self.name, "options": self.options.to_dict(), "labels": self.labels}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Task":
        state = dict(state)
        options = dict(state.pop("options", {}))
        # Folders saved before options had a section of their own kept them beside the labels (the tag
        # scheme as "scheme", and a threshold every task carried): read those as options.
        known = {f.name for f in dataclasses.fields(cls.Options)}
        if "scheme" in state:
            state["tag_scheme"] = state.pop("scheme")
        for key in [k for k in state if k in known or k == "threshold"]:
            value = state.pop(key)
            if key in known:
                options.setdefault(key, value)
        return cls(cls.Options.from_mapping(options, cls.name), **state)

    def check_rows_have_pairs(self, rows: Sequence[Row]) -> None:
        for row in rows:
            if self.needs_pair and row.pair is None:
                raise DataError(f"task '{self.name}' needs a second text (set --pair-column)", row.source, row.line)


SAMPLE_TEXTS = ["质量很好，很满意", "太差了，不会再买", "The delivery was fast.", "北京欢迎你", "一般般吧",
                "2024年iPhone在北京发布", "服务态度非常好，下次还来", "屏幕有坏点，退货"]

_TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task known by its ``name``; a second class under one name is refused."""
    if getattr(cls, "name", None) in (None, ""):
        raise TypeError(f"{cls.__name__} needs a 'name'")
    if cls.name in _TASKS and _TASKS[cls.name] is not cls:
        raise ValueError(f"task '{cls.name}' is already registered by {_TASKS[cls.name].__qualname__}")
    _TASKS[cls.name] = cls
    return cls


def task_names() -> list[str]:
    return sorted(_TASKS)


def get_task_class(name: str) -> type[Task]:
    if name not in _TASKS:
        raise ConfigError(f"unknown task '{name}'; registered: {task_names()}")
    return _TASKS[name]


def create_task(name: str, options: dict[str, Any] | None = None) -> Task:
    """A task by name, its options validated by the task (a ConfigError names any it does not take)."""
    cls = get_task_class(name)
    return cls(cls.Options.from_mapping(options or {}, name))


def task_from_state(state: dict[str, Any]) -> Task:
    state = dict(state)
    return get_task_class(state.pop("name")).from_state(state)


def model_class_for(auto: Any, config: Any, refusal: str) -> type:
    """The class an HF Auto class (``AutoModel``, ...) builds for ``config``; a ConfigError starting with
    ``refusal`` where it has none (a model type it does not know). A langbert model type maps to HF's class
    for its encoder: the body and head langbert builds on."""
    try:
        return auto._model_mapping[base_config_class(type(config))]
    except KeyError as exc:
        raise ConfigError(f"{refusal} for model type '{config.model_type}'") from exc
