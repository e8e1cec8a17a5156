"""SetFit: pairs drawn as SetFit draws them, a logistic-regression head written into the classifier exactly."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from langbert import train
from langbert.errors import ConfigError
from langbert.training import setfit
from tests.conftest import SENTIMENT, tiny_train_config, write_jsonl


def test_pairs_one_positive_and_one_negative_per_text_and_iteration():
    labels = [0, 0, 0, 1, 1, 2]
    pairs = setfit.draw_pairs(labels, iterations=4, seed=0)
    assert len(pairs) == 2 * 4 * len(labels)
    assert all((labels[i] == labels[j]) == (s == 1.0) for i, j, s in pairs)
    assert all(i != j for i, j, s in pairs if s == 1.0 and labels.count(labels[i]) > 1)
    assert Counter(i for i, _, s in pairs if s == 1.0) == Counter({i: 4 for i in range(len(labels))})
    assert pairs == setfit.draw_pairs(labels, iterations=4, seed=0)
    with pytest.raises(ConfigError, match="two labels"):
        setfit.draw_pairs([1, 1], iterations=1, seed=0)


@pytest.mark.parametrize("classes", [2, 3])
def test_the_fitted_head_gives_the_logistic_regressions_probabilities(classes, tiny_model_dir):
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoTokenizer, DataCollatorWithPadding

    from langbert.tasks import create_task

    task = create_task("text-classification", {"pooling": "mean"})
    task.labels = [str(i) for i in range(classes)]
    model = task.build_model(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = ["很好", "很差", "快", "慢", "贵", "便宜", "喜欢", "讨厌", "质量好", "服务差"]
    features = [{**tokenizer(t), "labels": i % classes} for i, t in enumerate(texts)]
    pad = DataCollatorWithPadding(tokenizer)
    setfit.fit_head(model, features, pad, batch_size=4, seed=0)
    x = setfit.embed_all(model, features, pad, batch_size=4)
    reference = LogisticRegression(max_iter=2000, random_state=0).fit(x, [f["labels"] for f in features])
    with torch.no_grad():
        logits = model(**pad([{k: v for k, v in f.items() if k != "labels"} for f in features])).logits
    assert torch.softmax(logits, -1).numpy() == pytest.approx(reference.predict_proba(x), abs=1e-4)


def test_setfit_refuses_tasks_without_a_contrastive_recipe(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "r.jsonl", [{"text": t, "label": float(i)} for i, (t, _) in enumerate(SENTIMENT)])
    with pytest.raises(ConfigError, match="no contrastive recipe"):
        train(tiny_train_config(tmp_path, tiny_model_dir, data, task="regression", method="setfit"))


def test_setfit_from_the_cli_records_its_pairs_and_no_dev_selection(tmp_path, tiny_model_dir):
    from langbert.cli import main

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    out = tmp_path / "out"
    assert main(["train", "--model", tiny_model_dir, "--train", str(data), "--dev", str(data), "--output-dir", str(out),
                 "--method", "setfit", "--setfit-iterations", "3", "--epochs", "1", "--batch-size", "8",
                 "--pooling", "mean", "--learning-rate", "3e-4", "--max-length", "32", "--no-bf16",
                 "--no-progress"]) == 0
    meta = json.loads((out / "langbert.json").read_text())
    assert meta["setfit"]["pairs"] == 2 * 3 * len(SENTIMENT) and meta["steps"] == 6
    assert meta["best_checkpoint"] is None and "SetFit" in (out / "eval.md").read_text()
