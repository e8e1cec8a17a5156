"""A wall-time budget for pretraining that still ends on a decayed learning rate.

Stopping a step-planned run when the clock runs out leaves the learning rate wherever the schedule had got
to (at its peak, for a long plan), and the checkpoint pays for it. So the budget is turned into a step
count before training, from the measured cost of a few real optimisation steps, and the schedule (warmup
and decay) is laid out over those steps. The wall-clock stop stays as a safety net.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from typing import Any, Callable

import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

SAFETY = 0.9
"""Share of the budget the plan fills: step times drift (thermal, other processes), checkpoints take time."""


class TimeBudget(TrainerCallback):
    def __init__(self, minutes: float):
        self.seconds, self.start = minutes * 60, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        # Each rank reads its own clock; one that stopped alone would leave the others waiting forever in
        # the next gradient all-reduce. Any rank over budget stops them all, at the same step.
        if agree(int(time.monotonic() - self.start > self.seconds), "max", args.device):
            logger.info("time budget reached at step %d: saving and stopping", state.global_step)
            control.should_training_stop = control.should_save = control.should_evaluate = True


def seconds_per_step(model: Any, make_batch: Callable[[int], dict], bf16: bool,
                     loss_of: Callable[[Any, dict], torch.Tensor] | None = None, repeats: int = 3) -> float:
    """Wall seconds of one forward + backward + AdamW update on real batches (after one untimed warm-up).

    The update runs at learning rate 0 and the gradients are dropped, so the weights are left as they were.
    """
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=0.0, fused=device.type in ("cpu", "cuda"))  # as the Trainer's
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    model.train()
    timings = []
    for i in range(repeats + 1):
        batch = {k: v.to(device) for k, v in make_batch(i).items()}
        _sync(device)
        start = time.perf_counter()
        with autocast:
            loss = loss_of(model, batch) if loss_of is not None else model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        timings.append(time.perf_counter() - start)
    return sorted(timings[1:])[len(timings[1:]) // 2]


def steps_within(minutes: float, step_seconds: float, max_steps: int, eval_steps: int, eval_batches: int,
                 first_steps: int = 0, first_step_seconds: float | None = None) -> int:
    """Optimisation steps that fit in the budget, counting the held-out evaluations (a forward is ~1/3 step).

    ``first_steps`` at ``first_step_seconds`` each come first (an embeddings-only phase is cheaper than a
    full step: planning it at the full rate left a third of a 25-minute budget unused).
    """
    def with_evals(seconds: float) -> float:
        return seconds * (1 + eval_batches / 3 / eval_steps)

    budget = minutes * 60 * SAFETY
    cheap = with_evals(first_step_seconds if first_step_seconds is not None else step_seconds)
    if first_steps and first_steps * cheap >= budget:
        planned = int(budget / cheap)
    else:
        planned = first_steps + int((budget - first_steps * cheap) / with_evals(step_seconds))
    return max(1, min(max_steps, planned))


def agree(value: int, op: str, device: torch.device) -> int:
    """The max or min of ``value`` over all ranks of a torchrun job; ``value`` itself in a single process."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return value
    tensor = torch.tensor([value], device=device)
    reduce_op = torch.distributed.ReduceOp.MAX if op == "max" else torch.distributed.ReduceOp.MIN
    torch.distributed.all_reduce(tensor, op=reduce_op)
    return int(tensor.item())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
