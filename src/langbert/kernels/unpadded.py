"""Inference on the real tokens only: the encoder layers of a padded batch run on its tokens packed.

A server's micro-batch is a handful of texts of any length. Padded to the longest, groups of 32 test
reviews carry 2.6x their real tokens (word-level vocabulary, max_length 128; sorted batches of 64: 1.05x),
and most of a MiniLM layer's cost is Linear layers, proportional to the tokens they get. Here the
encoder's input [batch, length, hidden] is packed into [1, real tokens, hidden] before the first layer
(rounded up to a multiple of PACK_MULTIPLE with zero rows), every Linear,
layer norm and activation runs on real tokens only, attention runs on buckets of similar-length texts,
each padded to its longest (``_buckets``), and the output is scattered back
to [batch, length, hidden] (zeros at padding) for the head. Embeddings, heads and losses see the usual
padded tensors, so this works under every task head unchanged. The layers' arithmetic on real tokens is
the same as in the padded batch; only rounding can differ (other shapes, other kernels).

Only for inference (``model.eval()``): training keeps the padded path. Models whose base model has no
BERT-style ``encoder`` (a ``layer`` list behind HF's attention interface) are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .hf_attention import register_sdpa_like

ATTENTION = "langbert_unpadded"
# Passed from the encoder's pre-hook to its forward hook through the encoder's kwargs (the layers and the
# attention function receive and ignore it), so no state is shared between calls or threads.
_UNPAD = "langbert_unpad"


def attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
              **kwargs: Any) -> tuple[torch.Tensor, None]:
    """HF attention-interface function: [batch, heads, seq, dim] in, [batch, seq, heads, dim] out. On
    packed input ([1, heads, tokens, dim]) each bucket of similar-length texts is laid out padded for one
    SDPA call with its own padding mask (see ``_buckets``)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    plan = kwargs.pop(_UNPAD, None)
    if plan is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling,
                                      dropout=dropout, **kwargs)
    heads, dim = query.shape[1], query.shape[3]
    q, k, v = (x[0].transpose(0, 1) for x in (query, key, value))  # [tokens, heads, dim], contiguous
    out = torch.empty_like(q)
    out[plan.index.numel():] = 0  # the rows that round the packed length up (see _pack)
    for bucket in plan.attention:
        shape = (bucket.texts, bucket.length, heads, dim)
        if bucket.mask is None:  # equal lengths: the packed tokens already are the padded layout
            laid_out = [(x[bucket.span[0]:bucket.span[1]] if bucket.span is not None
                         else x.index_select(0, bucket.tokens)).view(shape) for x in (q, k, v)]
        else:  # one gather per tensor; padded slots repeat a real row, which the mask hides as a key
            laid_out = [x.index_select(0, bucket.gather).view(shape) for x in (q, k, v)]
        result = nn.functional.scaled_dot_product_attention(*(x.transpose(1, 2) for x in laid_out),
                                                            attn_mask=bucket.mask, scale=scaling).transpose(1, 2)
        # [texts, length, heads, dim] back to the real tokens' rows, in packed order
        if bucket.mask is not None:
            result = result[bucket.real]
        if bucket.span is None:
            out.index_copy_(0, bucket.tokens, result.reshape(-1, heads, dim))
        else:
            out[bucket.span[0]:bucket.span[1]].view(result.shape).copy_(result)
    return out.unsqueeze(0), None


PACK_MULTIPLE = 64
# Below this fraction of padding a batch runs padded as it is.
MIN_REAL_FRACTION = 0.9
# One SDPA call's fixed cost in (padded tokens)^2 of attention: ~100 us against ~20 ns per text per
# token^2 (bf16 MiniLM heads on 2 cores). Sets how eagerly _buckets splits.
CALL_OVERHEAD = 5000


def _buckets(lengths: list[int], overhead: int = CALL_OVERHEAD) -> list[tuple[int, int]]:
    """Cuts of ``lengths`` (ascending) minimising sum over buckets of overhead + texts * longest^2.

    Padded to the longest text, attention over 32 mixed reviews cost ~45% of a bf16 MiniLM forward on
    2 cores (the CPU SDPA kernel is far below matmul speed at head size 32): its cost grows with the
    padded length squared. One call per text wastes no arithmetic but pays a call's overhead 32 times.
    """
    n = len(lengths)
    cost = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            c = cost[i] + overhead + (j - i) * lengths[j - 1] ** 2
            if c < cost[j]:
                cost[j], cut[j] = c, i
    bounds, j = [], n
    while j > 0:
        bounds.append((cut[j], j))
        j = cut[j]
    return bounds[::-1]


@dataclass
class _Bucket:
    tokens: torch.Tensor | None  # positions of its texts' tokens in the packed sequence (None: see span)
    span: tuple[int, int] | None  # the same tokens as a slice of the packed sequence, where they are one
    texts: int
    length: int
    mask: torch.Tensor | None  # [texts, 1, 1, length], True = a real token; None if nothing is padded
    gather: torch.Tensor | None  # packed row of each slot of the [texts * length] padded layout
    real: tuple[torch.Tensor, torch.Tensor] | None  # (text, position) of each real token in that layout


@dataclass
class _Unpad:
    index: torch.Tensor  # the real tokens' positions in the flattened [batch * length] input
    batch: int
    length: int
    attention: list[_Bucket]


