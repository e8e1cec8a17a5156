"""Masked-LM masking over whole words (or single tokens): 15% of words, then 80/10/10 [MASK]/random/kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class WholeWordMaskCollator:
    """Batches of equal-length packed blocks -> ``input_ids``, ``labels`` (-100 where not predicted)."""

    mask_id: int
    vocab_size: int
    special_ids: tuple[int, ...]
    mlm_probability: float = 0.15
    whole_word: bool = True
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        special = torch.tensor(self.special_ids)
        everything = torch.arange(self.vocab_size)
        self._special = special
        self._replacements = everything[~torch.isin(everything, special)]

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if "labels" in examples[0]:  # masked once already (the fixed held-out set)
            return {k: torch.stack([e[k] for e in examples]) for k in ("input_ids", "attention_mask", "labels")}
        input_ids = torch.stack([e["input_ids"] for e in examples])
        starts = torch.stack([e["word_starts"] for e in examples]) if self.whole_word else torch.ones_like(input_ids)
        input_ids, labels = self.mask(input_ids, starts)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}

    def mask(self, input_ids: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        special = torch.isin(input_ids, self._special)
        starts = (starts.bool() | special).long()
        # Word index of every token: a running count of word starts. One draw per word decides whether
        # it is masked and how, so all its tokens share the decision.
        word = starts.cumsum(1) - 1
        n_words = int(word.max()) + 1
        g = self.generator
        draw = torch.rand(input_ids.shape[0], n_words, generator=g).gather(1, word)
        how = torch.rand(input_ids.shape[0], n_words, generator=g).gather(1, word)
        chosen = (draw < self.mlm_probability) & ~special
        labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
        masked = input_ids.clone()
        masked[chosen & (how < 0.8)] = self.mask_id
        swap = chosen & (how >= 0.8) & (how < 0.9)
        picks = torch.randint(len(self._replacements), (int(swap.sum()),), generator=g)
        masked[swap] = self._replacements[picks]
        return masked, labels
