"""benchmarks/_results.py: a cached benchmark folder is reused only for the settings that made it."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("bench_results", Path(__file__).parents[1] / "benchmarks" / "_results.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@dataclass
class Settings:
    seed: int = 42
    output_dir: str = "out"
    progress: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def test_run_once_reuses_a_folder_only_for_the_same_settings(tmp_path):
    calls = []

    def run(config):
        def go():
            calls.append(config)
            (tmp_path / "langbert.json").write_text(json.dumps({"config": config.to_dict(), "metrics": {"x": 1}}))
        return go

    first = Settings()
    assert bench.run_once(tmp_path, first, run(first))["metrics"] == {"x": 1}
    same = Settings(output_dir="elsewhere", progress=False)  # settings that change no result
    assert "wall_seconds" in bench.run_once(tmp_path, same, run(same))
    assert len(calls) == 1
    meta = json.loads((tmp_path / "langbert.json").read_text())
    del meta["config"]["progress"], meta["config"]["seed"]  # a run made before these settings existed
    (tmp_path / "langbert.json").write_text(json.dumps(meta))
    assert bench.run_once(tmp_path, Settings(seed=7), run(Settings(seed=7)))["metrics"] == {"x": 1}
    meta["config"]["seed"] = 42
    (tmp_path / "langbert.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit, match=r"other settings \(seed\)"):
        bench.run_once(tmp_path, Settings(seed=1), run(Settings(seed=1)))
    assert len(calls) == 1


def _inference_script():
    path = Path(__file__).parents[1] / "benchmarks" / "inference.py"
    spec = importlib.util.spec_from_file_location("bench_inference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_server_ratio_cancels_a_steady_drift_of_the_host():
    inference = _inference_script()
    # The host speeds up by 10% a step; the server always runs at 80% of the offline speed of its moment.
    passes = [100.0 * 1.1 ** i for i in range(0, 9, 2)]  # at times 0, 2, 4, 6, 8
    rounds = [0.8 * 100.0 * 1.1 ** i for i in range(1, 9, 2)]  # at times 1, 3, 5, 7
    ratios = inference.bracketed_ratios(rounds, passes)
    assert ratios == pytest.approx([0.8] * 4, abs=0.005)
    assert [r / p for r, p in zip(rounds, passes[1:])] == pytest.approx([0.8 / 1.1] * 4)  # one neighbour: biased
    with pytest.raises(ValueError, match="4 rounds need 5 passes"):
        inference.bracketed_ratios(rounds, passes[1:])
