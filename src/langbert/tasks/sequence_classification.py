"""Tasks with one output vector per text (or text pair): a BERT encoder + a sequence-classification head."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Sequence

import numpy as np

from ..data.rows import Row
from ..errors import DataError
from ..evaluation import Report, multi_label_report, regression_report, single_label_report
from .base import Task, register_task
from .heads import from_pretrained_for_finetuning
from .hf_auto import as_langbert_type
from .options import ClassificationOptions, MultiLabelOptions
from .pooling import POOLING_KEY, mean_pooled_class, resolve_pooling


def _natural_key(label: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", label))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def cross_entropy(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """The batch's mean cross-entropy against label ids, or against label probabilities (a teacher's soft
    targets, knowledge distillation: Hinton et al. 2015), on float32 logits either way."""
    import torch

    logits = outputs.logits.float()
    target = labels.float() if labels.is_floating_point() else labels.view(-1)
    return torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), target)


class SequenceClassificationTask(Task):
    """Shared machinery; subclasses say what a label is and how outputs are scored and decoded."""

    problem_type: str
    Options = ClassificationOptions

    @property
    def pooling(self) -> str:
        return self.options.pooling

    def build_model(self, name_or_path: str, dropout: float | None = None) -> Any:
        from transformers import AutoConfig, AutoModelForSequenceClassification

        if self.pooling == "auto":  # decided once, by the checkpoint training starts from; saved as decided
            self.options = dataclasses.replace(self.options, pooling=resolve_pooling("auto", name_or_path))

        overrides: dict[str, Any] = {}
        if dropout is not None:
            overrides = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout, "classifier_dropout": dropout}
        config = AutoConfig.from_pretrained(
            name_or_path,
            id2label=dict(enumerate(self.labels)) if self.labels else {0: "score"},
            label2id={label: i for i, label in enumerate(self.labels)} if self.labels else {"score": 0},
            problem_type=self.problem_type,
            **overrides,
        )
        model_class = AutoModelForSequenceClassification
        if self.pooling == "mean":
            config = as_langbert_type(config, True)
            setattr(config, POOLING_KEY, "mean")
            model_class = mean_pooled_class(config)
        return from_pretrained_for_finetuning(model_class, name_or_path, config, self.head_modules())[0]

    def load_trained(self, path: str) -> Any:
        from transformers import AutoModelForSequenceClassification

        if self.pooling == "mean":  # the task state saved with the folder, like its labels
            from transformers import AutoConfig

            # A folder saved before heads had model types of their own says "bert": read as langbert's.
            config = as_langbert_type(AutoConfig.from_pretrained(path), True)
            return mean_pooled_class(config).from_pretrained(path, config=config, use_safetensors=True)
        return AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True)

    def target(self, label: Any) -> Any:
        raise NotImplementedError

    def encode(self, rows: Sequence[Row], tokenizer: Any, max_length: int, with_labels: bool = True) -> list[dict]:
        self.check_rows_have_pairs(rows)
        texts = [r.text for r in rows]
        # Pairs are used whenever the data has them (regression on sentence pairs, e.g. STS).
        pairs = [r.pair or "" for r in rows] if any(r.pair is not None for r in rows) else None
        enc = tokenizer(texts, pairs, truncation=True, max_length=max_length)
        features = []
        for i, row in enumerate(rows):
            item = {key: enc[key][i] for key in enc.keys()}
            if with_labels and row.label is not None:
                item["labels"] = self.target(row.label)
            features.append(item)
        return features

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        # Multiples of 8 keep bf16/fp16 matmuls on their fast paths at a small padding cost.
        return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        return {k: v for k, v in self.score(logits, labels).metrics.items() if k != "examples"}

    def evaluate(self, outputs: np.ndarray, rows: Sequence[Row]) -> Report:
        return self.score(outputs, np.asarray([self.target(r.label) for r in rows]))

    def score(self, logits: np.ndarray, targets: np.ndarray) -> Report:
        raise NotImplementedError


@register_task
class TextClassification(SequenceClassificationTask):
    name = "text-classification"
    description = "one label per text (softmax)"
    default_metric = "accuracy"
    problem_type = "single_label_classification"
    setfit = True
    self_training = True
    single_label = True

    def parse_label(self, raw: Any) -> str:
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise ValueError(f"expected one label (a string or an integer), got {type(raw).__name__} {raw!r}")
        label = str(raw).strip()
        if not label:
            raise ValueError("empty label")
        return label

    def fit(self, rows: Sequence[Row]) -> None:
        found = sorted({r.label for r in rows}, key=_natural_key)
        if len(found) < 2:
            raise DataError(f"training data has {len(found)} distinct label(s) {found}; a classifier needs at least 2",
                            rows[0].source if rows else None)
        self.labels = found

    def check(self, rows: Sequence[Row], split: str) -> None:
        known = set(self.labels)
        for row in rows:
            if row.label is not None and row.label not in known:
                raise DataError(
                    f"label '{row.label}' in the {split} data was never seen in training (known: {self.labels})",
                    row.source, row.line, "label",
                )

    def target(self, label: str) -> int:
        return self.labels.index(label)

    def encode(self, rows: Sequence[Row], tokenizer: Any, max_length: int, with_labels: bool = True) -> list[dict]:
        return self.soft_targets(super().encode(rows, tokenizer, max_length, with_labels), rows)

    def soft_targets(self, features: list[dict], rows: Sequence[Row]) -> list[dict]:
        """Where any row carries a teacher's probabilities, every target becomes a distribution over the
        labels (one-hot for a labelled row), so the rows of a batch collate into one float tensor."""
        if not any(r.probabilities for r in rows):
            return features
        for item, row in zip(features, rows):
            if "labels" in item:
                given = dict(row.probabilities or ((row.label, 1.0),))
                item["labels"] = [float(given.get(label, 0.0)) for label in self.labels]
        return features

    def loss_function(self) -> Any:
        # Computed here rather than by the model: HF's own classification heads read the labels as ids only.
        return cross_entropy

    def score(self, logits: np.ndarray, targets: np.ndarray) -> Report:
        return single_label_report(np.asarray(targets).tolist(), logits.argmax(-1).tolist(), self.labels)

    def decode(self, outputs: np.ndarray, rows: Sequence[Row] | None = None) -> list[dict[str, Any]]:
        probs = _softmax(np.asarray(outputs, dtype=np.float64))
        return [
            {
                "label": self.labels[int(p.argmax())],
                "score": float(p.max()),
                "probabilities": {label: round(float(v), 6) for label, v in zip(self.labels, p)},
            }
            for p in probs
        ]


@register_task
class PairClassification(TextClassification):
    name = "pair-classification"
    description = "one label per pair of texts (entailment, paraphrase, ...)"
    needs_pair = True


@register_task
class MultiLabelClassification(SequenceClassificationTask):
    name = "multi-label-classification"
    description = "any number of labels per text (sigmoid + threshold)"
    default_metric = "micro_f1"
    problem_type = "multi_label_classification"
    Options = MultiLabelOptions

    def parse_label(self, raw: Any) -> list[str]:
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in raw):
            raise ValueError(f"expected a list of labels (JSONL) or labels joined by --label-delimiter, got {raw!r}")
        return sorted({str(x).strip() for x in raw if str(x).strip()}, key=_natural_key)

    def fit(self, rows: Sequence[Row]) -> None:
        found = sorted({label for r in rows for label in r.label}, key=_natural_key)
        if not found:
            raise DataError("training data has no labels", rows[0].source if rows else None)
        self.labels = found

    def check(self, rows: Sequence[Row], split: str) -> None:
        known = set(self.labels)
        for row in rows:
            unseen = [label for label in (row.label or []) if label not in known]
            if unseen:
                raise DataError(
                    f"label(s) {unseen} in the {split} data were never seen in training (known: {self.labels})",
                    row.source, row.line, "label",
                )

    def target(self, label: list[str]) -> list[float]:
        return [1.0 if name in label else 0.0 for name in self.labels]

    def score(self, logits: np.ndarray, targets: np.ndarray) -> Report:
        predicted = (_sigmoid(logits) >= self.options.threshold).astype(int)
        return multi_label_report(np.asarray(targets).astype(int), predicted, self.labels)

    def decode(self, outputs: np.ndarray, rows: Sequence[Row] | None = None) -> list[dict[str, Any]]:
        probs = _sigmoid(np.asarray(outputs, dtype=np.float64))
        return [
            {
                "labels": [label for label, v in zip(self.labels, p) if v >= self.options.threshold],
                "probabilities": {label: round(float(v), 6) for label, v in zip(self.labels, p)},
            }
            for p in probs
        ]


@register_task
class Regression(SequenceClassificationTask):
    name = "regression"
    description = "one real value per text or pair (MSE; Pearson and Spearman)"
    default_metric = "pearson"
    problem_type = "regression"

    def parse_label(self, raw: Any) -> float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {raw!r}")
        return value

    def target(self, label: float) -> float:
        return float(label)

    def score(self, logits: np.ndarray, targets: np.ndarray) -> Report:
        return regression_report(np.asarray(targets, float).reshape(-1), np.asarray(logits, float).reshape(-1))

    def decode(self, outputs: np.ndarray, rows: Sequence[Row] | None = None) -> list[dict[str, Any]]:
        return [{"score": float(v)} for v in np.asarray(outputs, dtype=np.float64).reshape(-1)]
