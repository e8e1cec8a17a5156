"""Benchmark rows in ``benchmarks/results/<script>.json`` and the tables of ``benchmarks/RESULTS.md``.

RESULTS.md is regenerated from every results file, so each script refreshes only its own rows.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import os
import platform
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).parent
# LANGBERT_BENCH_RESULTS sends rows elsewhere: concurrent runs of one script, or a trial that must not overwrite
RESULTS = Path(os.environ.get("LANGBERT_BENCH_RESULTS") or HERE / "results")


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0]).relative_to(HERE.parent))
                                                         if Path(sys.argv[0]).is_absolute() else sys.argv[0],
                                                         *sys.argv[1:]])


def row(dataset: str, system: str, metric: str, value: float, wall_seconds: float | None, **extra) -> dict:
    return {"dataset": dataset, "system": system, "metric": metric, "value": value,
            "wall_seconds": None if wall_seconds is None else round(wall_seconds, 1),
            "command": command_line(), "date": _dt.date.today().isoformat(),
            "hardware": hardware(), **extra}


def hardware() -> str:
    """Cores and whether bf16 is native: it decides whether bf16 autocast is 2x faster or 3x slower."""
    from langbert.kernels.hardware import bf16_native

    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()}, {_cores()} CPU cores, bf16 {'native' if bf16_native() else 'not native'}"


# Settings that change nothing a row reports.
_INCIDENTAL = {"progress", "resume", "output_dir"}


def run_once(folder: Path, config, run) -> dict:
    """``run()`` unless ``folder`` already holds a finished langbert output of the same ``config`` (a
    dataclass with ``to_dict``); its ``langbert.json`` with the run's wall seconds added, so an interrupted
    benchmark resumes without redoing (or re-timing) a row. A folder left by other settings is an error,
    never silently reused as if it were this row (settings the folder's run predates are not compared)."""
    import time

    meta_path = Path(folder) / "langbert.json"
    if not meta_path.exists():
        start = time.perf_counter()
        run()
        meta = json.loads(meta_path.read_text())
        meta["wall_seconds"] = time.perf_counter() - start
        meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False))
    meta = json.loads(meta_path.read_text())
    wanted, stored = json.loads(json.dumps(config.to_dict())), meta.get("config", {})
    # Settings added to the config after the folder was made are not compared: the run predates them.
    differ = sorted(k for k in (wanted.keys() & stored.keys()) - _INCIDENTAL if wanted[k] != stored[k])
    if differ:
        raise SystemExit(f"{folder} holds a run with other settings ({', '.join(differ)}): delete it or pass "
                         "another --work folder")
    return meta


