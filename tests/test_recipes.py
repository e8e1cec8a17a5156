"""Every packaged recipe loads into its config and validates, task options included, before any data or
model is touched."""

from __future__ import annotations

import pytest

from langbert.config import AdaptConfig, PretrainConfig, load_flat_recipe, load_recipe, read_yaml
from langbert.recipes import recipe_names, recipe_path
from langbert.training import task_for

STAGES = {"adapt": AdaptConfig, "pretrain": PretrainConfig}


@pytest.mark.parametrize("name", recipe_names())
def test_packaged_recipe_validates(name):
    path = recipe_path(name)
    stage = next((cls for prefix, cls in STAGES.items() if name.startswith(prefix)), None)
    if stage is not None:
        config = load_flat_recipe(stage, path, {})
        assert isinstance(config, stage)
        return
    config = load_recipe(path)
    task = task_for(config)
    assert task.name == config.task
    # what the recipe says of the task's options is what the task got
    for key, value in (read_yaml(path).get("options") or {}).items():
        assert getattr(task.options, key) == value


def test_there_are_recipes_of_each_kind():
    names = recipe_names()
    assert any(n.startswith("adapt") for n in names) and any(n.startswith("pretrain") for n in names)
    assert {"zh-ner", "zh-cws", "zh-sentiment"} <= set(names)
