"""Each task declares its options; recipes, flags and saved folders go through them."""

from __future__ import annotations

import pytest

from langbert.cli import build_parser
from langbert.config import build_config
from langbert.errors import ConfigError
from langbert.tasks import create_task, get_task_class, register_task, task_from_state
from langbert.training import task_for


def test_an_option_the_task_does_not_take_is_refused_with_the_ones_it_does():
    with pytest.raises(ConfigError, match=r"text-classification.*\['crf'\].*pooling"):
        create_task("text-classification", {"crf": True})


@pytest.mark.parametrize("task,bad,message", [
    ("token-classification", {"crf_lr_scale": 0.0}, "crf_lr_scale"),
    ("token-classification", {"tag_scheme": "IOBES"}, "tag_scheme"),
    ("multi-label-classification", {"threshold": 1.5}, "threshold"),
    ("question-answering", {"stride": -1}, "stride"),
    ("text-classification", {"pooling": "max"}, "pooling"),
])
def test_bad_option_values_fail_on_construction(task, bad, message):
    with pytest.raises(ConfigError, match=message):
        create_task(task, bad)


def test_options_survive_the_saved_state():
    task = create_task("token-classification", {"crf": True, "tag_scheme": "BMES", "stride": 8})
    task.types = ["W"]
    again = task_from_state(task.state())
    assert again.options == task.options and again.types == ["W"] and again.crf and again.scheme == "BMES"


def test_flags_and_recipe_options_reach_the_task(tmp_path):
    parser = build_parser()
    ns = parser.parse_args(["train", "--task", "token-classification", "--dataset", "zh-cws", "--crf",
                            "--stride", "16"])
    from langbert.cli import _overrides

    config = build_config({"options": {"crf_lr_scale": 10.0}}, _overrides(ns))
    assert config.options == {"crf_lr_scale": 10.0, "crf": True, "stride": 16}
    task = task_for(config)
    # zh-cws implies BMES tags; the recipe and the flags set the rest
    assert (task.options.tag_scheme, task.options.crf, task.options.stride, task.options.crf_lr_scale) == \
        ("BMES", True, 16, 10.0)


def test_a_second_task_under_a_taken_name_is_refused():
    existing = get_task_class("text-classification")

    class Impostor(existing):
        name = "text-classification"

    with pytest.raises(ValueError, match="already registered"):
        register_task(Impostor)
    assert get_task_class("text-classification") is existing


@pytest.mark.parametrize("state,expected", [
    ({"name": "text-classification", "labels": ["a", "b"], "threshold": 0.5, "pooling": "mean"}, {"pooling": "mean"}),
    ({"name": "token-classification", "labels": ["O", "B-W"], "threshold": 0.5, "scheme": "BMES", "crf": True,
      "stride": 16, "types": ["W"]}, {"tag_scheme": "BMES", "crf": True, "stride": 16}),
    ({"name": "multi-label-classification", "labels": ["x"], "threshold": 0.3, "pooling": "cls"},
     {"threshold": 0.3, "pooling": "cls"}),
])
def test_a_folder_saved_before_options_had_their_own_section_still_loads(state, expected):
    task = task_from_state(state)
    assert {k: getattr(task.options, k) for k in expected} == expected and task.labels == state["labels"]
