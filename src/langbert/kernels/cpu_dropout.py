"""Dropout that costs a fifth of torch's on CPU, for training on CPUs.

Profiling a bf16 MiniLM training step on 2 cores (benchmarks/throughput.py's setting) put a third of
the step in ``aten::bernoulli_``: torch draws one random number per element through a slow path (~10 ns
each), 20 times per step (embeddings, two per layer, attention probabilities, the head). Here one 64-bit
draw feeds four elements: each 16-bit lane is uniform, so ``lane < p * 65536`` drops with probability p
(quantised to 1/65536). Same distribution, same seeded generator, same 1/(1-p) scaling; only the cost
changes. On CUDA torch's fused Philox kernel is already fast: ``install`` leaves GPU runs alone.

Attention-probability dropout happens inside ``scaled_dot_product_attention``, so ``install`` also
registers an attention function (HF's ``AttentionInterface``) that computes attention itself when
training with dropout, and hands every other case (evaluation, inference, causal masks) to HF's SDPA.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .hf_attention import register_sdpa_like

ATTENTION = "langbert_cpu_dropout"
_LANES = 65536


def keep_mask(shape: torch.Size, p: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1/(1-p) where an element is kept, 0 where it is dropped (probability p, to 1/65536)."""
    numel = 1
    for size in shape:
        numel *= size
    # from=-2**63, to=None is torch's full 64-bit range: all four 16-bit lanes uniform (the default
    # range, [0, 2**63), would leave one lane's sign bit always clear).
    bits = torch.empty((numel + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None)
    keep = bits.view(torch.int16)[:numel].view(shape) >= round(p * _LANES) - _LANES // 2
    return keep.to(dtype).mul_(1.0 / (1.0 - p))


def apply_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    # A multiply by a scaled mask: ~6x cheaper than masked_fill on CPU, forward and backward. Autograd
    # keeps the mask in x's dtype (torch's own dropout keeps a bool one): more memory, less time.
    return x * keep_mask(x.shape, p, x.dtype, x.device)


class Dropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_dropout(x, self.p, self.training)


def attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
              **kwargs: Any) -> tuple[torch.Tensor, None]:
    """HF attention-interface function: [batch, heads, seq, dim] in, [batch, seq, heads, dim] out."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not (module.training and dropout > 0.0) or getattr(module, "is_causal", False) \
            or key.shape[1] != query.shape[1]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling,
                                      dropout=dropout, **kwargs)
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scale
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:  # HF's SDPA masks: True = attend, [batch, 1, q, k]
            # Built on the small unbroadcast mask, then added: cheaper than masked_fill over every head.
            attention_mask = torch.zeros(attention_mask.shape, dtype=scores.dtype, device=scores.device).masked_fill_(
                ~attention_mask, torch.finfo(scores.dtype).min)
        scores = scores + attention_mask
    probs = apply_dropout(torch.softmax(scores, dim=-1), dropout)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


def install(model: nn.Module) -> nn.Module:
    """Swap ``model``'s dropouts for the CPU ones, in place. The attention function is used where the
    model takes HF's attention interface and runs SDPA; it is not saved in the config (HF keeps the
    attention implementation out of ``config.json``), so checkpoints load anywhere."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, Dropout(child.p, child.inplace))
    for module in model.modules():  # the HF model may sit inside a PEFT or task wrapper
        config = getattr(module, "config", None)
        if getattr(module, "_supports_attention_backend", False) \
                and getattr(config, "_attn_implementation", None) == "sdpa":
            register_sdpa_like(ATTENTION, attention)
            config._attn_implementation = ATTENTION
    return model
