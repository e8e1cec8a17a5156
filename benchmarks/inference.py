"""Inference on the zh-sentiment test split: HF pipeline vs langbert Predictor (torch) vs ONNX Runtime
fp32 vs int8 (sentences/s in batches, p50/p99 latency of single sentences, accuracy), and a load test of
`langbert serve` with concurrent clients on loopback.

    python benchmarks/inference.py --model runs/demo/model [--latency-samples 200] [--clients 32]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import row, write_rows  # noqa: E402

from langbert import Predictor  # noqa: E402
from langbert.data import get_builtin  # noqa: E402
from langbert.inference.export import export_onnx  # noqa: E402
from langbert.kernels.hardware import bf16_native  # noqa: E402


def batch_labels(predictor: Predictor):
    """The offline batch path every langbert row and pass measures: 64 texts a batch, shortest first."""
    return lambda texts: [o["label"] for o in predictor.predict(texts, batch_size=64)]


def timed_batches(predict, texts: list[str]) -> tuple[list[str], float]:
    start = time.perf_counter()
    labels = predict(texts)
    return labels, len(texts) / (time.perf_counter() - start)


def latencies(predict_one, texts: list[str]) -> tuple[float, float]:
    times = []
    for t in texts:
        start = time.perf_counter()
        predict_one(t)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def load_test(model_dir: str, texts: list[str], clients: int, requests_per_client: int, bf16: bool = False,
              rounds: int = 1, between=None) -> tuple[list[dict], dict]:
    """The server under concurrent single-text /predict calls (``rounds`` times; ``between()`` is called
    before the first and after each, with the server idle), then the same clients calling /health: the
    second is the ceiling of HTTP + client alone on these cores (the client runs beside the server). The
    client is langbert.inference.loadtest's raw keep-alive sockets (httpx capped /health at ~150 req/s here)."""
    from urllib.error import URLError
    from urllib.request import urlopen

    from langbert.inference import loadtest

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "langbert", "serve", model_dir, "--port", str(port)]
                              + (["--bf16"] if bf16 else []),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if urlopen(f"http://127.0.0.1:{port}/health", timeout=1).status == 200:
                    break
            except (URLError, OSError):
                time.sleep(0.2)
        # A short warm-up (first batches pay one-off costs) that is not measured.
        loadtest.run("127.0.0.1", port, [{"texts": [t]} for t in texts[:clients]], clients, 1)
        served = []
        if between:
            between()
        for _ in range(rounds):
            served.append(loadtest.run("127.0.0.1", port, [{"texts": [t]} for t in texts], clients,
                                       requests_per_client).summary())
            if between:
                between()
        ceiling = loadtest.run("127.0.0.1", port, [None], clients, requests_per_client, path="/health")
        return served, ceiling.summary()
    finally:
        server.terminate()
        server.wait(timeout=30)


