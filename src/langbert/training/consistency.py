"""Consistency training on unlabelled texts (UDA: "Unsupervised Data Augmentation for Consistency
Training", Xie et al., NeurIPS 2020).

A few labels teach a classifier little; the texts without labels can still teach it to give the same answer
to a text and to a slightly changed copy of it, which pulls its decision boundary away from where the
unlabelled texts lie. Each training step adds, to the labelled batch's loss, the KL divergence from the
model's prediction on a clean unlabelled text (no gradient, sharpened) to its prediction on a noised copy,
counted only where the clean prediction is confident. The noise replaces a share of the tokens by tokens
drawn from the unlabelled texts themselves, so a frequent word stands in more often than a rare one: a
language-neutral stand-in for UDA's TF-IDF word replacement (back-translation needs a translation model).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F


class Consistency:
    """The unsupervised half of a UDA step: ``loss(model)`` draws the next unlabelled batch (a fixed
    sequence given the seed and the process's ``rank``, counted from ``start``, so a resumed run draws what
    the run it resumes would have and the processes of a distributed run draw different texts) and returns
    the weighted consistency loss. ``summary()`` says how much of it counted."""

    def __init__(self, features: Sequence[dict], collator: Any, special_ids: Sequence[int], *, weight: float,
                 noise: float, threshold: float, temperature: float, batch_size: int, seed: int, rank: int = 0):
        if not features:
            raise ValueError("consistency training needs unlabelled texts")
        self.features = features
        self.collator = collator
        self.weight, self.noise, self.threshold, self.temperature = weight, noise, threshold, temperature
        self.batch_size, self.seed, self.rank = batch_size, seed, rank
        self.special = torch.tensor(sorted(set(special_ids)), dtype=torch.long)
        ids = torch.tensor([i for f in self.features for i in f["input_ids"]], dtype=torch.long)
        self.unigram = ids[~torch.isin(ids, self.special)]
        if noise and not len(self.unigram):
            raise ValueError("consistency_noise: the unlabelled texts hold no token but special ones")
        self.draws = 0
        self.texts_seen = 0
        self.texts_counted = 0
        self.loss_sum = 0.0

    def start(self, draws: int) -> None:
        """Continue the sequence of batches after ``draws`` of them (a resumed run's steps so far)."""
        self.draws = draws

    def batch(self) -> tuple[dict[str, torch.Tensor], torch.Generator]:
        """The next unlabelled batch, collated (a seeded draw, no text twice in it), and the generator its
        noise continues from."""
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.rank) * 1_000_003 + self.draws)
        self.draws += 1
        picked = torch.randperm(len(self.features), generator=generator)[:self.batch_size].tolist()
        return self.collator([self.features[i] for i in picked]), generator

    def noised(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
               generator: torch.Generator) -> torch.Tensor:
        """``input_ids`` with ``noise`` of their real, non-special tokens replaced by unigram draws."""
        if not self.noise:
            return input_ids
        real = ~torch.isin(input_ids, self.special)
        if attention_mask is not None:
            real &= attention_mask.bool()
        replace = real & (torch.rand(input_ids.shape, generator=generator) < self.noise)
        drawn = self.unigram[torch.randint(len(self.unigram), input_ids.shape, generator=generator)]
        return torch.where(replace, drawn, input_ids)

    def loss(self, model: Any) -> torch.Tensor:
        batch, generator = self.batch()
        noisy_ids = self.noised(batch["input_ids"], batch.get("attention_mask"), generator)
        device = next(model.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        with torch.no_grad():
            clean = model(**batch).logits.float()
        target = (clean / self.temperature).softmax(-1)
        counted = clean.softmax(-1).amax(-1) >= self.threshold
        log_noisy = model(**{**batch, "input_ids": noisy_ids.to(device)}).logits.float().log_softmax(-1)
        per_text = F.kl_div(log_noisy, target, reduction="none").sum(-1)
        # Divided by the whole batch, as UDA does: a batch where few texts are confident teaches little.
        loss = (per_text * counted).sum() / len(per_text)
        self.texts_seen += len(per_text)
        self.texts_counted += int(counted.sum())
        self.loss_sum += float(loss.detach())
        return self.weight * loss

    def summary(self) -> dict[str, Any]:
        return {"weight": self.weight, "noise": self.noise, "threshold": self.threshold,
                "temperature": self.temperature, "unlabeled": len(self.features), "batch_size": self.batch_size,
                "batches": self.draws, "share_counted": round(self.texts_counted / max(1, self.texts_seen), 4),
                "mean_loss": round(self.loss_sum / max(1, self.draws), 6)}
