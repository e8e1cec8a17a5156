"""A run SIGKILLed mid-way resumes from its last complete checkpoint and ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from langbert.training import train
from tests.conftest import SENTIMENT, tiny_train_config, write_jsonl

ROOT = Path(__file__).resolve().parents[2]

KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from transformers import TrainerCallback
    from langbert.training import train
    from tests.conftest import tiny_train_config

    class KillAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 25:  # after checkpoint-20 is complete, before checkpoint-30
                os.kill(os.getpid(), signal.SIGKILL)

    tmp, model, data, ema = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])
    train(tiny_train_config(tmp, model, data, max_steps=40, eval_steps=10, batch_size=4, ema_decay=ema,
                            metric="loss"),
          callbacks=[KillAt()])
""")


def _final_weights(out: Path) -> dict:
    return load_file(str(out / "model.safetensors"))


@pytest.mark.parametrize("ema", [0.0, 0.8], ids=["raw", "weight-average"])
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, tiny_model_dir, ema):
    """With a weight average, the average resumes too: a fresh one would give other final weights."""
    data = write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])

    # dev loss keeps falling, so the checkpoint kept is the last, trained after the resume
    reference = train(tiny_train_config(tmp_path / "ref", tiny_model_dir, data, max_steps=40, eval_steps=10, batch_size=4,
                                        ema_decay=ema, metric="loss"))

    killed_dir = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, str(killed_dir), tiny_model_dir, str(data), str(ema)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    ckpts = killed_dir / "out" / "checkpoints"
    assert (ckpts / "checkpoint-20" / "COMPLETE").exists()
    assert not (killed_dir / "out" / "langbert.json").exists()
    # A checkpoint half-written at the moment of a kill must be ignored, not resumed from.
    (ckpts / "checkpoint-30").mkdir()
    (ckpts / "checkpoint-30" / "model.safetensors").write_bytes(b"partial")

    class FirstStep(TrainerCallback):
        first = None

        def on_step_end(self, args, state, control, **kwargs):
            FirstStep.first = FirstStep.first or state.global_step

    resumed = train(tiny_train_config(killed_dir, tiny_model_dir, data, max_steps=40, eval_steps=10, batch_size=4,
                                      resume=True, ema_decay=ema, metric="loss"), callbacks=[FirstStep()])
    assert FirstStep.first == 21, "did not continue from checkpoint-20 (a restart from scratch would also match)"
    assert not (ckpts / "checkpoint-30" / "model.safetensors").read_bytes() == b"partial"

    ref_w, res_w = _final_weights(reference), _final_weights(resumed)
    assert ref_w.keys() == res_w.keys()
    for name in ref_w:
        torch.testing.assert_close(res_w[name], ref_w[name], rtol=0, atol=1e-6, msg=name)
    ref_meta = json.loads((reference / "langbert.json").read_text())
    res_meta = json.loads((resumed / "langbert.json").read_text())
    assert res_meta["metrics"] == ref_meta["metrics"] and res_meta["steps"] == 40
    steps = [json.loads(l)["step"] for l in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps), "lines logged after the checkpoint were not dropped on resume"
