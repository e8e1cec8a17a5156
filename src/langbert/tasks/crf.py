"""A linear-chain CRF in PyTorch: vectorised forward algorithm, Viterbi, and transitions that forbid
invalid tag moves (``O -> I-X`` in BIO, ``B -> S`` in BMES, ...).

Sequences are prefix-masked: ``mask[:, :n]`` is True for a sequence of length n (n >= 1).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..data.spans import split_tag

NEG = -1e4  # "impossible" without the NaNs that -inf produces in logsumexp of all-impossible rows


def allowed_transitions(tags: Sequence[str], scheme: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(start, transitions, end) boolean masks of what the scheme allows."""
    n = len(tags)
    parts = [split_tag(t) for t in tags]
    start, end = torch.ones(n, dtype=torch.bool), torch.ones(n, dtype=torch.bool)
    trans = torch.ones(n, n, dtype=torch.bool)
    for j, (p, k) in enumerate(parts):
        if scheme == "BIO":
            start[j] = p != "I"
        else:
            start[j] = p in ("B", "S", "O")
            end[j] = p in ("E", "S", "O")
        for i, (q, kq) in enumerate(parts):
            if scheme == "BIO":
                trans[i, j] = p != "I" or (q in ("B", "I") and kq == k)
            else:
                inside = q in ("B", "M")  # i is inside an open word: only M/E of its type may follow
                trans[i, j] = (p in ("M", "E") and kq == k) if inside else p in ("B", "S", "O")
    return start, trans, end


class CRF(nn.Module):
    def __init__(self, tags: Sequence[str], scheme: str):
        super().__init__()
        n = len(tags)
        self.start = nn.Parameter(torch.zeros(n))
        self.end = nn.Parameter(torch.zeros(n))
        self.transitions = nn.Parameter(torch.zeros(n, n))
        # Constraints are fixed, applied in training and decoding alike: the model never has to learn what
        # the scheme already forbids, and decoding can never emit it. Made at first use rather than held
        # as buffers: transformers builds a model on the meta device and leaves buffers the checkpoint
        # lacks without data.
        self._allowed = (list(tags), scheme)
        self._masks: tuple[torch.Tensor, ...] = ()

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not self._masks or self._masks[0].device != self.start.device:
            self._masks = tuple(torch.where(m, 0.0, NEG).to(self.start.device)
                                for m in allowed_transitions(*self._allowed))
        start_mask, trans_mask, end_mask = self._masks
        return self.start + start_mask, self.transitions + trans_mask, self.end + end_mask

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-sequence log p(tags | emissions). emissions (B, T, K), tags (B, T), mask (B, T) bool.

        A tag < 0 within the mask is unknown (partial labels): the likelihood sums over every tag sequence
        that agrees with the known tags, as the forward algorithm over emissions where a known position
        allows only its tag (Tsuboi et al., COLING 2008)."""
        unknown = (tags < 0) & mask
        if not unknown.any():
            return self._gold_score(emissions, tags, mask) - self._log_partition(emissions, mask)
        allowed = unknown.unsqueeze(-1) | nn.functional.one_hot(tags.clamp(min=0), emissions.shape[-1]).bool()
        return self._log_partition(emissions.masked_fill(~allowed, NEG), mask) - self._log_partition(emissions, mask)

    def _gold_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        start, trans, end = self._scores()
        tags = tags.clamp(min=0)
        m = mask.float()
        emit = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)
        score = start[tags[:, 0]] + (emit * m).sum(1)
        score = score + (trans[tags[:, :-1], tags[:, 1:]] * m[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)
        return score + end[last]

    def _log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        start, trans, end = self._scores()
        alpha = start + emissions[:, 0]  # (B, K)
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    @torch.no_grad()
    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        start, trans, end = self._scores()
        # Evaluation hands over emissions gathered on the CPU while the CRF sits on the GPU.
        emissions, mask = emissions.to(start.device), mask.to(start.device)
        score = start + emissions[:, 0]
        history = []
        for t in range(1, emissions.shape[1]):
            best, index = (score.unsqueeze(2) + trans.unsqueeze(0)).max(dim=1)
            step = best + emissions[:, t]
            keep = mask[:, t].unsqueeze(1)
            score = torch.where(keep, step, score)
            # where masked, point each tag at itself so backtracking passes through unchanged
            history.append(torch.where(keep, index, torch.arange(score.shape[1], device=index.device).expand_as(index)))
        score = score + end
        lengths = mask.sum(1).tolist()
        best_last = score.argmax(1)
        paths = []
        for b in range(emissions.shape[0]):
            tag = int(best_last[b])
            path = [tag]
            for t in range(len(history) - 1, -1, -1):
                tag = int(history[t][b, tag])
                path.append(tag)
            path.reverse()
            paths.append(path[: lengths[b]])
        return paths

    @torch.no_grad()
    def max_marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, K): the score of the best tag sequence that puts tag k at position t. Per position its
        argmax is the Viterbi path's tag, and its maximum the Viterbi score, so a reader that takes the
        argmax of each token's scores (HF's token-classification pipeline) gets the CRF's decoding.
        Positions past a sequence's length hold no meaning."""
        start, trans, end = self._scores()
        emissions, mask = emissions.to(start.device), mask.to(start.device)
        forward = [start + emissions[:, 0]]
        for t in range(1, emissions.shape[1]):
            forward.append((forward[-1].unsqueeze(2) + trans.unsqueeze(0)).max(dim=1).values + emissions[:, t])
        last = end.expand_as(forward[0])
        backward = [last]  # best score of what follows position t, given its tag
        for t in range(emissions.shape[1] - 2, -1, -1):
            step = (trans.unsqueeze(0) + (emissions[:, t + 1] + backward[0]).unsqueeze(1)).max(dim=2).values
            backward.insert(0, torch.where(mask[:, t + 1].unsqueeze(1), step, last))
        return torch.stack(forward, 1) + torch.stack(backward, 1)
