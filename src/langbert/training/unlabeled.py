"""The unlabelled texts self-training and consistency training read, and what they refuse."""

from __future__ import annotations

from typing import Sequence

from ..config import TrainConfig
from ..data.corpus import unlabeled_rows
from ..data.loading import Splits
from ..data.rows import Row
from ..errors import ConfigError
from ..tasks import Task


_NEEDS = {"self_training_rounds": ("self_training", "give a confidence with each prediction (text-classification, "
                                    "pair-classification, cloze-classification and token-classification do)"),
          "consistency_weight": ("single_label", "predict one label per text with a confidence (text-classification, "
                                 "pair-classification and cloze-classification do)")}
"""Per setting that reads unlabelled texts: the task's capability it needs, and what the error says is missing."""


def unlabeled_pool(setting: str, config: TrainConfig, task: Task, splits: Splits,
                   given: Sequence[Row] | None) -> list[Row]:
    """``given`` rows (from the Python API), else the texts of ``config.unlabeled`` not among the training
    rows; ``setting`` names what asked for them in the errors."""
    capable, needs = _NEEDS[setting]
    if not getattr(task, capable):
        raise ConfigError(f"{setting}: task '{task.name}' does not {needs}")
    if given is None:
        if not config.unlabeled:
            raise ConfigError(f"{setting} needs unlabelled texts: give --unlabeled (text files, one text a line, "
                              "or a built-in corpus or dataset)")
        if task.needs_pair or any(r.pair is not None for r in splits.train):
            raise ConfigError(f"{setting} on sentence pairs reads its unlabelled pairs from the Python API "
                              "(train(config, unlabeled=rows)); --unlabeled files hold single texts")
        given = unlabeled_rows(config.unlabeled, splits.train)
    if not given:
        raise ConfigError(f"{setting}: no unlabelled texts left once the labelled ones are set aside")
    return list(given)
