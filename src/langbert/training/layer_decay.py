"""Layer-wise learning-rate decay (LLRD): the top transformer layer learns at the full rate, each layer
below it at ``decay`` times the one above, the embeddings below the bottom layer; the head (and any
module outside the encoder's layers, a CRF or a lexicon projection) at the full rate. Lower layers hold
the most general features and move least (ULMFiT's discriminative fine-tuning, ELECTRA's recipe)."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ConfigError


def transformer_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The encoder's stack of layers: the longest ``ModuleList`` of one module class under the base model
    (``encoder.layer`` in BERT, RoBERTa, ELECTRA; ``transformer.layer`` in DistilBERT)."""
    base = getattr(model, "base_model", model)
    stacks = [m for m in base.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0
              and len({type(layer) for layer in m}) == 1]
    if not stacks:
        raise ConfigError(f"layer_lr_decay: no stack of transformer layers found in {type(model).__name__}")
    return max(stacks, key=len)


def layer_scales(model: torch.nn.Module, decay: float) -> list[tuple[list[Any], float]]:
    """(parameters, learning-rate multiple) for each layer and for the embeddings, for
    ``LangbertTrainer.lr_scales``; parameters not named here keep the full rate. Empty for ``decay`` 1."""
    if decay == 1.0:
        return []
    layers = transformer_layers(model)
    depth = len(layers)
    scales: list[tuple[list[Any], float]] = [(list(layer.parameters()), decay ** (depth - i))
                                             for i, layer in enumerate(layers)]
    embeddings = getattr(getattr(model, "base_model", model), "embeddings", None)
    found = list(embeddings.parameters()) if embeddings is not None else [model.get_input_embeddings().weight]
    return [(found, decay ** (depth + 1)), *scales]
