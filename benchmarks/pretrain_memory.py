"""Peak memory of corpus preparation + a pass over the packed blocks, for 1x and 10x the built-in corpus.

Each size runs in a fresh process (peak RSS is per process). The 10x corpus is the built-in one written
ten times to a text file, so the only thing that grows is the data.

    python benchmarks/pretrain_memory.py [--scales 1 10] [--whole-word] [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import row, write_rows  # noqa: E402

CHILD = """
import json, resource, sys, time
from pathlib import Path
from transformers import AutoTokenizer
from langbert.language.packing import PackedBlocks, pack
corpus, tokenizer_dir, out, segmenter = sys.argv[1:5]
start = time.perf_counter()
lines = (l.strip() for l in open(corpus, encoding="utf-8") if l.strip())
meta = pack(lines, tokenizer_dir, Path(out), segmenter if segmenter != "none" else None, workers=2)
tok = AutoTokenizer.from_pretrained(tokenizer_dir)
blocks = PackedBlocks(Path(out), 128, tok.cls_token_id, tok.sep_token_id)
total = sum(int(blocks[i]["input_ids"].sum() > 0) for i in range(len(blocks)))
print(json.dumps({"tokens": meta["tokens"], "blocks": len(blocks), "seconds": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", nargs="+", type=int, default=[1, 10])
    p.add_argument("--whole-word", action="store_true", help="segment with jieba too (slower)")
    p.add_argument("--tokenizer", default="embedded",
                   help="tokenizer folder (e.g. an adapted checkpoint); default the embedded model's")
    p.add_argument("--work", default="benchmarks/work/pretrain_memory")
    args = p.parse_args()
    from langbert.config import resolve_model
    from langbert.data.corpus import zh_corpus

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    base = list(zh_corpus())
    rows = []
    for scale in args.scales:
        corpus = work / f"corpus-x{scale}.txt"
        with open(corpus, "w", encoding="utf-8") as f:
            for _ in range(scale):
                f.write("\n".join(base) + "\n")
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, str(corpus), resolve_model(args.tokenizer), str(work / f"x{scale}"),
                              "jieba" if args.whole_word else "none"], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        # The largest of every descendant waited for so far (the child, its pack workers, earlier sizes'):
        # at 400+ MB a worker, since the child itself is measured above.
        workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(scale, result, f"largest child so far {workers_peak:.0f} MB")
        rows.append(row(f"zh-corpus-x{scale}", "langbert-pack", "peak_rss_mb", round(result["peak_rss_mb"], 1),
                        time.perf_counter() - start, tokens=result["tokens"], blocks=result["blocks"],
                        largest_worker_mb=round(workers_peak, 1), tokenizer=args.tokenizer,
                        whole_word=args.whole_word))
        write_rows("pretrain_memory", rows)


if __name__ == "__main__":
    main()
