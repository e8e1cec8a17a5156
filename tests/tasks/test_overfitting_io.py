"""Per task: memorise a handful of rows, save, reload, and get the same predictions (spaCy's test_overfitting_IO)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from langbert import Predictor, train
from tests.conftest import SENTIMENT, served, tiny_train_config, write_jsonl


def _roundtrip(config, texts, pairs=None):
    out = train(config)
    first = Predictor.load(out).predict(texts, pairs)
    second = Predictor.load(out).predict(texts, pairs)
    assert first == second, "reloading the saved folder must give identical predictions"
    assert served(out, texts, pairs) == json.loads(json.dumps(first)), "the server must answer as Predictor does"
    return out, first


def test_text_classification_overfits_and_reloads(tmp_path, tiny_model_dir):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    out, preds = _roundtrip(tiny_train_config(tmp_path, tiny_model_dir, path), [t for t, _ in SENTIMENT])
    assert [p["label"] for p in preds] == [l for _, l in SENTIMENT]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-4 for p in preds)
    meta = json.loads((out / "langbert.json").read_text(encoding="utf-8"))
    assert meta["task"]["labels"] == ["neg", "pos"] and meta["metrics"]["dev"]["accuracy"] == 1.0
    assert (out / "eval.json").exists() and (out / "eval.md").exists() and (out / "confusion_dev.png").exists()
    assert (out / "model.safetensors").exists() and not (out / "training_args.bin").exists()
    assert (out / "metrics.jsonl").read_text().count("eval_accuracy") == 2
    assert (out / "training.png").stat().st_size > 5000  # loss and dev accuracy against the step


def test_pair_classification_overfits_and_reloads(tmp_path, tiny_model_dir):
    rows = [("我喜欢", "我喜欢", "same"), ("我讨厌", "我讨厌", "same"), ("很好", "很好", "same"), ("快", "快", "same"),
            ("我喜欢", "我讨厌", "diff"), ("很好", "很差", "diff"), ("快", "慢", "diff"), ("便宜", "贵", "diff")]
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"a": a, "b": b, "label": l} for a, b, l in rows])
    config = tiny_train_config(tmp_path, tiny_model_dir, path, task="pair-classification", text_column="a",
                               pair_column="b", max_steps=100, eval_steps=50)
    _, preds = _roundtrip(config, [a for a, _, _ in rows], [b for _, b, _ in rows])
    assert [p["label"] for p in preds] == [l for _, _, l in rows]


def test_multi_label_overfits_and_reloads(tmp_path, tiny_model_dir):
    rows = [("质量好", ["quality"]), ("服务好", ["service"]), ("质量好服务好", ["quality", "service"]),
            ("便宜", ["price"]), ("便宜质量好", ["price", "quality"]), ("我你他", [])]
    path = write_jsonl(tmp_path / "ml.jsonl", [{"text": t, "label": l} for t, l in rows])
    config = tiny_train_config(tmp_path, tiny_model_dir, path, task="multi-label-classification", max_steps=200,
                               eval_steps=100, dropout=0.0)
    _, preds = _roundtrip(config, [t for t, _ in rows])
    assert [sorted(p["labels"]) for p in preds] == [sorted(l) for _, l in rows]


def test_regression_overfits_and_reloads(tmp_path, tiny_model_dir):
    rows = [("很好很喜欢", 5.0), ("好", 4.0), ("还的", 3.0), ("不好", 2.0), ("很差很失望", 1.0), ("很好", 4.5)]
    path = write_jsonl(tmp_path / "reg.jsonl", [{"text": t, "label": y} for t, y in rows])
    config = tiny_train_config(tmp_path, tiny_model_dir, path, task="regression", max_steps=150, eval_steps=75,
                               learning_rate=3e-3)
    out, preds = _roundtrip(config, [t for t, _ in rows])
    predicted = np.array([p["score"] for p in preds])
    assert np.corrcoef(predicted, [y for _, y in rows])[0, 1] > 0.95
    assert (out / "scatter_dev.png").exists()


def test_question_answering_overfits_and_reloads(tmp_path, tiny_model_dir):
    long_context = "我的服务很差" * 3 + "他的质量很好" + "你的服务很慢" * 3  # several windows at max_length 32
    rows = [("我在哪", "我在北京", "北京"), ("他在哪", "他在上海", "上海"), ("你在哪", "你在中国", "中国"),
            ("什么发布", "2024年iphone在北京发布", "iphone"), ("谁很好", "你很好他很差", "你"),
            ("谁的质量好", long_context, "他"), ("我在哪", "他很好", None)]
    records = [{"question": q, "context": c,
                "answers": {"text": [a] if a else [], "answer_start": [c.index(a)] if a else []}} for q, c, a in rows]
    path = write_jsonl(tmp_path / "qa.jsonl", records)
    config = tiny_train_config(tmp_path, tiny_model_dir, path, task="question-answering", max_steps=200,
                               eval_steps=100, dropout=0.0)
    out, preds = _roundtrip(config, [q for q, _, _ in rows], [c for _, c, _ in rows])
    assert [p["answer"] for p in preds] == [a or "" for _, _, a in rows]
    padded = Predictor.load(out, unpadded=False).predict([q for q, _, _ in rows], [c for _, c, _ in rows])
    assert [(p["answer"], p["start"]) for p in padded] == [(p["answer"], p["start"]) for p in preds]
    assert [p["score"] for p in padded] == pytest.approx([p["score"] for p in preds], abs=1e-4)
    for (_, context, answer), p in zip(rows, preds):
        if answer:
            assert context[p["start"]:p["end"]] == answer and 0 < p["score"] <= 1
    meta = json.loads((out / "langbert.json").read_text(encoding="utf-8"))
    assert meta["task"]["unanswerable"] is True
    assert meta["metrics"]["dev"]["exact_match"] == 1.0 and meta["metrics"]["dev"]["unanswerable_accuracy"] == 1.0
    assert meta["best_dev_metric"] == {"f1": 1.0}  # the checkpoint was chosen on answers, not windows


@pytest.mark.parametrize("scheduler", ["cosine", "constant"])
def test_schedulers_and_accumulation_learn(tmp_path, tiny_model_dir, scheduler):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    config = tiny_train_config(tmp_path, tiny_model_dir, path, scheduler=scheduler, dropout=0.0,
                               gradient_accumulation_steps=2, max_steps=40, eval_steps=20)
    out = train(config)
    losses = [json.loads(l)["loss"] for l in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in l]
    assert losses[-1] < losses[0] * 0.5, f"{scheduler} did not learn: {losses}"


def test_sgd_with_momentum_and_weight_decay_reach_the_optimizer(tmp_path, tiny_model_dir):
    from transformers import TrainerCallback

    seen = {}

    class Spy(TrainerCallback):
        def on_step_end(self, args, state, control, optimizer=None, **kwargs):
            seen.setdefault("optimizer", optimizer)

    path = write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    config = tiny_train_config(tmp_path, tiny_model_dir, path, optimizer="sgd", momentum=0.8, weight_decay=0.01,
                               learning_rate=0.1, max_steps=2, eval_steps=2)
    train(config, callbacks=[Spy()])
    optimizer = getattr(seen["optimizer"], "optimizer", seen["optimizer"])
    assert type(optimizer).__name__ == "SGD"
    groups = optimizer.param_groups
    assert all(g["momentum"] == 0.8 for g in groups)
    # decay on weights, never on biases and LayerNorm
    assert sorted({g["weight_decay"] for g in groups}) == [0.0, 0.01]


def test_embeddings_get_their_own_learning_rate(tmp_path, tiny_model_dir):
    from transformers import TrainerCallback

    seen = {}

    class Spy(TrainerCallback):
        def on_step_end(self, args, state, control, optimizer=None, model=None, **kwargs):
            seen.setdefault("optimizer", getattr(optimizer, "optimizer", optimizer))
            seen.setdefault("embeddings", model.get_input_embeddings().weight)

    path = write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    config = tiny_train_config(tmp_path, tiny_model_dir, path, embedding_lr_scale=10.0, scheduler="constant",
                               learning_rate=1e-3, max_steps=2, eval_steps=2)
    train(config, callbacks=[Spy()])
    groups = seen["optimizer"].param_groups
    (embedding_group,) = [g for g in groups if any(p is seen["embeddings"] for p in g["params"])]
    assert len(embedding_group["params"]) == 1 and embedding_group["lr"] == pytest.approx(1e-2)
    assert all(g["lr"] == pytest.approx(1e-3) for g in groups if g is not embedding_group)


def test_setfit_overfits_and_reloads(tmp_path, tiny_model_dir):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    config = tiny_train_config(tmp_path, tiny_model_dir, path, method="setfit", setfit_iterations=5, max_steps=-1,
                               epochs=3, pooling="mean", learning_rate=3e-4)
    _, preds = _roundtrip(config, [t for t, _ in SENTIMENT])
    assert [p["label"] for p in preds] == [l for _, l in SENTIMENT]


def test_cloze_overfits_and_reloads(tmp_path, tiny_mlm_dir):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    config = tiny_train_config(tmp_path, tiny_mlm_dir, path, task="cloze-classification", pattern="{text}很[MASK]",
                               verbalizer="pos=好,neg=差")
    out, preds = _roundtrip(config, [t for t, _ in SENTIMENT])
    assert [p["label"] for p in preds] == [l for _, l in SENTIMENT]
    spec = json.loads((out / "config.json").read_text())["langbert_cloze"]
    assert len(spec["prior"]) == 2 and len(spec["label_token_ids"]) == 2
