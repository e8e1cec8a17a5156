"""The masked-only MLM loss equals HF's full-vocabulary loss, value and gradients, at a fraction of the head."""

from __future__ import annotations

import copy

import torch
from transformers import AutoModelForMaskedLM

from langbert.language.masked_only_head import MaskedOnlyHead


def _batch(vocab: int) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (3, 12), generator=g)
    labels = torch.full_like(ids, -100)
    chosen = torch.rand(ids.shape, generator=g) < 0.2
    chosen[0, 3] = True
    labels[chosen] = ids[chosen]
    ids[chosen] = 4  # [MASK]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def _grads(model) -> dict:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_same_loss_and_gradients_as_the_full_head_which_sees_only_masked_rows(tiny_model_dir):
    torch.manual_seed(0)
    reference = AutoModelForMaskedLM.from_pretrained(tiny_model_dir).eval()  # eval: no dropout to compare
    model = copy.deepcopy(reference)
    batch = _batch(reference.config.vocab_size)
    expected = reference(**batch).loss
    expected.backward()

    masked_only = MaskedOnlyHead(model)
    assert masked_only.head is model.cls
    seen = []
    model.cls.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    loss = masked_only(model, batch)
    loss.backward()
    assert torch.allclose(loss, expected, atol=1e-6)
    assert seen == [((batch["labels"] != -100).sum().item(), model.config.vocab_size)]
    got, want = _grads(model), _grads(reference)
    assert got.keys() == want.keys()
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-6), name

    masked_only.remove()
    assert model(**{k: v for k, v in batch.items() if k != "labels"}).logits.shape == (3, 12, model.config.vocab_size)


def test_unknown_head_falls_back_to_every_position_and_empty_batches_give_zero(tiny_model_dir):
    model = AutoModelForMaskedLM.from_pretrained(tiny_model_dir).eval()
    batch = _batch(model.config.vocab_size)
    masked_only = MaskedOnlyHead(model)
    masked_only.head = None  # as for an architecture whose head we do not know
    masked_only.remove()
    assert torch.allclose(masked_only(model, batch), model(**batch).loss, atol=1e-6)

    nothing = {**batch, "labels": torch.full_like(batch["labels"], -100)}
    loss = MaskedOnlyHead(model)(model, nothing)
    loss.backward()
    assert loss.item() == 0.0
