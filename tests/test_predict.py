"""Predictor options: opt-in bf16 autocast runs the torch model in bfloat16 and stays close to fp32."""

from __future__ import annotations

import pytest
import torch

from langbert import Predictor
from tests.conftest import SENTIMENT, train_sentiment


def test_bf16_autocast_is_opt_in_and_close_to_fp32(tmp_path, tiny_model_dir):
    model_dir = train_sentiment(tmp_path, tiny_model_dir)
    texts = [t for t, _ in SENTIMENT]
    dtypes = []

    def spy(predictor: Predictor) -> None:
        linear = next(m for m in predictor.model.modules() if isinstance(m, torch.nn.Linear))
        linear.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))

    fp32 = Predictor.load(model_dir)
    spy(fp32)
    reference = fp32.predict(texts)
    assert set(dtypes) == {torch.float32}

    dtypes.clear()
    bf16 = Predictor.load(model_dir, bf16=True)
    spy(bf16)
    fast = bf16.predict(texts)
    assert set(dtypes) == {torch.bfloat16}
    for a, b in zip(fast, reference):
        assert a["score"] == pytest.approx(b["score"], abs=0.05)
