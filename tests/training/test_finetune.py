"""Fine-tuning: gradient accumulation is the big batch (models' own losses and langbert's CRF), and training says
when the vocabulary cannot read its data."""

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
    options = {"crf": crf} if task == "token-classification" else {}
    # (batch, accumulation, learning rate); the last run's step is too small to move anything: the weights
    # training starts from, with the same seed.
    for batch, accumulate, lr in ((4, 1, 0.5), (2, 2, 0.5), (0, 1, 1e-30)):
        # SGD without momentum and no clipping: the update is the gradient itself, so a wrongly scaled
        # accumulated loss shows as a different weight.
        out = train(tiny_train_config(tmp_path / f"b{batch}", tiny_model_dir, data, task=task, **options,
                                      batch_size=batch or 4, gradient_accumulation_steps=accumulate, max_steps=1,
                                      optimizer="sgd", momentum=0.0, learning_rate=lr, max_grad_norm=0.0,
                                      dropout=0.0, group_by_length=False, eval_steps=1))
        weights[batch] = load_file(str(out / "model.safetensors"))
    # the step moved the head: the equality below compares two real updates, not two untouched copies
    moved = [k for k in weights[4] if "classifier" in k and (weights[4][k] - weights[0][k]).abs().max() > 1e-4]
    assert moved
    for key in weights[4]:
        assert (weights[4][key] - weights[2][key]).abs().max() < 1e-5, key


def test_training_says_when_the_vocabulary_cannot_read_the_data(tmp_path, tiny_model_dir, caplog):
    import json
    import logging

    from tests.conftest import write_jsonl

    # Hangul: no token of the tiny Chinese/English vocabulary covers it
    data = write_jsonl(tmp_path / "ko.jsonl", [{"text": t, "label": l} for t, l in
                                                [("좋아요 정말", "pos"), ("별로예요 실망", "neg")] * 4])
    with caplog.at_level(logging.WARNING):
        out = train(tiny_train_config(tmp_path, tiny_model_dir, data, max_steps=2, eval_steps=2))
    assert "are [UNK]" in caplog.text and "langbert adapt" in caplog.text
    assert json.loads((out / "langbert.json").read_text())["data"]["train_unk_rate"] > 0.5


def test_min_steps_gives_few_texts_enough_steps_and_says_so(caplog):
    import logging

    from langbert.config import TrainConfig
    from langbert.training.finetune import planned_steps

    few = TrainConfig(epochs=3, batch_size=32, min_steps=200, eval_steps=None)
    with caplog.at_level(logging.INFO, logger="langbert.training.finetune"):
        assert planned_steps(few, 100) == (200, 67)  # 3 epochs of 4 steps -> 200 steps, still 3 evaluations
    assert "running min_steps=200 instead (50.0 epochs)" in caplog.text
    assert planned_steps(few, 3000) == (-1, None)  # 282 steps at 3 epochs: the epochs stand
    assert planned_steps(TrainConfig(epochs=1, min_steps=200, eval_steps=50), 100) == (200, 200)
    assert planned_steps(TrainConfig(max_steps=10, min_steps=200), 100) == (10, None)  # a budget is a budget
