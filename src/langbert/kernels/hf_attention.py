"""Registering langbert's attention functions with HF's attention interface."""

from __future__ import annotations

from typing import Callable


def register_sdpa_like(name: str, function: Callable) -> None:
    """Register ``function`` under ``name`` (once) with SDPA's mask function: boolean masks, True = attend.

    Without a mask function of its own HF treats an unknown attention name as mask-free and drops the
    padding mask.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, sdpa_mask

    if name not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        AttentionInterface.register(name, function)
        AttentionMaskInterface.register(name, sdpa_mask)
