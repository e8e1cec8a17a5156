"""Predictor options: opt-in bf16 autocast stays close to fp32; the unpadded encoder gives the padded outputs."""

from __future__ import annotations

import pytest
import torch

from langbert import Predictor
from tests.conftest import SENTIMENT, train_sentiment, transformers_warnings, watch_first_encoder_layer


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


def test_partition_is_the_cheapest_split_and_respects_the_batch_size():
    import itertools
    import random

    from langbert.tasks.forward import partition

    def cost(bounds, lengths, overhead):
        starts = [0, *bounds[:-1]]
        return sum(overhead + (b - a) * lengths[b - 1] for a, b in zip(starts, bounds))

    rng = random.Random(0)
    for _ in range(30):
        lengths = sorted(rng.randint(1, 128) for _ in range(rng.randint(1, 9)))
        n, max_batch, overhead = len(lengths), rng.randint(1, 5), rng.choice([0, 20, 200])
        bounds = partition(lengths, max_batch, overhead)
        assert bounds[-1] == n and bounds == sorted(set(bounds))
        assert all(b - a <= max_batch for a, b in zip([0, *bounds[:-1]], bounds))
        every = [[*cuts, n] for k in range(n) for cuts in itertools.combinations(range(1, n), k)
                 if all(b - a <= max_batch for a, b in zip([0, *cuts], [*cuts, n]))]
        assert cost(bounds, lengths, overhead) == min(cost(c, lengths, overhead) for c in every)
    assert partition([5, 5, 5, 100], 64, 200) == [3, 4]  # the long text alone: 515 padded-token units, not 600
    assert partition([], 8) == []


def test_unpadded_predictions_match_the_padded_model(tmp_path, tiny_model_dir):
    model_dir = train_sentiment(tmp_path, tiny_model_dir)
    texts = [t for t, _ in SENTIMENT] + ["".join(t for t, _ in SENTIMENT[:k]) for k in (2, 3, 5)]
    fast, padded = Predictor.load(model_dir), Predictor.load(model_dir, unpadded=False)
    assert fast.unpadded and not padded.unpadded
    shapes, _ = watch_first_encoder_layer(fast.model)
    got, expected = fast.predict(texts), padded.predict(texts)
    assert shapes and all(shape[0] == 1 for shape in shapes), "the encoder layers must get packed tokens"
    assert [p["label"] for p in got] == [p["label"] for p in expected]
    assert [p["score"] for p in got] == pytest.approx([p["score"] for p in expected], abs=1e-5)


def test_truncation_warning_counts_only_texts_over_max_length(tmp_path, tiny_model_dir):
    import warnings

    predictor = Predictor.load(train_sentiment(tmp_path, tiny_model_dir))
    predictor.max_length = 10
    exact = "很好" * 4  # 8 characters + [CLS] + [SEP]: fills max_length, loses nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor.predict(["很好", exact])
    predictor.tokenizer.model_max_length = 10
    with pytest.warns(UserWarning, match="1 of 3 texts exceed max_length=10"), transformers_warnings() as logged:
        predictor.predict(["很好", exact, exact + "满意"])
    # transformers' own "will result in indexing errors" would be wrong: the model gets truncated features
    assert not [m for m in logged if "indexing errors" in m]


def test_pairs_for_a_model_trained_on_single_texts_are_refused(tmp_path, tiny_model_dir):
    from langbert.errors import LangbertError

    predictor = Predictor.load(train_sentiment(tmp_path, tiny_model_dir))
    assert not predictor.takes_pairs
    with pytest.raises(LangbertError, match="^pairs: "):
        predictor.predict(["很好"], pairs=["很好"])
