"""Hashed token n-gram scores added to a tagger's emissions: the features of a classical feature CRF.

A feature CRF learns, per tag, a weight for each exact token at offsets -2..+2 and each of the four
adjacent pairs among them; on Chinese NER it is a strong baseline because it memorises which characters
and character pairs mark a name. A neural encoder sees the same tokens, but only through what its
pretraining made of them. ``NgramScores`` gives the head those weights directly, learned with the rest of
the model: each (template, tokens) key is hashed into a fixed table of per-tag scores, so no n-gram
vocabulary is kept and any tokenizer's ids work. It reads only ``input_ids`` and the attention mask, so an
exported model needs no new input.

The table learns a training sentence's rare n-grams well enough to label it alone, so the encoder is
taught little where they occur; at test time an unseen n-gram scores zero and the encoder must label it.
``dropout`` drops each (token, template) score at random while training (the survivors rescaled), so the
encoder keeps learning where the table will be silent.
"""

from __future__ import annotations

import torch

TEMPLATES: tuple[tuple[int, ...], ...] = ((-2,), (-1,), (0,), (1,), (2,), (-2, -1), (-1, 0), (0, 1), (1, 2))
"""Offsets from the token each feature reads: five unigrams and the four bigrams of a +-2 window."""

_MIX, _PRIME = 1_640_531_527, 2_147_483_647  # a polynomial hash modulo 2**31 - 1: products fit int64


class NgramScores(torch.nn.Module):
    """Per token, the sum over ``TEMPLATES`` of a learned score vector (one per tag) looked up by the hash of
    the template and the tokens it reads. Positions before the window, after it or under padding read as
    one "no token" id, so a text scores the same alone or padded in a batch."""

    def __init__(self, buckets: int, num_labels: int, dropout: float = 0.0):
        super().__init__()
        self.buckets = buckets
        self.dropout = dropout
        self.table = torch.nn.Embedding(buckets, num_labels)

    def reset_parameters(self) -> None:
        """Zero: a new table leaves the model's emissions as they were until training moves it."""
        torch.nn.init.zeros_(self.table.weight)

    def keys(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, tokens, templates) bucket indices."""
        ids = input_ids.long() + 1  # 0 is "no token"
        if attention_mask is not None:
            ids = ids * (attention_mask != 0).long()
        reach = max(abs(d) for template in TEMPLATES for d in template)
        padded = torch.nn.functional.pad(ids, (reach, reach))
        length = ids.shape[1]
        keys = []
        for number, template in enumerate(TEMPLATES, start=1):
            key = torch.full_like(ids, number)
            for offset in template:
                key = torch.remainder(key * _MIX + padded[:, reach + offset: reach + offset + length], _PRIME)
            keys.append(torch.remainder(key, self.buckets))
        return torch.stack(keys, dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.table(self.keys(input_ids, attention_mask))
        if self.training and self.dropout:
            keep = torch.rand(scores.shape[:-1], device=scores.device) >= self.dropout
            scores = scores * keep.unsqueeze(-1).to(scores.dtype) / (1 - self.dropout)
        return scores.sum(dim=-2)
