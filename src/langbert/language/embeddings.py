"""Embedding transfer from a source model's vocabulary to a new one.

- copied: the token exists in the source vocabulary: its row is copied unchanged.
- dictionary: the token has English glosses in a bilingual dictionary: the rank-weighted mean (weights
  1, 1/2, 1/3, ... in dictionary order, most common sense first) of the glosses' embeddings, each gloss
  embedded as the mean of the source model's input embeddings of its source-tokenizer pieces. This is
  WECHSEL's idea with a dictionary instead of aligned fastText spaces.
- composed: a multi-character word without a gloss: the mean of its characters' rows, when they have one.
- mean / random: the baselines (mean of all source rows; N(0, 0.02)), and the fallback for the rest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from .vocab import is_cjk

Init = Literal["dictionary", "mean", "random"]


@dataclass
class TransferReport:
    sources: list[str]
    """How each new row was made, by new token id."""
    examples: dict[str, list[str]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.sources))


def gloss_embedding(gloss: str, source_tokenizer: Any, source_emb: torch.Tensor) -> torch.Tensor | None:
    ids = [i for i in source_tokenizer(gloss, add_special_tokens=False)["input_ids"] if i != source_tokenizer.unk_token_id]
    return source_emb[ids].mean(0) if ids else None


def dictionary_embedding(glosses: list[str], source_tokenizer: Any, source_emb: torch.Tensor,
                         max_glosses: int = 8) -> torch.Tensor | None:
    vectors, weights = [], []
    for rank, gloss in enumerate(glosses[:max_glosses]):
        v = gloss_embedding(gloss, source_tokenizer, source_emb)
        if v is not None:
            vectors.append(v)
            weights.append(1.0 / (rank + 1))
    if not vectors:
        return None
    w = torch.tensor(weights, dtype=source_emb.dtype)
    return (torch.stack(vectors) * w[:, None]).sum(0) / w.sum()


def transfer_embeddings(source_emb: torch.Tensor, source_tokenizer: Any, new_tokens: list[str], init: Init,
                        dictionary: dict[str, list[str]] | None = None, seed: int = 0) -> tuple[torch.Tensor, TransferReport]:
    source_emb = source_emb.detach().float()
    source_vocab = source_tokenizer.get_vocab()
    generator = torch.Generator().manual_seed(seed)
    mean = source_emb.mean(0)
    new = torch.empty(len(new_tokens), source_emb.shape[1])
    how: list[str] = [""] * len(new_tokens)
    for i, token in enumerate(new_tokens):
        if token in source_vocab:
            new[i], how[i] = source_emb[source_vocab[token]], "copied"
        elif init == "dictionary" and dictionary and token in dictionary and \
                (v := dictionary_embedding(dictionary[token], source_tokenizer, source_emb)) is not None:
            new[i], how[i] = v, "dictionary"
        elif init == "random":
            new[i], how[i] = torch.randn(source_emb.shape[1], generator=generator) * 0.02, "random"
        else:
            new[i], how[i] = mean, "mean"
    if init == "dictionary":
        index = {t: i for i, t in enumerate(new_tokens)}
        for i, token in enumerate(new_tokens):
            if how[i] == "mean" and len(token) > 1 and is_cjk(token):
                parts = [index[c] for c in token if c in index and how[index[c]] in ("copied", "dictionary")]
                if len(parts) == len(token):
                    new[i], how[i] = new[parts].mean(0), "composed"
    report = TransferReport(how)
    for kind in set(how):
        report.examples[kind] = [t for t, h in zip(new_tokens, how) if h == kind][:10]
    return new.to(source_emb.dtype), report
