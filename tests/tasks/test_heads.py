"""Fine-tuning a model that already has a head: it carries on for the same labels, starts afresh otherwise."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from langbert import Predictor, train
from tests.conftest import SENTIMENT, tiny_train_config, train_sentiment, write_jsonl
from tests.tasks.test_token_classification import NER, _rows

# One step at a rate that cannot move anything: the model trained is the model loaded.
UNCHANGED = dict(max_steps=1, eval_steps=1, learning_rate=1e-12, scheduler="constant")


@pytest.fixture(scope="module")
def sentiment_model(tmp_path_factory, tiny_model_dir):
    return train_sentiment(tmp_path_factory.mktemp("sentiment"), tiny_model_dir)


def _folder(path):
    path.mkdir()
    return path


def _reversed_copy(src, dst):
    """The same classifier with its outputs in the other order: another checkpoint, the same function."""
    dst.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / name, dst / name)
    config = json.loads((dst / "config.json").read_text())
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))][::-1]
    config["id2label"] = {str(i): label for i, label in enumerate(labels)}
    config["label2id"] = {label: i for i, label in enumerate(labels)}
    (dst / "config.json").write_text(json.dumps(config))
    weights = load_file(str(src / "model.safetensors"))
    for key in ("classifier.weight", "classifier.bias"):
        weights[key] = weights[key].flip(0).contiguous()
    save_file(weights, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return labels


def test_a_head_for_the_same_labels_carries_on_in_its_own_order(tmp_path, sentiment_model):
    first = sentiment_model
    labels = _reversed_copy(first, tmp_path / "reversed")
    again = train_sentiment(_folder(tmp_path / "b"), str(tmp_path / "reversed"), **UNCHANGED)
    assert json.loads((again / "langbert.json").read_text())["task"]["labels"] == labels
    texts = [t for t, _ in SENTIMENT]
    before, after = Predictor.load(first).predict(texts), Predictor.load(again).predict(texts)
    assert [p["label"] for p in after] == [p["label"] for p in before] == [l for _, l in SENTIMENT]
    for b, a in zip(before, after):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-4)


def test_a_head_for_other_labels_starts_afresh(tmp_path, sentiment_model, caplog):
    first = sentiment_model
    three = [(t, "neu" if i % 3 == 0 else l) for i, (t, l) in enumerate(SENTIMENT)]
    data = write_jsonl(tmp_path / "three.jsonl", [{"text": t, "label": l} for t, l in three])
    with caplog.at_level(logging.WARNING, logger="langbert"):
        out = train(tiny_train_config(tmp_path / "b", str(first), data, max_steps=5, eval_steps=5))
    assert sorted(json.loads((out / "langbert.json").read_text())["task"]["labels"]) == ["neg", "neu", "pos"]
    assert "a new head starts for" in caplog.text
    # Same number of labels, other names: HF would load the old rows; they start afresh too.
    renamed = write_jsonl(tmp_path / "renamed.jsonl", [{"text": t, "label": l.upper()} for t, l in SENTIMENT])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="langbert"):
        out = train(tiny_train_config(tmp_path / "c", str(first), renamed, **UNCHANGED))
    assert "a new head starts for ['NEG', 'POS']" in caplog.text
    old, new = load_file(str(first / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert not torch.allclose(old["classifier.weight"], new["classifier.weight"])
    assert torch.allclose(old["bert.embeddings.word_embeddings.weight"], new["bert.embeddings.word_embeddings.weight"])


def test_a_crf_carries_on_with_its_emissions(tmp_path, tiny_model_dir):
    data = _rows(tmp_path)
    settings = dict(task="token-classification", crf=True, dropout=0.0)
    first = train(tiny_train_config(tmp_path / "a", tiny_model_dir, data, max_steps=100, learning_rate=5e-3, **settings))
    again = train(tiny_train_config(tmp_path / "b", str(first), data, **settings, **UNCHANGED))
    old, new = load_file(str(first / "crf.safetensors")), load_file(str(again / "crf.safetensors"))
    assert old.keys() == new.keys() and all(torch.allclose(old[k], new[k], atol=1e-6) for k in old)
    assert old["transitions"].abs().max() > 0.1  # trained, not the initial scores
    texts = [t for t, _ in NER]
    assert Predictor.load(again).predict(texts) == Predictor.load(first).predict(texts)


def test_a_body_that_does_not_fit_its_config_is_refused(tmp_path, sentiment_model):
    from langbert.errors import ConfigError
    from langbert.tasks import create_task

    broken = tmp_path / "broken"
    _reversed_copy(sentiment_model, broken)
    weights = load_file(str(broken / "model.safetensors"))
    weights["bert.pooler.dense.bias"] = torch.zeros(7)
    save_file(weights, str(broken / "model.safetensors"), metadata={"format": "pt"})
    task = create_task("text-classification")
    task.labels = ["neg", "pos"]
    with pytest.raises(ConfigError, match="bert.pooler.dense.bias"):
        task.build_model(str(broken))


def test_a_new_head_is_one_line_not_a_load_report_and_missing_body_weights_still_warn(tiny_model_dir, tmp_path,
                                                                                       caplog):
    import logging
    import shutil

    from safetensors.torch import load_file, save_file

    from langbert.tasks import create_task

    task = create_task("text-classification")
    task.labels = ["neg", "pos"]
    from tests.conftest import transformers_warnings

    with caplog.at_level(logging.INFO), transformers_warnings() as from_transformers:
        task.build_model(tiny_model_dir)
    text = caplog.text + "\n".join(from_transformers)
    assert "LOAD REPORT" not in text and "seem corrupted" not in text
    assert "new classifier (a head for this task)" in text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = load_file(str(broken / "model.safetensors"))
    dropped = next(k for k in weights if "encoder.layer.0.attention.self.query.weight" in k)
    del weights[dropped]
    save_file(weights, str(broken / "model.safetensors"), metadata={"format": "pt"})
    caplog.clear()
    with caplog.at_level(logging.INFO):
        task.build_model(str(broken))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "are not in the checkpoint" in warnings[0] and "encoder" in warnings[0]
