"""optuna search: runs trials from a recipe's search space, resumes an interrupted study, writes the best recipe."""

from __future__ import annotations

import pytest
import yaml

from langbert.cli import main
from tests.conftest import SENTIMENT, write_jsonl

pytest.importorskip("optuna")


def test_search_resumes_and_writes_best_recipe(tmp_path, tiny_model_dir, capsys):
    import optuna

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": tiny_model_dir, "data": {"train": str(data), "dev": str(data)}, "max_steps": 20, "eval_steps": 10,
        "max_length": 16, "batch_size": 8, "bf16": False, "warmup_ratio": 0.0,
        "search": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "weight_decay": [0.0, 0.01]},
    }), encoding="utf-8")
    out = tmp_path / "search"
    assert main(["search", str(recipe), "--trials", "2", "--output-dir", str(out)]) == 0
    # a second call is the interrupted study picked up again: it runs only the missing trial
    assert main(["search", str(recipe), "--trials", "3", "--output-dir", str(out)]) == 0
    study = optuna.load_study(study_name="r", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 3
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["learning_rate"] == study.best_params["learning_rate"] and "search" not in best
    assert (out / "history.png").stat().st_size > 1000
    assert "best trial" in capsys.readouterr().out
