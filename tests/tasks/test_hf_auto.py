"""A langbert folder read through transformers' Auto classes and pipelines answers as Predictor does."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from langbert import Predictor, train
from langbert.tasks.crf import CRF
from tests.conftest import SENTIMENT, tiny_train_config, transformers_warnings, write_jsonl

TEXTS = [t for t, _ in SENTIMENT] + ["很好", "北京的服务很慢很差很失望不会再买"]


def _pipeline(task: str, folder):
    from transformers import pipeline

    return pipeline(task, model=str(folder), device="cpu")


def _train(tmp_path, model_dir, records, **overrides):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_jsonl(tmp_path / "train.jsonl", records)
    return train(tiny_train_config(tmp_path, model_dir, path, max_steps=20, eval_steps=20, **overrides))


def _pipeline_scores(results) -> list[dict[str, float]]:
    return [{r["label"]: r["score"] for r in result} for result in results]


def test_text_classification_through_the_pipeline_is_predictor(tmp_path, sentence_encoder_dir):
    from transformers import AutoModelForSequenceClassification

    out = _train(tmp_path, sentence_encoder_dir, [{"text": t, "label": l} for t, l in SENTIMENT])
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "langbert-bert" and config["langbert_pooling"] == "mean"
    with transformers_warnings() as warnings:
        model = AutoModelForSequenceClassification.from_pretrained(out)
    # HF's own head would have loaded with a newly initialised pooler and said so in a load report.
    assert type(model).__name__ == "BertMeanPoolingForSequenceClassification" and not warnings
    expected = [p["probabilities"] for p in Predictor.load(out).predict(TEXTS)]
    got = _pipeline_scores(_pipeline("text-classification", out)(TEXTS, top_k=None))
    for e, g in zip(expected, got):
        assert g.keys() == e.keys() and all(abs(g[k] - e[k]) < 1e-5 for k in e)


def test_pairs_multi_label_and_regression_through_the_pipeline(tmp_path, sentence_encoder_dir):
    pairs = [("很好", "很好", "same"), ("很差", "很差", "same"), ("很好", "很差", "diff"), ("快", "慢", "diff")]
    out = _train(tmp_path / "pair", sentence_encoder_dir, [{"a": a, "b": b, "label": l} for a, b, l in pairs],
                 task="pair-classification", text_column="a", pair_column="b")
    expected = [p["probabilities"] for p in Predictor.load(out).predict([a for a, _, _ in pairs], [b for _, b, _ in pairs])]
    got = _pipeline_scores(_pipeline("text-classification", out)(
        [{"text": a, "text_pair": b} for a, b, _ in pairs], top_k=None))
    assert all(abs(g[k] - e[k]) < 1e-5 for e, g in zip(expected, got) for k in e)

    labels = [("质量好", ["quality"]), ("服务好", ["service"]), ("质量好服务好", ["quality", "service"]), ("我", [])]
    out = _train(tmp_path / "ml", sentence_encoder_dir, [{"text": t, "label": l} for t, l in labels],
                 task="multi-label-classification")
    expected = [p["probabilities"] for p in Predictor.load(out).predict(TEXTS)]
    got = _pipeline_scores(_pipeline("text-classification", out)(TEXTS, top_k=None))  # sigmoid per label
    assert all(abs(g[k] - e[k]) < 1e-5 for e, g in zip(expected, got) for k in e)

    values = [("很好很喜欢", 5.0), ("好", 4.0), ("不好", 2.0), ("很差很失望", 1.0)]
    out = _train(tmp_path / "reg", sentence_encoder_dir, [{"text": t, "label": y} for t, y in values],
                 task="regression")
    expected = [p["score"] for p in Predictor.load(out).predict(TEXTS)]
    got = [r["score"] for r in _pipeline("text-classification", out)(TEXTS)]
    np.testing.assert_allclose(got, expected, atol=1e-5)


NER = [("我在北京发布了", [(2, 4, "LOC")]), ("他喜欢上海", [(3, 5, "LOC")]), ("你在上海", [(2, 4, "LOC")]),
       ("中国人民很好", [(0, 2, "LOC")])]


def _token_tags(predictor, texts):
    """Predictor's tag per character (the tiny vocabulary tokenizes these texts one character a token)."""
    from langbert.data.spans import spans_to_tags

    spans = [[(s["start"], s["end"], s["type"]) for s in p["spans"]] for p in predictor.predict(texts)]
    return [spans_to_tags(len(t), s, predictor.task.scheme) for t, s in zip(texts, spans)]


def test_a_crf_model_through_the_pipeline_decodes_as_the_crf(tmp_path, tiny_model_dir):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    out = _train(tmp_path, tiny_model_dir, [{"text": t, "entities": [list(s) for s in e]} for t, e in NER],
                 task="token-classification", crf=True, tag_scheme="BIO")
    assert json.loads((out / "config.json").read_text())["langbert_crf"] == {"scheme": "BIO"}
    _strong_transitions(out)
    model = AutoModelForTokenClassification.from_pretrained(out)
    texts = [t for t, _ in NER] + ["北京很好上海", "我喜欢你", "上海"]
    expected = _token_tags(Predictor.load(out), texts)
    with torch.no_grad():  # the emissions alone would say otherwise: the transitions decide
        plain = AutoModelForTokenClassification.from_pretrained(out, config=_without_crf(out))
        encoded = [AutoTokenizer.from_pretrained(out)(t, return_tensors="pt") for t in texts]
        argmax = [[plain.config.id2label[i] for i in plain(**e).logits[0, 1:-1].argmax(-1).tolist()] for e in encoded]
    assert argmax != expected and model.crf is not None
    tags = [[r["entity"] for r in result]
            for result in _pipeline("token-classification", out)(texts, aggregation_strategy="none",
                                                                 ignore_labels=[])]
    assert tags == expected