def _plan(keys: torch.Tensor) -> _Unpad:
    batch, length = keys.shape
    index = keys.reshape(-1).nonzero().squeeze(1)
    lengths = keys.sum(dim=1).tolist()
    # Tokens are packed row by row, so a text's tokens are contiguous (mask holes are squeezed out as
    # in the padded attention they were masked).
    starts = [0]
    for n in lengths[:-1]:
        starts.append(starts[-1] + n)
    order = sorted(range(batch), key=lengths.__getitem__)
    device = keys.device
    buckets = []
    for lo, hi in _buckets([lengths[r] for r in order], CALL_OVERHEAD):
        rows = order[lo:hi]
        longest = lengths[rows[-1]]
        # forward_batches sorts texts by length, so a bucket is usually a run of consecutive rows: a slice.
        span = (starts[rows[0]], starts[rows[-1]] + lengths[rows[-1]]) \
            if rows == list(range(rows[0], rows[-1] + 1)) else None
        tokens = None if span is not None else torch.cat(
            [torch.arange(starts[r], starts[r] + lengths[r], device=device) for r in rows])
        mask = gather = real = None
        if lengths[rows[0]] != longest:  # mixed lengths: a padded layout and its mask
            row_lengths = torch.tensor([lengths[r] for r in rows], device=device)
            row_starts = torch.tensor([starts[r] for r in rows], device=device)
            positions = torch.arange(longest, device=device)
            keep = positions < row_lengths[:, None]
            # A padded slot repeats its text's last token: any real row would do (the mask hides it as a
            # key and its query's output is dropped), and no zero-filled copy is needed.
            gather = (row_starts[:, None] + torch.minimum(positions, row_lengths[:, None] - 1)).reshape(-1)
            real = keep.nonzero(as_tuple=True)  # row-major: the texts' tokens in packed order
            mask = keep.view(len(rows), 1, 1, longest)
        buckets.append(_Bucket(tokens, span, len(rows), longest, mask, gather, real))
    return _Unpad(index, batch, length, buckets)


def _pack(encoder: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
    hidden = args[0] if args else kwargs.get("hidden_states")
    mask = args[1] if len(args) > 1 else kwargs.get("attention_mask")
    # HF hands the encoder SDPA's boolean mask [batch, 1, query, key], or None where nothing is padded
    # (then there is nothing to remove). Anything else (a causal or additive mask) stays padded.
    if encoder.training or hidden is None or mask is None or mask.dtype != torch.bool or mask.dim() != 4 \
            or mask.shape[2] != hidden.shape[1] or kwargs.get("encoder_hidden_states") is not None:
        return None
    keys = mask[:, 0, 0, :]  # a bidirectional mask repeats the padding mask on every query row
    if keys.sum() >= MIN_REAL_FRACTION * keys.numel():
        return None  # little padding to remove: packing's gathers and per-bucket calls would cost more
    plan = _plan(keys)
    batch, length, width = hidden.shape
    real = plan.index.numel()
    # oneDNN builds a kernel per matmul shape: a new token count every batch cost ~4 ms per Linear shape
    # (bf16, 2 cores), so the packed length is rounded up to a multiple of PACK_MULTIPLE with zero rows.
    packed = hidden.new_zeros(-(-real // PACK_MULTIPLE) * PACK_MULTIPLE, width)
    packed[:real] = hidden.reshape(batch * length, width).index_select(0, plan.index)
    packed = packed.unsqueeze(0)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("hidden_states", "attention_mask")}
    kwargs.update(attention_mask=None, **{_UNPAD: plan})
    return (packed,) + tuple(args[2:]), kwargs


def _unpack(encoder: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
    if _UNPAD not in kwargs:
        return output
    plan = kwargs[_UNPAD]
    packed = output.last_hidden_state
    full = packed.new_zeros(plan.batch * plan.length, packed.shape[-1]).index_copy_(
        0, plan.index, packed[0, :plan.index.numel()])
    output.last_hidden_state = full.view(plan.batch, plan.length, -1)
    return output


def _encoders(model: nn.Module) -> list[tuple[nn.Module, Any]]:
    found = []
    for module in model.modules():  # the HF model may sit inside a PEFT or task wrapper
        encoder = getattr(module, "encoder", None)
        config = getattr(module, "config", None)
        if isinstance(getattr(encoder, "layer", None), nn.ModuleList) \
                and getattr(module, "_supports_attention_backend", False) \
                and not getattr(config, "is_decoder", False) and not getattr(config, "add_cross_attention", False):
            found.append((encoder, config))
    return found


def install(model: nn.Module) -> bool:
    """Make ``model``'s eval-mode forward skip padding inside the encoder, in place; False where the
    architecture is not one this knows how to pack (the model is then unchanged). The attention name is
    not saved with the model (HF keeps it out of ``config.json``)."""
    from . import cpu_dropout

    found = [(e, c) for e, c in _encoders(model)
             if getattr(c, "_attn_implementation", None) in ("sdpa", cpu_dropout.ATTENTION, ATTENTION)]
    if not found:
        return False
    # SDPA's boolean masks: what _pack reads the padding from, and what the unpacked path needs.
    register_sdpa_like(ATTENTION, attention)
    for encoder, config in found:
        config._attn_implementation = ATTENTION
        if not getattr(encoder, "_langbert_unpadded", False):
            encoder.register_forward_pre_hook(_pack, with_kwargs=True)
            encoder.register_forward_hook(_unpack, with_kwargs=True)
            encoder._langbert_unpadded = True
    return True
