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


def test_lora_with_crf_head_round_trips(tmp_path, tiny_model_dir):
    from tests.tasks.test_token_classification import _rows

    out = train(tiny_train_config(tmp_path, tiny_model_dir, _rows(tmp_path), task="token-classification", crf=True,
                                  peft="lora", max_steps=6, eval_steps=6))
    texts = ["我在北京发布了", "他喜欢上海"]
    loaded = Predictor.load(out)
    assert loaded.task._crf_module.transitions.abs().sum() > 0, "the trained CRF was not restored"
    assert loaded.predict(texts) == Predictor.load(out).predict(texts)
    assert main(["merge", str(out), "--out", str(tmp_path / "merged")]) == 0
    assert Predictor.load(tmp_path / "merged").predict(texts) == Predictor.load(out).predict(texts)
