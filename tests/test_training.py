"""Gradient accumulation is the big batch, for the models' own losses and for langbert's (CRF)."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from langbert import train
from tests.conftest import SENTIMENT, tiny_train_config, write_jsonl


@pytest.mark.parametrize("task,crf", [("text-classification", False), ("token-classification", True)])
def test_two_accumulated_half_batches_take_the_same_step_as_one_batch(tmp_path, tiny_model_dir, task, crf):
    if task == "text-classification":
        records = [{"text": t, "label": l} for t, l in SENTIMENT[2:6]]
    else:
        records = [{"text": "我在北京", "entities": [[2, 4, "LOC"]]}, {"text": "他在上海", "entities": [[2, 4, "LOC"]]},
                   {"text": "中国人民", "entities": [[0, 2, "LOC"]]}, {"text": "我是他", "entities": []}]
    data = write_jsonl(tmp_path / "t.jsonl", records)
    weights = {}
    for batch, accumulate in ((4, 1), (2, 2)):
        # SGD without momentum and no clipping: the update is the gradient itself, so a wrongly scaled
        # accumulated loss shows as a different weight.
        out = train(tiny_train_config(tmp_path / f"b{batch}", tiny_model_dir, data, task=task, crf=crf,
                                      batch_size=batch, gradient_accumulation_steps=accumulate, max_steps=1,
                                      optimizer="sgd", momentum=0.0, learning_rate=0.5, max_grad_norm=0.0,
                                      dropout=0.0, group_by_length=False, eval_steps=1))
        weights[batch] = load_file(str(out / "model.safetensors"))
    changed = [k for k in weights[4] if "classifier" in k]
    assert changed
    for key in weights[4]:
        assert (weights[4][key] - weights[2][key]).abs().max() < 1e-5, key
