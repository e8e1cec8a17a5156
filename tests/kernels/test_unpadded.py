"""The unpadded encoder: same outputs as the padded model on real tokens, the layers see no padding."""

from __future__ import annotations

import itertools

import pytest
import torch
from transformers import (BertConfig, BertForSequenceClassification, BertForTokenClassification, DistilBertConfig,
                          DistilBertForSequenceClassification, RobertaConfig, RobertaForTokenClassification)

from langbert.kernels import unpadded
from langbert.tasks.pooling import mean_pooled_class
from tests.conftest import watch_first_encoder_layer

SIZES = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=64)


def batch(lengths: list[int], pad_id: int = 0, first_id: int = 5) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad_id)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    types = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(first_id, 60, (n,))
        mask[row, :n] = 1
        types[row, n // 2:n] = 1  # a sentence pair: the second half is segment 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def first_layer_inputs(model: torch.nn.Module, inputs: dict) -> tuple[torch.Tensor, list[tuple[int, ...]]]:
    shapes, handle = watch_first_encoder_layer(model)
    with torch.no_grad():
        out = model(**inputs)
    handle.remove()
    return out.logits, shapes


MODELS = {
    "bert-token": lambda: BertForTokenClassification(BertConfig(**SIZES, num_labels=5)),
    "bert-cls-pairs": lambda: BertForSequenceClassification(BertConfig(**SIZES, num_labels=3)),
    "bert-mean-pooled": lambda: mean_pooled_class(BertConfig(**SIZES))(BertConfig(**SIZES, num_labels=3)),
    "roberta-token": lambda: RobertaForTokenClassification(RobertaConfig(**SIZES, num_labels=4, pad_token_id=1,
                                                                         type_vocab_size=1)),
}


# Unsorted rows take the gather path (the two 4s: equal lengths, not adjacent), sorted ones (as
# forward_batches makes them) the slice path, equal lengths the no-padding layout; overhead 0 makes a
# bucket of each length, 5000 one of them all.
@pytest.mark.parametrize("overhead", [0, 5000])
@pytest.mark.parametrize("lengths", [[4, 17, 9, 30, 3, 4], [3, 4, 4, 9, 17, 30]])
@pytest.mark.parametrize("name", MODELS)
def test_real_tokens_get_the_padded_models_outputs_and_the_layers_see_no_padding(name, lengths, overhead,
                                                                                 monkeypatch):
    monkeypatch.setattr(unpadded, "CALL_OVERHEAD", overhead)
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    inputs = batch(lengths, pad_id=model.config.pad_token_id or 0)
    if model.config.type_vocab_size == 1:
        inputs.pop("token_type_ids")
    expected, shapes = first_layer_inputs(model, inputs)
    assert shapes == [torch.Size([len(lengths), 30, 32])]

    assert unpadded.install(model)
    got, shapes = first_layer_inputs(model, inputs)
    rounded = -(-sum(lengths) // unpadded.PACK_MULTIPLE) * unpadded.PACK_MULTIPLE  # oneDNN-friendly shapes
    assert shapes == [torch.Size([1, rounded, 32])]
    if expected.dim() == 3:  # per token: compare real tokens only (padding positions are zeros now)
        real = inputs["attention_mask"].bool()
        expected, got = expected[real], got[real]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_training_and_unpadded_batches_keep_the_padded_path():
    model = MODELS["bert-token"]()
    assert unpadded.install(model)
    model.train()
    _, shapes = first_layer_inputs(model, batch([3, 17, 9]))
    assert shapes == [torch.Size([3, 17, 32])]
    model.eval()
    _, shapes = first_layer_inputs(model, batch([16, 17, 17]))  # 98% real tokens: nothing worth removing
    assert shapes == [torch.Size([3, 17, 32])]


def test_bf16_autocast_outputs_agree():
    torch.manual_seed(0)
    model = MODELS["bert-mean-pooled"]().eval()
    inputs = batch([5, 40, 12, 7])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, _ = first_layer_inputs(model, inputs)
        unpadded.install(model)
        got, _ = first_layer_inputs(model, inputs)
    torch.testing.assert_close(got.float(), expected.float(), atol=0.05, rtol=0.05)


def test_architectures_without_a_bert_encoder_are_left_alone():
    model = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=60, dim=32, n_layers=1, n_heads=2,
                                                                 hidden_dim=64))
    before = model.config._attn_implementation
    assert not unpadded.install(model)
    assert model.config._attn_implementation == before


def test_buckets_are_the_cheapest_contiguous_split():
    def cost(lengths, cuts, overhead):
        return sum(overhead + (hi - lo) * lengths[hi - 1] ** 2 for lo, hi in cuts)

    for lengths in ([3], [2, 2, 2], [1, 2, 50, 51, 52, 120], [5, 9, 9, 10, 64, 64, 65, 128]):
        for overhead in (0, 100, 5000, 10**6):
            got = unpadded._buckets(lengths, overhead)
            assert got[0][0] == 0 and got[-1][1] == len(lengths)
            assert all(a[1] == b[0] for a, b in zip(got, got[1:]))
            best = min(cost(lengths, list(zip((0,) + cut, cut + (len(lengths),))), overhead)
                       for k in range(len(lengths)) for cut in itertools.combinations(range(1, len(lengths)), k))
            assert cost(lengths, got, overhead) == best
