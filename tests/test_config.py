from __future__ import annotations

import pytest

from langbert.config import DataConfig, PretrainConfig, TrainConfig, load_flat_recipe, load_recipe, read_yaml
from langbert.errors import ConfigError
from langbert.recipes import recipe_path


def test_recipe_then_flags(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: regression\nlearning_rate: 1.0e-4\ndata:\n  dataset: zh-sentiment\n", encoding="utf-8")
    config = load_recipe(recipe, {"learning_rate": 2e-5, "train": "x.csv", "text_column": "t"})
    assert config.task == "regression" and config.learning_rate == 2e-5
    assert config.data.train == "x.csv" and config.data.dataset is None and config.data.text_column == "t"


def test_a_recipe_starts_from_its_base_section_by_section(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "task: token-classification\nepochs: 4\nlearning_rate: 1.0e-4\ndata:\n  dataset: zh-ner\n"
        "options:\n  crf: true\n  stride: 32\n  lexicon: [cc-cedict, train]\n", encoding="utf-8")
    (tmp_path / "mine.yaml").write_text("base: base\nepochs: 1\noptions:\n  stride: 16\n  lexicon: [train]\n",
                                        encoding="utf-8")
    config = load_recipe(tmp_path / "mine.yaml", {"learning_rate": 3e-5})
    assert config.task == "token-classification" and config.data.dataset == "zh-ner"
    assert config.epochs == 1 and config.learning_rate == 3e-5
    # options merge key by key; a list replaces the base's list
    assert config.options == {"crf": True, "stride": 16, "lexicon": ["train"]}


def test_a_users_recipe_starts_from_a_packaged_one(tmp_path):
    (tmp_path / "ner.yaml").write_text("base: zh-ner\noutput_dir: runs/mine\nepochs: 2\n", encoding="utf-8")
    config, packaged = load_recipe(tmp_path / "ner.yaml"), load_recipe(recipe_path("zh-ner"))
    assert config.output_dir == "runs/mine" and config.epochs == 2
    assert config.options == packaged.options and config.layer_lr_decay == packaged.layer_lr_decay == 0.9
    (tmp_path / "pretrain.yaml").write_text("base: pretrain-zh\nmax_minutes: 60\n", encoding="utf-8")
    pretrain = load_flat_recipe(PretrainConfig, tmp_path / "pretrain.yaml", {})
    assert pretrain.max_minutes == 60 and pretrain.max_steps == 1000 and pretrain.whole_word_masking
    # a training file of one's own replaces the base's built-in dataset instead of clashing with it
    (tmp_path / "own.yaml").write_text("base: zh-ner\ndata:\n  train: mine.jsonl\n  dev: dev.jsonl\n", encoding="utf-8")
    own = load_recipe(tmp_path / "own.yaml")
    assert (own.data.dataset, own.data.train, own.data.dev) == (None, "mine.jsonl", "dev.jsonl")
    assert own.options == packaged.options


@pytest.mark.parametrize("texts,message", [
    ({"a.yaml": "base: b\n", "b.yaml": "base: a.yaml\n"}, r"b.yaml: base: a.yaml leads back to itself "
                                                           r"\(a.yaml -> b.yaml -> a.yaml\)"),
    ({"a.yaml": "base: nowhere\n"}, r"a.yaml: base: 'nowhere' is neither a file beside it nor a packaged recipe"),
    ({"a.yaml": "base: [zh-ner]\n"}, r"a.yaml: base: names a recipe")])
def test_a_bad_base_is_named_with_its_file(tmp_path, texts, message):
    for name, text in texts.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        read_yaml(tmp_path / "a.yaml")


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