def bracketed_ratios(rounds: list[float], passes: list[float]) -> list[float]:
    """Each round's rate over the mean rate of the offline passes either side of it (``passes`` has one
    more entry than ``rounds``: before the first round, then after each)."""
    if len(passes) != len(rounds) + 1:
        raise ValueError(f"{len(rounds)} rounds need {len(rounds) + 1} passes around them, got {len(passes)}")
    return [r / ((before + after) / 2) for r, before, after in zip(rounds, passes, passes[1:])]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a langbert text-classification folder")
    p.add_argument("--latency-samples", type=int, default=200)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests-per-client", type=int, default=None,
                   help="default: enough for each round to send every test text once, the offline pass's texts "
                        "(a round over a part of the split measures other lengths: the first 960 texts average "
                        "65 characters against 76 for the split, and 32 x 30 requests ran ~10%% faster than 32 x 100)")
    p.add_argument("--work", default="benchmarks/work/inference")
    p.add_argument("--parity-texts", type=int, default=300, help="dev texts for the export parity checks")
    p.add_argument("--rounds", type=int, default=6,
                   help="load-test rounds, with an offline pass of the same predictor before the first and after "
                        "each: the server's fraction of offline throughput is the median over rounds of the round "
                        "over the mean of the passes either side of it (and, beside it, best round over best pass)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    test = get_builtin("zh-sentiment").load().splits["test"]
    texts, gold = [r.text for r in test], [r.label for r in test]
    single = texts[: args.latency_samples]
    if args.requests_per_client is None:
        args.requests_per_client = -(-len(texts) // args.clients)
    rows: list[dict] = []

    def emit(system: str, sps: float, p50: float, p99: float, labels: list[str], wall: float, **extra) -> None:
        acc = float(np.mean([a == b for a, b in zip(labels, gold)]))
        for metric, value in (("sentences_per_s", sps), ("p50_ms", p50), ("p99_ms", p99), ("test_accuracy", acc)):
            rows.append(row("zh-sentiment", system, metric, round(value, 4), wall, **extra))
        write_rows("inference", rows)
        print(system, f"{sps:.1f} sent/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, acc {acc:.4f}", flush=True)

    from transformers import pipeline

    start = time.perf_counter()
    # The model object, not the folder: a mean-pooled langbert head is not a class the Auto loaders know.
    # Padded: the pipeline runs HF's own forward, not langbert's unpadded encoder.
    loaded = Predictor.load(args.model, unpadded=False)
    pipe = pipeline("text-classification", model=loaded.model, tokenizer=loaded.tokenizer, device=-1)
    labels, sps = timed_batches(lambda t: [o["label"] for o in pipe(t, batch_size=32, truncation=True, max_length=128)], texts)
    p50, p99 = latencies(lambda t: pipe(t, truncation=True, max_length=128), single)
    emit("hf-pipeline", sps, p50, p99, labels, time.perf_counter() - start)

    work = Path(args.work)
    # (system, folder, bf16 autocast, unpadded encoder): bf16 is opt-in in langbert; it is measured where the
    # CPU runs it natively. The unpadded encoder is the default; the -padded row shows what it changes.
    variants = [("langbert-torch", args.model, False, True), ("langbert-onnx", str(work / "onnx"), False, False),
                ("langbert-onnx-int8", str(work / "onnx-int8"), False, False)]
    if bf16_native():
        variants[1:1] = [("langbert-torch-bf16", args.model, True, True),
                         ("langbert-torch-bf16-padded", args.model, True, False)]
    # Parity on dev texts (the test split stays for the accuracy rows).
    parity_texts = [r.text for r in get_builtin("zh-sentiment").load().splits["dev"][: args.parity_texts]]
    for folder, int8 in ((work / "onnx", False), (work / "onnx-int8", True)):
        # Exported afresh every run: a folder left by an earlier run may hold another model.
        parity = export_onnx(args.model, folder, int8=int8, texts=parity_texts)
        print(folder.name, "parity", parity, flush=True)
    for system, folder, bf16, unpadded in variants:
        start = time.perf_counter()
        predictor = Predictor.load(folder, bf16=bf16, unpadded=unpadded)
        labels, sps = timed_batches(batch_labels(predictor), texts)
        p50, p99 = latencies(lambda t: predictor.predict([t]), single)
        emit(system, sps, p50, p99, labels, time.perf_counter() - start, model=folder, bf16=bf16,
             unpadded=predictor.unpadded)

    best = max(variants, key=lambda v: next(r["value"] for r in rows if r["system"] == v[0] and r["metric"] == "sentences_per_s"))
    # What the server's model faces: no global sort, only micro-batches of `clients` texts in arrival
    # order. Offline, the server's predictor (its defaults) over such groups: the ceiling a 32-client
    # server can reach.
    as_served = Predictor.load(best[1], bf16=best[2])
    groups = [texts[i:i + args.clients] for i in range(0, len(texts), args.clients)]
    start = time.perf_counter()
    for group in groups:
        as_served.predict(group, batch_size=64)
    wall = time.perf_counter() - start
    rows.append(row("zh-sentiment", f"{best[0].removesuffix('-padded')}-groups-of-{args.clients}",
                    "sentences_per_s", round(len(texts) / wall, 4), wall, model=best[1], bf16=best[2],
                    unpadded=as_served.unpadded))
    print(f"offline in groups of {args.clients}: {len(texts) / wall:.1f} sent/s", flush=True)
    # The offline passes run the offline winner: the same predictor unless the padded variant won.
    predictor = as_served if as_served.unpadded == best[3] else Predictor.load(best[1], bf16=best[2],
                                                                                  unpadded=best[3])
    # This host's speed drifts by tens of percent over minutes: the server and the offline predictor
    # take turns, and each side's best is compared. The server runs its defaults (unpadded) whichever
    # offline variant won: a noisy offline winner must not change what is measured as the server.
    offline: list[float] = []

    def offline_pass() -> None:
        offline.append(timed_batches(batch_labels(predictor), texts)[1])

    served, ceiling = load_test(best[1], texts, args.clients, args.requests_per_client, bf16=best[2],
                                rounds=args.rounds, between=offline_pass)
    result = max(served, key=lambda r: r["requests_per_s"])
    extra = {"model": best[1], "bf16": best[2], "clients": args.clients,
             "requests": args.clients * args.requests_per_client, "rounds": args.rounds,
             "requests_per_s_rounds": [round(r["requests_per_s"], 1) for r in served],
             "offline_sentences_per_s_passes": [round(v, 1) for v in offline]}
    for metric in ("requests_per_s", "p99_ms"):
        rows.append(row("zh-sentiment", "langbert-serve", metric, round(result[metric], 4), result["wall"], **extra))
    rows.append(row("zh-sentiment", "langbert-serve", "errors", sum(r["errors"] for r in served),
                    sum(r["wall"] for r in served), **extra))
    rows.append(row("zh-sentiment", "langbert-serve", "fraction_of_offline",
                    round(result["requests_per_s"] / max(offline), 4), result["wall"], **extra))
    # Each round against the mean of the passes just before and after it: the two bracket the round in
    # time, so a drift of the host's speed across it cancels to first order (one neighbour alone carried
    # it in full: passes of one run climbed 308 -> 414 sentences/s while the rounds held steady). The
    # median over rounds is the measure; best-with-best, beside it, takes each side's outlier.
    bracketed = float(np.median(bracketed_ratios([r["requests_per_s"] for r in served], offline)))
    rows.append(row("zh-sentiment", "langbert-serve", "fraction_of_offline_bracketed_median", round(bracketed, 4),
                    sum(r["wall"] for r in served), **extra))
    print(f"serve rounds {extra['requests_per_s_rounds']} req/s, offline passes {extra['offline_sentences_per_s_passes']}"
          f" sent/s: best with best {result['requests_per_s'] / max(offline):.0%}, bracketed median {bracketed:.0%}",
          flush=True)
    rows.append(row("zh-sentiment", "http-ceiling", "requests_per_s", round(ceiling["requests_per_s"], 4),
                    ceiling["wall"], endpoint="GET /health", **extra))
    write_rows("inference", rows)
    print("serve", json.dumps(result), "GET /health", json.dumps(ceiling))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