def pretraining_runs(path: str | Path) -> list[dict]:
    """The ``langbert.json`` of every masked-LM run a checkpoint comes from, its own first, following each
    run's ``source_model`` back to the first folder langbert did not pretrain (none for such a folder)."""
    from langbert.artifacts import lineage

    return list(itertools.takewhile(lambda meta: meta.get("stage") == "pretrain", lineage(path)))


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def write_rows(script: str, rows: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{script}.json"
    path.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    regenerate()
    return path


# What the README's summary shows: per row, a system and the baseline it is held to, from one results file.
# (results file, dataset, metric, system, baseline system or None, what the row says)
SUMMARY = [
    ("baselines", "zh-sentiment", "test_accuracy", "as-is", "tfidf-lr", "embedded English model as-is, full split"),
    ("adaptation", "zh-sentiment", "test_accuracy", "adapted-dictionary-pretrained", "tfidf-lr",
     "adapted + masked-LM, 4,000 reviews"),
    ("few_labels", "zh-sentiment@32", "test_accuracy", "cloze-words", "tfidf-lr",
     "16 reviews a label, PET with ten words a label, mean of 3 subsets"),
    ("few_labels", "zh-sentiment@32", "test_accuracy", "cloze-words-tapt", "tfidf-lr-self-training",
     "16 reviews a label, PET with ten words, encoder also masked-LM-trained on the training reviews (1,000 steps), "
     "against TF-IDF self-trained on them"),
    ("few_labels", "zh-sentiment@100", "test_accuracy", "setfit", "tfidf-lr", "100 reviews, SetFit, mean of 3 subsets"),
    ("few_labels", "zh-sentiment@500", "test_accuracy", "co-training", "tfidf-lr",
     "500 reviews + the unlabelled rest, co-training, mean of 3 subsets"),
    ("few_labels", "zh-sentiment@500", "test_accuracy", "cloze-words-co-training-tapt-2x", "tfidf-lr-self-training",
     "500 reviews + the unlabelled rest, encoder also masked-LM-trained on the training reviews (2,000 steps), "
     "PET with ten words, co-trained, mean of 3 subsets, against TF-IDF self-trained on them"),
    ("few_labels", "zh-sentiment@500", "test_accuracy", "cloze-words-co-training-tapt-2x-subsets-0-1-2-3-4",
     "tfidf-lr-subsets-0-1-2-3-4", "the same over five random subsets, TF-IDF + LR on the same five"),
    ("few_labels", "zh-sentiment@100", "test_accuracy", "setfit-tapt", "tfidf-lr",
     "100 reviews, SetFit, encoder also masked-LM-trained on the training reviews (1,000 steps), mean of 3 subsets"),
    ("few_labels", "zh-sentiment@2000", "test_accuracy", "cloze-words-co-training-tapt-2x", "tfidf-lr-self-training",
     "2,000 reviews + the unlabelled rest, PET with ten words co-trained, encoder also masked-LM-trained on the "
     "training reviews (2,000 steps), mean of 3 subsets, against TF-IDF self-trained on them"),
    ("few_labels", "zh-sentiment@full", "test_accuracy", "finetune", "tfidf-lr", "all 13,774 reviews, fine-tuned, 3 seeds"),
    ("few_labels", "zh-sentiment@full", "test_accuracy", "finetune-tapt-2x", "tfidf-lr",
     "all 13,774 reviews, fine-tuned, encoder also masked-LM-trained on the training reviews (2,000 steps), 3 seeds"),
    ("few_labels", "zh-sentiment@0", "test_accuracy", "cloze-zero-shot-words", None,
     "no labels, cloze zero-shot, ten words a label"),
    ("few_labels", "zh-sentiment@0", "test_accuracy", "cloze-zero-shot-words-calibrated-on-texts",
     "cloze-zero-shot-words", "no labels, the same calibrated on 1,000 unlabelled reviews"),
    ("few_labels", "zh-sentiment@0", "test_accuracy", "cloze-zero-shot-words-calibrated-on-texts-tapt", None,
     "no labels, the same from the encoder also masked-LM-trained on the training reviews"),
    ("sequence_labeling", "zh-ner", "entity_f1", "crf-baseline-lexicon", "crf-baseline",
     "NER, classical CRF with lexicon features"),
    ("sequence_labeling", "zh-ner", "entity_f1", "adapted-crf", "crf-baseline",
     "NER, CRF head on the CPU-pretrained encoder, layer-wise decay 0.9, mean of 2 seeds"),
    ("sequence_labeling", "zh-ner", "entity_f1", "adapted-crf-llrd-0.9-ngrams", "crf-baseline",
     "NER, the same with hashed n-gram scores beside the encoder, mean of 2 seeds"),
    ("sequence_labeling", "zh-ner", "entity_f1", "adapted-crf-lexicon-llrd-0.9-ngrams-rerun", "crf-baseline-lexicon",
     "NER, the same with lexicon features, mean of 3 seeds"),
    ("sequence_labeling", "zh-ner", "entity_f1", "adapted-crf-gpu-encoder", "crf-baseline",
     "NER, CRF head, no lexicon or n-grams, one seed"),
    ("sequence_labeling", "zh-ner@100", "entity_f1", "adapted-recipe", "crf-baseline-lexicon",
     "NER, 100 labelled sentences, the packaged recipe against the classical CRF with its lexicon, mean of 3 subsets"),
    ("sequence_labeling", "zh-ner@500", "entity_f1", "adapted-recipe", "crf-baseline-lexicon",
     "NER, the same with 500 labelled sentences"),
    ("sequence_labeling", "zh-ner@2000", "entity_f1", "adapted-recipe", "crf-baseline-lexicon",
     "NER, the same with 2,000 labelled sentences"),
    ("sequence_labeling", "zh-ner@100", "entity_f1", "adapted-recipe-self-training", "crf-baseline-lexicon",
     "NER, 100 labelled sentences + the split's other sentences untagged: the packaged recipe, then one round of "
     "self-training, against the classical CRF with its lexicon (which self-training the same way lowers), mean of "
     "3 subsets"),
    ("sequence_labeling", "zh-ner@500", "entity_f1", "adapted-recipe-self-training", "crf-baseline-lexicon",
     "NER, the same with 500 labelled sentences"),
    ("sequence_labeling", "zh-ner@500", "entity_f1", "adapted-recipe-self-training-labelled-shares-encoder-3",
     "adapted-recipe-encoder-3", "NER, 500 labelled sentences + the rest untagged, on another run of the encoder's "
     "recipe: self-training keeping sentences with and without names in the labelled sentences' proportions "
     "(--pseudo-label-shares labelled), against the packaged recipe alone, mean of 3 subsets"),
    ("sequence_labeling", "zh-cws", "word_f1", "crf-baseline-lexicon", "crf-baseline",
     "word segmentation, classical CRF with lexicon features"),
    ("sequence_labeling", "zh-cws", "word_f1", "adapted-crf", "crf-baseline",
     "word segmentation, CRF head on the CPU-pretrained encoder, mean of 2 seeds"),
    ("sequence_labeling", "zh-cws", "word_f1", "adapted-crf-ngrams", "crf-baseline",
     "word segmentation, the same with hashed n-gram scores beside the encoder, mean of 2 seeds"),
    ("sequence_labeling", "zh-cws", "word_f1", "adapted-crf-lexicon-ngrams-rerun", "crf-baseline-lexicon",
     "word segmentation, the same with lexicon features, mean of 2 seeds"),
    ("sequence_labeling", "zh-cws", "word_f1", "adapted-crf-gpu-encoder", "crf-baseline",
     "word segmentation, CRF head, no lexicon or n-grams, one seed"),
    ("sequence_labeling", "zh-cws@100", "word_f1", "adapted-recipe-lexicon-lr-100-dropout-0.3", "crf-baseline-lexicon",
     "word segmentation, 100 labelled sentences, the few-label recipe (zh-cws-few-labels) against the classical "
     "CRF with its lexicon, mean of 3 subsets"),
    ("sequence_labeling", "zh-cws@100", "word_f1", "adapted-recipe", "crf-baseline-lexicon",
     "word segmentation, the same with the full-data recipe (zh-cws)"),
    ("sequence_labeling", "zh-cws@500", "word_f1", "adapted-recipe-lexicon-lr-100-dropout-0.3", "crf-baseline-lexicon",
     "word segmentation, the few-label recipe with 500 labelled sentences"),
    ("sequence_labeling", "zh-cws@2000", "word_f1", "adapted-recipe-lexicon-lr-100-dropout-0.3", "crf-baseline-lexicon",
     "word segmentation, the few-label recipe with 2,000 labelled sentences"),
    ("sequence_labeling", "zh-cws@100", "word_f1", "adapted-recipe-lexicon-lr-100-dropout-0.3-self-training",
     "crf-baseline-lexicon-self-training",
     "word segmentation, 100 labelled sentences + the split's other sentences untagged: the few-label recipe, then "
     "one round of self-training, against the classical CRF with its lexicon self-trained the same way, mean of 3 "
     "subsets"),
    ("sequence_labeling", "zh-cws@500", "word_f1", "adapted-recipe-lexicon-lr-100-dropout-0.3-self-training",
     "crf-baseline-lexicon-self-training", "word segmentation, the same with 500 labelled sentences"),
    ("sequence_labeling", "zh-cws@2000", "word_f1", "adapted-recipe-lexicon-lr-100-dropout-0.3-self-training",
     "crf-baseline-lexicon-self-training", "word segmentation, the same with 2,000 labelled sentences"),
    ("question_answering", "zh-ner-first-entity-qa", "test_f1", "adapted", "as-is", "extractive QA check"),
    ("peft", "zh-sentiment", "test_accuracy", "lora", "full", "LoRA (1.4% of the weights, its defaults) vs full fine-tuning"),
    ("loading_and_script", "zh-sentiment-traditional", "test_accuracy", "predictor", "predictor-no-conversion",
     "Traditional test text, tw2sp conversion in the tokenizer"),
    ("loading_and_script", "zh-sentiment", "test_accuracy", "hf-pipeline", "predictor",
     "the same folder through transformers.pipeline"),
    ("throughput", "zh-sentiment", "real_tokens_per_s", "langbert", "hf-trainer-best", "training tokens/s"),
    ("inference", "zh-sentiment", "sentences_per_s", "langbert-torch-bf16", "hf-pipeline", "batch prediction"),
]
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def _load(name: str) -> list[dict]:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


def _value(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _compute(r: dict) -> str:
    """Where a row's numbers came from: every row is fine-tuned on its ``hardware``; an encoder pretrained
    on other hardware is named."""
    where = r.get("hardware", "")
    if r.get("encoder_hardware"):
        return f"{where}; encoder pretrained on {r['encoder_hardware']}"
    return where


def _table(name: str, rows: list[dict]) -> list[str]:
    commands = list(dict.fromkeys(r.get("command", "") for r in rows))
    many = len(commands) > 1
    lines = ["| dataset | system | metric | value | wall s | compute | date |" + (" command |" if many else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if many else "")]
    for r in rows:
        wall = "" if r.get("wall_seconds") is None else f"{r['wall_seconds']:.0f}"
        value = _value(r["value"])
        if r.get("std") is not None and r.get("seeds"):  # a mean over seeds: its spread and count beside it
            value += f" ± {r['std']:.4f} ({len(r['seeds'])} seeds)"
        cells = [r["dataset"], r["system"], r["metric"], value, wall, _compute(r), r.get("date", "")]
        if many:
            cells.append(f"[{commands.index(r.get('command', '')) + 1}]")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if many:
        lines += [f"[{i}] `{c}`" + "  " for i, c in enumerate(commands, 1)]
    else:
        lines.append(f"Command: `{commands[0]}`")
    return lines


def summary() -> list[str]:
    lines = ["| what | system | score | baseline | baseline score | compute |", "|---|---|---|---|---|---|"]
    for name, dataset, metric, system, baseline, what in SUMMARY:
        rows = {(r["dataset"], r["system"], r["metric"]): r for r in _load(name)}
        found = rows.get((dataset, system, metric))
        if found is None:
            continue
        base = rows.get((dataset, baseline, metric)) if baseline else None
        lines.append(f"| {what} (`{dataset}`, {metric}) | {system} | {_value(found['value'])} | {baseline or '-'} | "
                     f"{_value(base['value']) if base else '-'} | {'GPU-pretrained encoder' if found.get('encoder_hardware') else 'CPU'} |")
    return lines


def regenerate() -> Path:
    lines = ["# Benchmark results", "",
             "Generated by `benchmarks/_results.py` from `benchmarks/results/*.json`; do not edit by hand.",
             "Each table's command reproduces its rows; the paragraph under it says how they were measured and "
             "what they do not show. Accuracies and F1 are fractions.", ""]
    for path in sorted(RESULTS.glob("*.json")):
        lines += [f"## {path.stem}", "", *_table(path.stem, json.loads(path.read_text(encoding="utf-8")))]
        notes = HERE / f"{path.stem}.notes.md"
        if notes.exists():
            lines += ["", notes.read_text(encoding="utf-8").strip()]
        lines.append("")
    out = RESULTS.parent / "RESULTS.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    _write_readme_summary()
    return out


def _write_readme_summary() -> None:
    readme = HERE.parent / "README.md"
    if RESULTS != HERE / "results" or not readme.exists():
        return  # rows sent elsewhere are not the project's results
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    block = "\n".join(["", *summary(), ""])
    readme.write_text(head + README_START + block + README_END + tail, encoding="utf-8")


if __name__ == "__main__":
    print(regenerate())
