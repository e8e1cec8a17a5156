from __future__ import annotations

import pytest

from langbert.config import DataConfig, PretrainConfig, TrainConfig, load_recipe
from langbert.errors import ConfigError


def test_recipe_then_flags(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: regression\nlearning_rate: 1.0e-4\ndata:\n  dataset: zh-sentiment\n", encoding="utf-8")
    config = load_recipe(recipe, {"learning_rate": 2e-5, "train": "x.csv", "text_column": "t"})
    assert config.task == "regression" and config.learning_rate == 2e-5
    assert config.data.train == "x.csv" and config.data.dataset is None and config.data.text_column == "t"


SHARED = [({"learning_rate": -1.0}, "learning_rate"), ({"warmup_ratio": 1.5}, "warmup_ratio"),
          ({"batch_size": 0}, "batch_size"), ({"max_grad_norm": -1.0}, "max_grad_norm"),
          ({"scheduler": "step"}, "scheduler")]
CASES = [*[(TrainConfig, bad, message) for bad, message in [
    *SHARED, ({"optimizer": "adam"}, "optimizer"), ({"dropout": 1.0}, "dropout"), ({"options": []}, "options")]],
    *[(PretrainConfig, bad, message) for bad, message in [*SHARED, ({"mlm_probability": 1.0}, "mlm_probability")]]]


@pytest.mark.parametrize("config,bad,message", CASES)
def test_invalid_values_fail_before_any_model_loads(config, bad, message):
    with pytest.raises(ConfigError, match=message):
        config(**bad)


def test_unknown_recipe_key_is_named(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("lerning_rate: 1.0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="lerning_rate"):
        load_recipe(recipe)


def test_data_needs_a_source():
    with pytest.raises(ConfigError):
        DataConfig()
