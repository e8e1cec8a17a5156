"""An exponential moving average (EMA) of the trainable weights, kept beside the model during fine-tuning.

The average of the last few hundred steps' weights sits nearer the middle of the valley the optimizer
wanders in than any one step's, and usually scores a little better on held-out data. It costs one copy of
the trainable weights and an in-place update per optimizer step. Training evaluates, keeps and saves the
averaged weights; the raw weights stay in the checkpoints (so resuming continues the same optimisation)
with the average beside them in ``weight_average.safetensors``.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import TrainerCallback

FILE = "weight_average.safetensors"


class WeightAverage:
    """EMA of a model's trainable parameters: ``average = d * average + (1 - d) * weights`` after each
    optimizer step, with ``d = min(decay, (1 + n) / (10 + n))`` at update ``n`` so that the first steps'
    weights (a new head at its random start) fade quickly."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.average = {n: w.float() for n, w in trainable_weights(model).items()}

    @property
    def names(self) -> list[str]:
        return list(self.average)

    def _params(self, model: torch.nn.Module) -> list[torch.Tensor]:
        params = dict(model.named_parameters())
        return [params[n] for n in self.average]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        averages = list(self.average.values())
        torch._foreach_mul_(averages, d)
        torch._foreach_add_(averages, [p.detach().float() for p in self._params(model)], alpha=1 - d)
        self.updates += 1

    def copy_to(self, model: torch.nn.Module) -> None:
        _copy_into(model, self.average)

    def applied(self, model: torch.nn.Module):
        """The model reads the averaged weights inside the ``with`` block, its own again after it."""
        return weights_applied(model, self.average)

    def save(self, folder: str | Path) -> None:
        save_file({n: a.contiguous() for n, a in self.average.items()}, str(Path(folder) / FILE),
                  metadata={"decay": str(self.decay), "updates": str(self.updates)})

    def load(self, folder: str | Path) -> bool:
        """The average saved in ``folder`` (a checkpoint), if there is one; False where there is none."""
        path = Path(folder) / FILE
        if not path.is_file():
            return False
        with safe_open(str(path), framework="pt") as f:
            missing = sorted(set(self.average) - set(f.keys()))
            if missing:
                raise ValueError(f"{path}: no average for {missing[:3]}{' ...' if len(missing) > 3 else ''}")
            self.updates = int(f.metadata().get("updates", 0))
            self.average = {n: f.get_tensor(n).float() for n in self.average}
        return True


def trainable_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the trainable parameters, by name."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@contextmanager
def weights_applied(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> Iterator[None]:
    """The model reads ``weights`` (by parameter name) inside the block, its own again after it."""
    own = {n: p.detach().clone() for n, p in model.named_parameters() if n in weights}
    _copy_into(model, weights)
    try:
        yield
    finally:
        _copy_into(model, own)


@torch.no_grad()
def _copy_into(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    for name, value in weights.items():
        params[name].copy_(value.to(params[name].dtype))


class UpdateAverage(TrainerCallback):
    """Steps the average after every optimizer step (HF calls ``on_step_end`` once the accumulated
    gradients were applied)."""

    def __init__(self, average: WeightAverage):
        self.average = average

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self.average.update(model)
