"""PEFT: the head is saved with the adapter, reload gives identical logits, merge gives identical logits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from langbert import Predictor, train
from langbert.cli import main
from langbert.data.rows import Row
from langbert.tasks.forward import forward_batches
from tests.conftest import SENTIMENT, tiny_train_config, write_jsonl

pytest.importorskip("peft")


def _logits(model_dir):
    p = Predictor.load(model_dir)
    return forward_batches(p.task, p.model, p.tokenizer, [Row(t) for t, _ in SENTIMENT], p.max_length)


@pytest.mark.parametrize("method", ["lora", "adalora", "ia3"])
def test_adapter_trains_saves_reloads_and_merges(tmp_path, tiny_model_dir, method):
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    out = train(tiny_train_config(tmp_path, tiny_model_dir, data, peft=method, lora_r=4, learning_rate=1e-2,
                                  max_steps=80, eval_steps=40))
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    meta = json.loads((out / "langbert.json").read_text())
    assert meta["parameters"]["trainable_percent"] < 50
    first, second = _logits(out), _logits(out)
    np.testing.assert_array_equal(first, second)  # the trained head came back, not a fresh random one
    if method == "lora":
        assert meta["metrics"]["dev"]["accuracy"] == 1.0
    assert main(["merge", str(out), "--out", str(tmp_path / "merged")]) == 0
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    np.testing.assert_allclose(_logits(tmp_path / "merged"), first, atol=1e-5)


@pytest.mark.parametrize("ngram_buckets", [0, 256], ids=["crf", "crf-ngrams"])
def test_lora_with_crf_head_round_trips(tmp_path, tiny_model_dir, ngram_buckets):
    from safetensors.torch import load_file

    from tests.tasks.test_token_classification import _rows

    out = train(tiny_train_config(tmp_path, tiny_model_dir, _rows(tmp_path), task="token-classification", crf=True,
                                  peft="lora", max_steps=6, eval_steps=6, ngram_buckets=ngram_buckets))
    texts = ["我在北京发布了", "他喜欢上海"]
    loaded = Predictor.load(out)
    assert loaded.task._crf_module.transitions.abs().sum() > 0, "the trained CRF was not restored"
    assert loaded.predict(texts) == Predictor.load(out).predict(texts)
    assert main(["merge", str(out), "--out", str(tmp_path / "merged")]) == 0
    assert Predictor.load(tmp_path / "merged").predict(texts) == Predictor.load(out).predict(texts)
    if ngram_buckets:  # the n-gram scores train beside the adapter (modules_to_save) and survive the merge
        merged = load_file(str(tmp_path / "merged" / "model.safetensors"))
        assert merged["ngram_scores.table.weight"].abs().sum() > 0


@pytest.fixture(scope="module")
def adapted_dir(tmp_path_factory, tiny_model_dir):
    """The tiny BERT as if ``langbert adapt`` had given it its vocabulary, then pretrained from it."""
    import shutil

    root = tmp_path_factory.mktemp("lineage")
    adapted = root / "adapted"
    shutil.copytree(tiny_model_dir, adapted)
    (adapted / "langbert.json").write_text(json.dumps({"stage": "adapt", "source_model": "embedded"}))
    pretrained = root / "pretrained"
    shutil.copytree(tiny_model_dir, pretrained)
    (pretrained / "langbert.json").write_text(json.dumps({"stage": "pretrain", "source_model": str(adapted)}))
    return pretrained


def test_a_vocabulary_from_adapt_is_found_through_the_stages_after_it(adapted_dir, tiny_model_dir):
    from langbert.artifacts import vocabulary_from_adapt

    assert vocabulary_from_adapt(adapted_dir) and vocabulary_from_adapt(adapted_dir.parent / "adapted")
    assert not vocabulary_from_adapt(tiny_model_dir)


@pytest.mark.parametrize("method", ["adalora", "ia3"])
def test_methods_without_an_embedding_adapter_train_a_new_vocabulary_in_full(tmp_path, adapted_dir,
                                                                              tiny_model_dir, method):
    from langbert.errors import ConfigError
    from langbert.training.peft import embeddings_mode

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    out = train(tiny_train_config(tmp_path, str(adapted_dir), data, peft=method, max_steps=4, eval_steps=4))
    saved = json.loads((out / "adapter_config.json").read_text())
    assert "word_embeddings" in saved["modules_to_save"] and "word_embeddings" not in str(saved["target_modules"])
    first = _logits(out)
    np.testing.assert_array_equal(first, _logits(out))  # the trained embeddings came back with the adapter
    assert main(["merge", str(out), "--out", str(tmp_path / "merged")]) == 0
    np.testing.assert_allclose(_logits(tmp_path / "merged"), first, atol=1e-5)

    assert embeddings_mode(method, "auto", new_vocabulary=False) == "frozen"
    assert embeddings_mode("lora", "auto", new_vocabulary=True) == "adapter"
    with pytest.raises(ConfigError, match="no adapter for an embedding layer"):
        embeddings_mode(method, "adapter", new_vocabulary=True)


def test_an_adapter_trains_at_the_peft_learning_rate(tmp_path, tiny_model_dir):
    from langbert.tasks import create_task
    from langbert.training.finetune import training_arguments
    from langbert.training.run import open_run

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    for peft, expected in (("none", 5e-5), ("lora", 3e-3), ("ia3", 3e-3)):
        config = tiny_train_config(tmp_path / peft, tiny_model_dir, data, peft=peft, learning_rate=5e-5)
        args = training_arguments(config, create_task("text-classification"), open_run(config.output_dir, False), 8)
        assert args.learning_rate == expected
