"""``train``, what ``langbert train`` runs: the config's method once, or followed by self-training rounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..config import TrainConfig
from ..data.loading import Splits
from ..data.rows import Row
from ..errors import ConfigError
from . import finetune
from .self_training import self_train


def train(config: TrainConfig, callbacks: Sequence[Any] = (), splits: Splits | None = None,
          unlabeled: Sequence[Row] | None = None) -> Path:
    """The output folder of a training run. ``splits`` replace ``config.data``; ``unlabeled`` rows replace
    ``config.unlabeled`` (self-training, consistency training)."""
    if config.self_training_rounds:
        return self_train(config, callbacks, splits, unlabeled)
    if unlabeled and not config.consistency_weight:
        raise ConfigError("unlabelled rows are read by self-training and consistency training only: set "
                          "self_training_rounds >= 1 or consistency_weight > 0")
    return finetune.train(config, callbacks, splits, unlabeled)
