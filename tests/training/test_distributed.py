"""torchrun with 2 CPU processes (gloo): the loss matches 1 process at equal global batch; only rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import SENTIMENT, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path, model_dir, data, nproc: int, batch: int) -> Path:
    out = tmp_path / f"out-{nproc}"
    args = ["train", "--model", model_dir, "--train", str(data), "--dev", str(data), "--output-dir", str(out),
            "--max-steps", "6", "--eval-steps", "3", "--batch-size", str(batch), "--learning-rate", "0.5",
            "--optimizer", "sgd",  # unlike Adam, SGD shows a wrongly scaled DDP gradient
            "--warmup-ratio", "0", "--dropout", "0", "--no-bf16", "--no-progress", "--no-group-by-length",
            "--logging-steps", "1", "--max-length", "16", "--seed", "0"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "langbert", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _losses(out: Path) -> list[float]:
    return [json.loads(l)["loss"] for l in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in l]


def test_two_processes_match_one_at_equal_global_batch(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT * 2])
    single = _run(tmp_path, tiny_model_dir, data, nproc=1, batch=8)
    double = _run(tmp_path, tiny_model_dir, data, nproc=2, batch=4)
    a, b = _losses(single), _losses(double)
    assert len(a) == len(b) >= 6
    assert max(abs(x - a[0]) for x in a) > 1e-2, f"SGD did not move the loss: {a}"
    for x, y in zip(a, b):
        assert abs(x - y) < 2e-3, (a, b)
    # rank 0 alone wrote the folder: one metrics line per step, not two
    assert len((double / "metrics.jsonl").read_text().splitlines()) == len((single / "metrics.jsonl").read_text().splitlines())
    assert json.loads((double / "langbert.json").read_text())["steps"] == 6


def test_two_processes_pretrain_on_one_time_budget_plan(tmp_path, tiny_model_dir):
    """Each rank times its own steps and reads its own clock; they must agree, or DDP hangs."""
    from tests.language.test_pretrain import _corpus

    out = tmp_path / "pt"
    args = ["pretrain", "--model", tiny_model_dir, "--corpus", str(_corpus(tmp_path)), "--output-dir", str(out),
            "--block-size", "16", "--batch-size", "4", "--max-steps", "8", "--max-minutes", "5", "--eval-steps", "4",
            "--workers", "1", "--no-bf16", "--no-progress", "--seed", "0"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "langbert",
               *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "langbert.json").read_text())
    assert meta["planned_steps"] == meta["steps"] == 8


def test_a_finished_command_closes_the_process_group_and_a_failed_one_leaves_it(tmp_path):
    """Left to interpreter shutdown, gloo's threads can abort the rank (pytorch/pytorch#190489); after a
    failure another rank may sit in a collective, where closing would hang, so it is left alone."""
    import torch.distributed as dist

    from langbert.cli import main

    def init():
        dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store-{init.n}", rank=0, world_size=1)
        init.n += 1

    init.n = 0
    init()
    assert main(["data", "info"]) == 0
    assert not dist.is_initialized()
    init()
    try:
        assert main(["train", "--train", str(tmp_path / "missing.csv"), "--output-dir", str(tmp_path / "o")]) == 2
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()
