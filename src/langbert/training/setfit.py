"""SetFit (Tunstall et al., 2022): few-shot classification by contrastive training of the sentence encoder.

With a hundred labels, a classification head and the body trained together through cross-entropy see a
hundred examples; pairs of them are thousands. Phase one draws, for every training text, one text with
its label and one with another, ``setfit_iterations`` times, and trains the encoder so that the cosine of
their pooled vectors approaches 1 for a same-label pair and 0 otherwise (sentence-transformers'
``CosineSimilarityLoss``, the SetFit default). Phase two fits a logistic regression on the trained
encoder's vectors and writes it into the task's classifier layer (softmax over ``W·x + b`` is the
regression's probabilities), so the output folder is an ordinary classification model: ``predict``,
``eval``, ``serve`` and export read it like any other.

The ``setfit`` library is not used: its model is a SentenceTransformer body with a pickled scikit-learn
head, a folder ``predict``, ``serve`` and ONNX export would each need a second path for, and it brings
``datasets`` and ``evaluate`` along. The loss and the pair sampling are SetFit's. The pooled vector is whatever the task's classifier reads (the masked mean for a
sentence-transformers encoder, HF's pooler otherwise), taken from the classifier's input.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig
from ..errors import ConfigError
from .trainer import FeatureDataset

logger = logging.getLogger(__name__)


def draw_pairs(labels: Sequence[int], iterations: int, seed: int) -> list[tuple[int, int, float]]:
    """(i, j, 1.0) for a text and another of its label, (i, k, 0.0) for one of another label: one of each
    per text and iteration. A label with a single text pairs it with itself (the positive still anchors it)."""
    rng = random.Random(seed)
    by_label: dict[int, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by_label[y].append(i)
    if len(by_label) < 2:
        raise ConfigError("setfit needs texts of at least two labels")
    pairs = []
    for _ in range(iterations):
        for i, y in enumerate(labels):
            same = [j for j in by_label[y] if j != i] or [i]
            other = rng.choice([z for z in by_label if z != y])
            pairs.append((i, rng.choice(same), 1.0))
            pairs.append((i, rng.choice(by_label[other]), 0.0))
    rng.shuffle(pairs)
    return pairs


@contextmanager
def pooled_vectors(model: Any) -> Iterator[dict[str, torch.Tensor]]:
    """Inside the block, each forward of ``model`` leaves the vector its classifier reads in ``["x"]``."""
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, nn.Linear):
        raise ConfigError(f"setfit needs a model whose classifier is one linear layer; {type(model).__name__} "
                          f"has {type(classifier).__name__}")
    seen: dict[str, torch.Tensor] = {}
    handle = classifier.register_forward_hook(lambda module, args, out: seen.__setitem__("x", args[0]))
    try:
        yield seen
    finally:
        handle.remove()


class Siamese(nn.Module):
    """The classification model seen as a sentence encoder over pairs: Trainer's model in phase one."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def embed(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        with pooled_vectors(self.model) as seen:
            self.model(**features)
        return seen["x"]

    def forward(self, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], similar: torch.Tensor) -> dict:
        cosine = nn.functional.cosine_similarity(self.embed(a).float(), self.embed(b).float())
        return {"loss": nn.functional.mse_loss(cosine, similar.float())}


class PairCollator:
    def __init__(self, pad: Any):
        self.pad = pad

    def __call__(self, items: list[dict]) -> dict:
        return {"a": self.pad([x["a"] for x in items]), "b": self.pad([x["b"] for x in items]),
                "similar": torch.tensor([x["similar"] for x in items])}


def pair_dataset(features: list[dict], config: TrainConfig) -> FeatureDataset:
    strip = [{k: v for k, v in f.items() if k != "labels"} for f in features]
    pairs = draw_pairs([int(f["labels"]) for f in features], config.setfit_iterations, config.seed)
    return FeatureDataset([{"a": strip[i], "b": strip[j], "similar": s} for i, j, s in pairs])


@torch.no_grad()
def embed_all(model: Any, features: list[dict], pad: Any, batch_size: int) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    chunks = []
    with pooled_vectors(model) as seen:
        for start in range(0, len(features), batch_size):
            batch = pad([{k: v for k, v in f.items() if k != "labels"} for f in features[start:start + batch_size]])
            model(**{k: v.to(device) for k, v in batch.items()})
            chunks.append(seen["x"].float().cpu().numpy())
    return np.concatenate(chunks)


def fit_head(model: Any, features: list[dict], pad: Any, batch_size: int, seed: int) -> dict[str, float]:
    """Phase two: a logistic regression on the encoder's vectors, written into ``model.classifier``."""
    from sklearn.linear_model import LogisticRegression

    x = embed_all(model, features, pad, batch_size)
    y = np.array([int(f["labels"]) for f in features])
    head = LogisticRegression(max_iter=2000, random_state=seed).fit(x, y)
    classes = list(head.classes_)
    num_labels = model.classifier.out_features
    if classes != list(range(num_labels)):
        raise ConfigError(f"setfit: training texts cover labels {classes} of {num_labels}")
    weight, bias = head.coef_, head.intercept_
    if num_labels == 2:  # one logit w·x + b -> two, softmax of which is the same probability
        weight = np.concatenate([-weight / 2, weight / 2])
        bias = np.array([-bias[0] / 2, bias[0] / 2])
    with torch.no_grad():
        model.classifier.weight.copy_(torch.as_tensor(weight, dtype=model.classifier.weight.dtype))
        model.classifier.bias.copy_(torch.as_tensor(bias, dtype=model.classifier.bias.dtype))
    return {"train_accuracy": float(head.score(x, y))}
