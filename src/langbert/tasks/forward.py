"""Running a task's model over rows: encode, batch by length, forward, and let the task gather the results.

Training's final evaluation, ``Predictor``, export's parity check and the server all go through here.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..data.rows import Row
from ..data.script import converted_rows
from .base import Task


# The fixed cost of one forward (Python, kernel launches, decoding) in padded tokens. Measured on 2 cores
# with MiniLM on micro-batches of 32 random reviews: any value from 150 to 800 gave ~1.7x the sentences/s
# of fixed-size sorted batches (within noise of each other); 30-100 split too eagerly.
BATCH_OVERHEAD_TOKENS = 200


def partition(lengths: Sequence[int], max_batch: int, overhead: int = BATCH_OVERHEAD_TOKENS) -> list[int]:
    """Batch boundaries over ``lengths`` sorted ascending that minimise padded tokens plus a per-batch
    overhead (dynamic programming; each batch pads to its last, longest, member).

    Fixed-size batches of a few mixed-length texts, as a server's micro-batches are, pad every short
    text to the longest: on 32 random reviews that cost 40% of the throughput of sorted offline batches.
    """
    n = len(lengths)
    cost = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(max(0, j - max_batch), j):
            c = cost[i] + overhead + (j - i) * lengths[j - 1]
            if c < cost[j]:
                cost[j], cut[j] = c, i
    bounds, j = [], n
    while j > 0:
        bounds.append(j)
        j = cut[j]
    return bounds[::-1]


def forward_batches(task: Task, model: Any, tokenizer: Any, rows: Sequence[Row], max_length: int,
                    batch_size: int = 64, bf16: bool = False, unpadded: bool = False,
                    features: list[dict] | None = None) -> Any:
    """Per-row model outputs (what ``task.gather`` makes of them), in the rows' order.

    Features (``task.encode`` of ``rows`` unless given) run shortest first, cut into batches by
    ``partition`` (at most ``batch_size`` each); a model whose encoder skips padding (``unpadded``, see
    ``langbert.kernels.unpadded``) gets full batches.
    """
    if features is None:
        features = task.encode(converted_rows(rows, tokenizer), tokenizer, max_length, with_labels=False)
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    collate = task.collator(tokenizer)
    device = next(model.parameters()).device
    was_training = model.training
    if was_training:  # train()/eval() walk every module: ~2 ms a call, worth skipping per request
        model.eval()
    results: list[Any] = [None] * len(features)
    start = 0
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        bounds = ([min(i + batch_size, len(order)) for i in range(0, len(order), batch_size)] if unpadded
                  else partition([len(features[i]["input_ids"]) for i in order], batch_size))
        for end in bounds:
            chunk, start = order[start:end], end
            batch = collate([features[i] for i in chunk])
            batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
            for i, result in zip(chunk, task.unbatch(model, model(**batch), batch)):
                results[i] = result
    if was_training:
        model.train()
    return task.gather(results, features, rows)