def _strong_transitions(folder) -> None:
    """Large random CRF transitions written into both files that hold them."""
    from safetensors.torch import load_file, save_file

    torch.manual_seed(1)
    transitions = torch.randn(3, 3) * 4
    weights = load_file(str(folder / "model.safetensors"))
    weights["crf.transitions"] = transitions
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    crf = load_file(str(folder / "crf.safetensors"))
    save_file({**crf, "transitions": transitions}, str(folder / "crf.safetensors"))


def _without_crf(folder):
    from transformers import BertConfig

    config = json.loads((folder / "config.json").read_text())
    config.pop("langbert_crf")
    return BertConfig(**{k: v for k, v in config.items() if k != "model_type"})


def test_max_marginals_peak_on_the_viterbi_path():
    torch.manual_seed(0)
    tags = ["O", "B-X", "I-X", "E-X", "S-X"]
    crf = CRF(tags, "BIOES")
    with torch.no_grad():
        for p in (crf.transitions, crf.start, crf.end):
            p.normal_()
    emissions = torch.randn(3, 6, len(tags))
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2, [True] + [False] * 5])
    scores = crf.max_marginals(emissions, mask)
    for b, path in enumerate(crf.viterbi(emissions, mask)):
        n = len(path)
        assert scores[b, :n].argmax(-1).tolist() == path
        best = scores[b, :n].max(-1).values  # every position's best is the one best path's score
        torch.testing.assert_close(best, best[0].expand(n), rtol=1e-5, atol=1e-4)


def test_a_lexicon_model_through_the_auto_classes_refuses_to_answer_without_it(tmp_path, tiny_model_dir):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    words = tmp_path / "words.tsv"
    words.write_text("北京\t10\n上海\t8\n", encoding="utf-8")
    out = _train(tmp_path, tiny_model_dir, [{"text": t, "entities": [list(s) for s in e]} for t, e in NER],
                 task="token-classification", lexicon=[str(words)])
    model = AutoModelForTokenClassification.from_pretrained(out)
    with pytest.raises(ValueError, match="lexicon features .* langbert.Predictor"):
        model(**AutoTokenizer.from_pretrained(out)(["北京"], return_tensors="pt"))


def test_a_plain_head_keeps_the_encoders_model_type(tmp_path, tiny_model_dir):
    out = _train(tmp_path, tiny_model_dir, [{"text": t, "label": l} for t, l in SENTIMENT], pooling="cls")
    assert json.loads((out / "config.json").read_text())["model_type"] == "bert"


def test_without_langbert_transformers_refuses_the_folder_by_name(tmp_path, sentence_encoder_dir):
    out = _train(tmp_path, sentence_encoder_dir, [{"text": t, "label": l} for t, l in SENTIMENT])
    script = ("import sys; from transformers import AutoModelForSequenceClassification as A\n"
              f"try: A.from_pretrained({str(out)!r})\n"
              "except ValueError as e: print(e); sys.exit(3)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "langbert-bert" in done.stdout, done.stdout + done.stderr


def test_a_folder_saved_under_the_encoders_type_still_loads_with_its_head(tmp_path, sentence_encoder_dir):
    out = _train(tmp_path, sentence_encoder_dir, [{"text": t, "label": l} for t, l in SENTIMENT])
    expected = Predictor.load(out).predict(TEXTS)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    assert Predictor.load(out).predict(TEXTS) == expected


def test_a_softmax_tagger_and_a_qa_head_load_through_the_auto_classes_as_trained(tmp_path, tiny_model_dir):
    """Heads HF has keep the encoder's type: the Auto classes build the very model langbert trained."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    out = _train(tmp_path / "ner", tiny_model_dir, [{"text": t, "entities": [list(s) for s in e]} for t, e in NER],
                 task="token-classification")
    assert json.loads((out / "config.json").read_text())["model_type"] == "bert"
    texts = [t for t, _ in NER]
    tags = [[r["entity"] for r in result]
            for result in _pipeline("token-classification", out)(texts, aggregation_strategy="none", ignore_labels=[])]
    assert tags == _token_tags(Predictor.load(out), texts)

    records = [{"question": "我在哪", "context": "我在北京", "answers": {"text": ["北京"], "answer_start": [2]}},
               {"question": "他在哪", "context": "他在上海", "answers": {"text": ["上海"], "answer_start": [2]}}]
    out = _train(tmp_path / "qa", tiny_model_dir, records, task="question-answering")
    encoded = AutoTokenizer.from_pretrained(out)("我在哪", "我在北京", return_tensors="pt")
    with torch.no_grad():
        auto = AutoModelForQuestionAnswering.from_pretrained(out).eval()(**encoded)
        own = Predictor.load(out).model(**encoded)
    torch.testing.assert_close(auto.start_logits, own.start_logits)
    torch.testing.assert_close(auto.end_logits, own.end_logits)
