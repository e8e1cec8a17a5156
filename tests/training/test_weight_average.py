"""The moving average of the weights: its arithmetic, the swap in and out, its file, and fine-tuning that
evaluates, keeps and saves the average while scoring the raw weights beside it."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from langbert import train
from langbert.errors import ConfigError
from langbert.training.weight_average import WeightAverage, trainable_weights, weights_applied
from tests.conftest import SENTIMENT, tiny_train_config, write_jsonl


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    model[1].bias.requires_grad_(False)  # frozen: not averaged
    return model


def test_average_follows_the_formula_with_its_warmup():
    model = _model()
    start = model[0].weight.detach().clone()
    average = WeightAverage(model, decay=0.99)
    assert average.names == ["0.weight", "0.bias", "1.weight"]
    expected = start.clone()
    for n in range(3):
        with torch.no_grad():
            model[0].weight.add_(1.0)
        average.update(model)
        d = min(0.99, (1 + n) / (10 + n))  # 0.1, 0.1818..., 0.25: the start fades fast
        expected = d * expected + (1 - d) * model[0].weight.detach()
    torch.testing.assert_close(average.average["0.weight"], expected)
    assert not torch.allclose(expected, model[0].weight)


def test_applied_swaps_the_average_in_and_the_raw_weights_back():
    model = _model()
    average = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    raw = trainable_weights(model)
    with average.applied(model):
        torch.testing.assert_close(model[0].weight, average.average["0.weight"])
    torch.testing.assert_close(model[0].weight, raw["0.weight"])
    with weights_applied(model, {"0.bias": torch.zeros(2)}):
        assert model[0].bias.abs().sum() == 0
    torch.testing.assert_close(model[0].bias, raw["0.bias"])


def test_save_and_load_keep_the_average_and_its_count(tmp_path):
    model = _model()
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model[0].weight.add_(2.0)
    average.update(model)
    average.update(model)
    average.save(tmp_path)
    other = WeightAverage(_model(), decay=0.9)
    assert other.load(tmp_path) and other.updates == 2
    torch.testing.assert_close(other.average["0.weight"], average.average["0.weight"])
    assert not WeightAverage(_model(), 0.9).load(tmp_path / "none")


def test_config_refuses_a_decay_out_of_range_and_other_methods():
    from langbert.config import TrainConfig

    for bad in (dict(ema_decay=1.0), dict(ema_decay=-0.1), dict(ema_decay=0.9, method="setfit")):
        with pytest.raises(ConfigError, match="ema_decay"):
            TrainConfig(**bad)


@pytest.mark.parametrize("task,options", [("text-classification", {}), ("token-classification", {"crf": True})])
def test_training_keeps_and_saves_the_average_and_scores_the_raw_weights(tmp_path, tiny_model_dir, task, options):
    if task == "text-classification":
        records = [{"text": t, "label": l} for t, l in SENTIMENT]
    else:
        records = [{"text": "我在北京", "entities": [[2, 4, "LOC"]]}, {"text": "他在上海", "entities": [[2, 4, "LOC"]]},
                   {"text": "中国人民", "entities": [[0, 2, "LOC"]]}, {"text": "我是他", "entities": []}] * 2
    data = write_jsonl(tmp_path / "t.jsonl", records)
    out = train(tiny_train_config(tmp_path, tiny_model_dir, data, task=task, ema_decay=0.9, max_steps=20,
                                  eval_steps=10, **options))
    meta = json.loads((out / "langbert.json").read_text())
    best = meta["best_checkpoint"]
    saved = load_file(str(out / "model.safetensors"))
    average = load_file(f"{best}/weight_average.safetensors")
    raw = load_file(f"{best}/model.safetensors")
    head = next(k for k in average if "classifier.weight" in k)
    torch.testing.assert_close(saved[head], average[head])  # the folder holds the average ...
    assert (raw[head] - average[head]).abs().max() > 1e-4  # ... which is not the checkpoint's raw weights
    assert set(meta["metrics_raw_weights"]) == set(meta["metrics"]) == {"dev"}
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    metric = meta["config"]["metric"] or next(iter(meta["best_dev_metric"]))
    assert any(f"eval_raw_{metric}" in l for l in lines) and any(f"eval_{metric}" in l for l in lines)
