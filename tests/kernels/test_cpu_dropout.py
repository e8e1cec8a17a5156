"""The CPU dropout must be dropout: rate, scaling, gradient, seeding, and attention equal to SDPA's."""

from __future__ import annotations

import json

import pytest
import torch

from langbert.kernels import cpu_dropout


def test_every_lane_drops_at_rate_p_and_kept_values_are_scaled():
    torch.manual_seed(0)
    p = 0.1
    mask = cpu_dropout.keep_mask(torch.Size([250_000, 4]), p, torch.float32, torch.device("cpu"))
    assert mask.unique().tolist() == [0.0, pytest.approx(1 / (1 - p))]
    # Four elements share each 64-bit draw: a lane with a biased bit would drop at another rate.
    sigma = (p * (1 - p) / 250_000) ** 0.5
    for lane in range(4):
        assert abs((mask[:, lane] == 0).float().mean().item() - p) < 5 * sigma


def test_expected_value_is_kept_and_gradient_follows_the_mask():
    torch.manual_seed(0)
    x = torch.full((400_000,), 2.0, requires_grad=True)
    y = cpu_dropout.apply_dropout(x, 0.3)
    assert y.mean().item() == pytest.approx(2.0, rel=0.01)
    y.sum().backward()
    assert torch.equal(x.grad == 0, y == 0)
    assert torch.allclose(x.grad[y != 0], torch.tensor(1 / 0.7))


def test_identity_when_not_training_or_p_zero_and_seeded_masks_repeat():
    x = torch.randn(8, 16)
    assert cpu_dropout.apply_dropout(x, 0.5, training=False) is x
    assert cpu_dropout.apply_dropout(x, 0.0) is x
    assert torch.count_nonzero(cpu_dropout.apply_dropout(x, 1.0)) == 0
    torch.manual_seed(3)
    a = cpu_dropout.apply_dropout(x, 0.5)
    torch.manual_seed(3)
    assert torch.equal(a, cpu_dropout.apply_dropout(x, 0.5))


def _padded_batch(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    return tok(["很好很喜欢北京", "差"], padding=True, return_tensors="pt")


def test_installed_model_matches_sdpa_in_eval_and_with_nothing_dropped(tiny_model_dir, monkeypatch):
    from transformers import AutoModel

    batch = _padded_batch(tiny_model_dir)
    reference = AutoModel.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    model = cpu_dropout.install(AutoModel.from_pretrained(tiny_model_dir, attn_implementation="sdpa"))
    assert model.config._attn_implementation == cpu_dropout.ATTENTION
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    with torch.no_grad():
        expected = reference(**batch).last_hidden_state
        assert torch.allclose(model.eval()(**batch).last_hidden_state, expected, atol=1e-5)
        # Training mode takes the attention path of its own; with a keep-everything mask it must equal
        # SDPA's result, padding mask included.
        monkeypatch.setattr(cpu_dropout, "keep_mask", lambda shape, p, dtype, device: torch.ones(shape, dtype=dtype))
        got = model.train()(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    assert torch.allclose(got[real], expected[real], atol=1e-5)


def test_training_mode_drops_and_checkpoint_config_stays_plain(tiny_model_dir, tmp_path):
    from transformers import AutoModel

    batch = _padded_batch(tiny_model_dir)
    model = cpu_dropout.install(AutoModel.from_pretrained(tiny_model_dir, attn_implementation="sdpa")).train()
    torch.manual_seed(0)
    first = model(**batch).last_hidden_state
    second = model(**batch).last_hidden_state
    assert not torch.allclose(first, second)  # dropout is live
    model.save_pretrained(tmp_path)
    assert cpu_dropout.ATTENTION not in (tmp_path / "config.json").read_text()
    assert "_attn_implementation" not in json.loads((tmp_path / "config.json").read_text())
    assert AutoModel.from_pretrained(tmp_path).config._attn_implementation == "sdpa"
