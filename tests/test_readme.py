"""The README's commands parse as written, and its 'add your own task' example trains, saves and predicts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from langbert.cli import build_parser
from tests.conftest import write_csv

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _commands() -> list[str]:
    lines, joined = [], ""
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].rstrip()
            joined = f"{joined} {line.rstrip(chr(92))}" if joined else line.rstrip(chr(92))
            if line.endswith("\\"):
                continue
            if joined.strip().startswith("langbert "):
                lines.append(joined.strip())
            joined = ""
    return lines


@pytest.mark.parametrize("command", _commands())
def test_readme_command_parses(command):
    argv = shlex.split(command.replace(" > predictions.jsonl", ""))[1:]
    ns = build_parser().parse_args(argv)
    assert callable(ns.handler)


@pytest.fixture
def star_task():
    from langbert.tasks import base

    task_code, train_code = [b for b in _blocks("python") if "register_task" in b or "star-sentiment" in b]
    exec(compile(task_code, "README.md", "exec"), {})
    yield train_code
    base._TASKS.pop("star-sentiment")  # other tests see only the package's tasks


def test_the_custom_task_example_trains_and_predicts(tmp_path, tiny_model_dir, star_task):
    from langbert import DataConfig, Predictor, TrainConfig, train
    from langbert.tasks import create_task

    train_code = star_task
    assert create_task("star-sentiment", {"positive_from": 5}).parse_label("4") == "negative"
    rows = [["很好很喜欢", 5], ["太差了", 1], ["非常满意", 5], ["很失望", 2]] * 4
    data = write_csv(tmp_path / "ratings.csv", ["text", "stars"], rows)
    assert 'options={"positive_from": 5}' in train_code
    out = train(TrainConfig(task="star-sentiment", model=tiny_model_dir, output_dir=str(tmp_path / "stars"),
                            data=DataConfig(train=str(data), dev=str(data), label_column="stars"),
                            options={"positive_from": 5}, max_steps=40, eval_steps=40, batch_size=8,
                            learning_rate=3e-3, warmup_ratio=0.0, max_length=32, progress=False, bf16=False))
    preds = Predictor.load(out).predict(["很好很喜欢", "太差了"])
    assert [p["label"] for p in preds] == ["positive", "negative"]
