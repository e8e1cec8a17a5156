"""One fine-tuned zh-sentiment folder, read three ways: Simplified and Traditional test text, with and
without the tokenizer's script conversion, and through ``transformers.pipeline`` beside ``Predictor``.

    python benchmarks/loading_and_script.py --model runs/demo/model [--limit N]

Rows (test split of zh-sentiment, accuracy as a fraction; ``unk_rate`` the share of [UNK] tokens):
- dataset ``zh-sentiment``: ``predictor`` (as the user sends Simplified text) and ``hf-pipeline`` (the same
  folder through ``transformers.pipeline("text-classification")`` after ``import langbert``), plus
  ``pipeline_agreement``, the share of texts where both give the same label;
- dataset ``zh-sentiment-traditional``: the test text converted with OpenCC ``s2twp`` (Taiwan Traditional,
  idioms included), read by ``predictor`` with the folder's own conversion (``tw2sp`` for the demo's model)
  and by ``predictor-no-conversion`` with the declaration removed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import row, write_rows  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a fine-tuned zh-sentiment folder")
    p.add_argument("--limit", type=int, default=None, help="first N test reviews (default: all)")
    args = p.parse_args()

    import opencc
    from transformers import pipeline

    from langbert import Predictor
    from langbert.data import get_builtin
    from langbert.data.coverage import coverage
    from langbert.data.script import conversion_of, converted_texts, declare_conversion

    test = get_builtin("zh-sentiment").load().splits["test"][: args.limit]
    texts, gold = [r.text for r in test], [r.label for r in test]
    traditional = [opencc.OpenCC("s2twp").convert(t) for t in texts]
    extra = {"model": args.model, "test_reviews": len(texts)}
    rows: list[dict] = []

    predictor = Predictor.load(args.model)
    conversion = conversion_of(predictor.tokenizer)

    def score(dataset: str, system: str, batch: list[str], **more) -> list[str]:
        start = time.perf_counter()
        labels = [p["label"] for p in predictor.predict(batch)]
        seconds = time.perf_counter() - start
        accuracy = sum(a == b for a, b in zip(labels, gold)) / len(gold)
        unk = coverage(predictor.tokenizer, converted_texts(batch, predictor.tokenizer))["unk_rate"]
        rows.append(row(dataset, system, "test_accuracy", round(accuracy, 4), seconds, **extra, **more))
        rows.append(row(dataset, system, "unk_rate", round(unk, 5), seconds, **extra, **more))
        print(dataset, system, f"accuracy {accuracy:.4f} [UNK] {unk:.2%}", flush=True)
        return labels

    simplified = score("zh-sentiment", "predictor", texts, script_conversion=conversion)
    score("zh-sentiment-traditional", "predictor", traditional, script_conversion=conversion)
    declare_conversion(predictor.tokenizer, None)
    score("zh-sentiment-traditional", "predictor-no-conversion", traditional, script_conversion=None)

    start = time.perf_counter()
    classify = pipeline("text-classification", model=args.model, device="cpu")
    piped = [r["label"] for r in classify(texts, batch_size=64, truncation=True,
                                          max_length=int(predictor.max_length))]
    seconds = time.perf_counter() - start
    accuracy = sum(a == b for a, b in zip(piped, gold)) / len(gold)
    agreement = sum(a == b for a, b in zip(piped, simplified)) / len(gold)
    rows.append(row("zh-sentiment", "hf-pipeline", "test_accuracy", round(accuracy, 4), seconds, **extra))
    rows.append(row("zh-sentiment", "hf-pipeline", "pipeline_agreement", round(agreement, 4), seconds, **extra))
    print("hf-pipeline", f"accuracy {accuracy:.4f}, same label as Predictor on {agreement:.2%}", flush=True)
    write_rows("loading_and_script", rows)


if __name__ == "__main__":
    main()
