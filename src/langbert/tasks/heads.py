"""Fine-tuning a checkpoint that already has a task head: the head carries on only for the same labels.

HF loads a head whenever the shapes fit and never looks at what the outputs mean: a sentiment model
fine-tuned again with its labels in another order would start with ``pos`` and ``neg`` swapped, and one
with another number of labels stops with a size-mismatch error. Here, as in HF's ``run_glue`` example, a
head trained for the same label set carries on (the task takes the checkpoint's label order before
encoding anything); any other head starts afresh, whatever its shape.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import torch

from ..errors import ConfigError
from .hf_auto import register_saved
from .load_report import load_for_training

logger = logging.getLogger(__name__)


def checkpoint_output_names(path: str) -> list[str]:
    """``config.id2label`` of a checkpoint, in output order (a base model has HF's ``LABEL_0``, ...)."""
    from transformers import AutoConfig

    register_saved(path)
    id2label = AutoConfig.from_pretrained(path).id2label or {}
    return [id2label[i] for i in sorted(id2label)]


def checkpoint_order(labels: Sequence[str], path: str) -> list[str]:
    """``labels`` in the order of the checkpoint's head where it was trained for exactly these labels."""
    saved = checkpoint_output_names(path)
    return saved if labels and sorted(saved) == sorted(labels) else list(labels)


def from_pretrained_for_finetuning(model_class: Any, path: str, config: Any, heads: Sequence[str]) -> tuple[Any, bool]:
    """``model_class.from_pretrained`` with ``config`` (which names the new outputs in ``id2label``) and
    whether a head from the checkpoint carries on. ``heads``: the model's top-level head modules."""
    saved = checkpoint_output_names(path)
    model, info = load_for_training(model_class, path, heads, "a head for this task", config=config,
                                    ignore_mismatched_sizes=True)
    body_mismatch = sorted(k for k, *_ in info["mismatched_keys"] if k.split(".")[0] not in heads)
    if body_mismatch:  # only a head may differ in shape: a body that does is a broken checkpoint
        raise ConfigError(f"{path}: weights do not fit the model's own config: {body_mismatch[:5]}")
    head_params = [n for n, _ in model.named_parameters() if n.split(".")[0] in heads]
    in_checkpoint = [n for n in head_params if n not in info["missing_keys"]]
    if not in_checkpoint:
        return model, False
    wanted = [config.id2label[i] for i in sorted(config.id2label)]
    if saved == wanted:
        logger.info("%s: its head was trained for these labels and carries on", path)
        return model, True
    logger.warning("%s has a head trained for %s; a new head starts for %s", path, saved, wanted)
    std = getattr(config, "initializer_range", 0.02)
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.split(".")[0] not in heads:
                continue
            if isinstance(module, torch.nn.Linear):
                module.weight.normal_(0.0, std)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, torch.nn.LayerNorm):
                module.reset_parameters()
    return model, False
