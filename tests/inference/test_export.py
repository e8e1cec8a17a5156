"""ONNX export: fp32 logits match torch, int8 agrees on labels, Predictor loads either format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from langbert import Predictor, train
from langbert.cli import main
from langbert.inference.export import export_onnx
from tests.conftest import SENTIMENT, tiny_train_config, train_sentiment

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, tiny_model_dir):
    return train_sentiment(tmp_path_factory.mktemp("export"), tiny_model_dir)


def test_fp32_parity_and_predictor_loads_onnx(classifier, tmp_path):
    texts = [t for t, _ in SENTIMENT]
    parity = export_onnx(classifier, tmp_path / "onnx", texts=texts, tolerance=1e-4)
    assert parity.passed and parity.max_abs_diff < 1e-4 and parity.label_agreement == 1.0
    torch_preds = Predictor.load(classifier).predict(texts)
    onnx = Predictor.load(tmp_path / "onnx")
    onnx_preds = onnx.predict(texts)
    assert [p["label"] for p in onnx_preds] == [p["label"] for p in torch_preds]
    for a, b in zip(onnx_preds, torch_preds):
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)
    assert json.loads((tmp_path / "onnx" / "langbert.json").read_text())["format"]["name"] == "onnx"
    assert not list((tmp_path / "onnx").glob("*.bin")) and not list((tmp_path / "onnx").glob("*.pt"))


def test_int8_agrees_on_labels_and_is_smaller(classifier, tmp_path, capsys, caplog):
    import logging

    with caplog.at_level(logging.INFO):
        assert main(["export", str(classifier), "--int8", "--out", str(tmp_path / "int8")]) == 0
    assert "Quantization parameters" not in caplog.text  # one line per float weight, before the verdict
    assert "label agreement" in capsys.readouterr().out
    meta = json.loads((tmp_path / "int8" / "langbert.json").read_text())
    assert meta["format"]["int8"] and meta["format"]["parity"]["label_agreement"] >= 0.95
    preds = Predictor.load(tmp_path / "int8").predict([t for t, _ in SENTIMENT])
    assert np.mean([p["label"] == l for p, (_, l) in zip(preds, SENTIMENT)]) >= 0.75


def test_token_classification_with_crf_exports(tmp_path, tiny_model_dir):
    from tests.tasks.test_token_classification import NER, _rows

    out = train(tiny_train_config(tmp_path, tiny_model_dir, _rows(tmp_path), task="token-classification", crf=True,
                                  max_steps=10, eval_steps=10))
    parity = export_onnx(out, tmp_path / "onnx", texts=[t for t, _ in NER])
    assert parity.passed and parity.label_agreement == 1.0
    texts = [t for t, _ in NER]
    assert Predictor.load(tmp_path / "onnx").predict(texts) == Predictor.load(out).predict(texts)


def test_parity_runs_on_the_users_texts_and_fails_loudly(classifier, tmp_path, capsys):
    texts = tmp_path / "parity.txt"
    texts.write_text("".join(t + "\n" for t, _ in SENTIMENT * 3), encoding="utf-8")
    assert main(["export", str(classifier), "--int8", "--parity-texts", str(texts), "--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "langbert.json").read_text())["format"]["parity"]["texts"] == 3 * len(SENTIMENT)
    # a tolerance no export can meet must fail with exit 1, the verdict recorded in the folder
    assert main(["export", str(classifier), "--parity-texts", str(texts), "--tolerance", "-1", "--out", str(tmp_path / "b")]) == 1
    assert "parity check failed" in capsys.readouterr().err
    assert json.loads((tmp_path / "b" / "langbert.json").read_text())["format"]["parity"]["passed"] is False


def test_question_answering_exports_both_score_tensors(tmp_path, tiny_model_dir):
    from tests.conftest import write_jsonl

    rows = [("我在哪", "我在北京", "北京"), ("他在哪", "他在上海", "上海"), ("什么发布", "2024年iphone在北京发布", "iphone")]
    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": q, "context": c, "answers": a} for q, c, a in rows])
    out = train(tiny_train_config(tmp_path, tiny_model_dir, path, task="question-answering", max_steps=10,
                                  eval_steps=10))
    parity = export_onnx(out, tmp_path / "onnx", tolerance=1e-4)
    assert parity.passed and parity.max_abs_diff < 1e-4 and parity.label_agreement == 1.0 and parity.texts == 3
    onnx = Predictor.load(tmp_path / "onnx")
    assert onnx.model.outputs == ["start_logits", "end_logits"]
    questions, contexts = [q for q, _, _ in rows], [c for _, c, _ in rows]
    for a, b in zip(onnx.predict(questions, contexts), Predictor.load(out).predict(questions, contexts)):
        assert (a["answer"], a["start"], a["end"]) == (b["answer"], b["start"], b["end"])
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_pair_classification_exports_with_pairs_in_its_parity_rows(tmp_path, tiny_model_dir):
    from tests.conftest import write_jsonl

    rows = [("很好", "很好", "same"), ("很好", "很差", "diff"), ("快", "快", "same"), ("快", "慢", "diff")]
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"a": a, "b": b, "label": l} for a, b, l in rows])
    out = train(tiny_train_config(tmp_path, tiny_model_dir, path, task="pair-classification", text_column="a",
                                  pair_column="b", max_steps=4, eval_steps=4))
    parity = export_onnx(out, tmp_path / "onnx", tolerance=1e-4)
    assert parity.passed and parity.texts == 8


@pytest.mark.parametrize("method", ["setfit", "cloze", "cloze-several-words"])
def test_few_label_models_export_with_parity(method, tmp_path, tiny_model_dir, tiny_mlm_dir):
    data = tmp_path / "t.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": l}, ensure_ascii=False) + "\n" for t, l in SENTIMENT),
                    encoding="utf-8")
    settings = ({"method": "setfit", "setfit_iterations": 2, "pooling": "mean"} if method == "setfit" else
                {"task": "cloze-classification", "pattern": "{text}很[MASK]",
                 "verbalizer": "pos=好,neg=差" if method == "cloze" else "pos=好|棒|快,neg=差|烂"})
    model = tiny_model_dir if method == "setfit" else tiny_mlm_dir
    out = train(tiny_train_config(tmp_path, model, data, max_steps=4, eval_steps=4, **settings))
    texts = [t for t, _ in SENTIMENT]
    parity = export_onnx(out, tmp_path / "onnx", texts=texts, tolerance=1e-4)
    assert parity.passed and parity.label_agreement == 1.0
    assert [p["label"] for p in Predictor.load(tmp_path / "onnx").predict(texts)] == \
        [p["label"] for p in Predictor.load(out).predict(texts)]
