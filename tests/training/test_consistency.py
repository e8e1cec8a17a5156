"""Consistency training (UDA): the noise, the loss against a hand computation, the batches a resumed run
draws, and a training run that reads unlabelled texts every step."""

from __future__ import annotations

import json

import pytest
import torch
from transformers.modeling_outputs import SequenceClassifierOutput

from langbert import train
from langbert.errors import ConfigError
from langbert.inference import Predictor
from langbert.training.consistency import Consistency
from tests.conftest import SENTIMENT, tiny_train_config, write_jsonl
from tests.training.test_self_training import UNLABELED, train_from_cli

CLS, SEP, PAD = 1, 2, 0


def _collate(features):
    width = max(len(f["input_ids"]) for f in features)
    ids = [f["input_ids"] + [PAD] * (width - len(f["input_ids"])) for f in features]
    mask = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features]
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}


def _features(texts):
    return [{"input_ids": [CLS, *t, SEP], "labels": 0} for t in texts]


def _consistency(features, **settings):
    defaults = dict(weight=1.0, noise=0.0, threshold=0.0, temperature=1.0, batch_size=2, seed=0)
    return Consistency(features, _collate, [PAD, CLS, SEP], **{**defaults, **settings})


class BagOfTokens(torch.nn.Module):
    """Two label scores from the mean of the attended tokens' embeddings: deterministic, no dropout."""

    def __init__(self, vocab: int = 20):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(vocab, 2)

    def forward(self, input_ids, attention_mask):
        m = attention_mask.unsqueeze(-1).float()
        return SequenceClassifierOutput(logits=(self.embed(input_ids) * m).sum(1) / m.sum(1))


def test_noise_replaces_only_real_tokens_with_tokens_the_unlabelled_texts_hold():
    texts = [[5, 6, 7, 8, 9, 10, 11, 12]] * 50 + [[13, 14]]
    c = _consistency(_features(texts), noise=0.3, batch_size=51)
    batch, generator = c.batch()
    noised = c.noised(batch["input_ids"], batch["attention_mask"], generator)
    special = torch.isin(batch["input_ids"], torch.tensor([PAD, CLS, SEP])) | ~batch["attention_mask"].bool()
    assert torch.equal(noised[special], batch["input_ids"][special])  # [CLS], [SEP] and padding stay
    changed = (noised != batch["input_ids"]) & ~special
    assert 0.15 < changed.sum() / (~special).sum() < 0.35  # about the share asked (a draw can equal the token)
    assert set(noised[changed].tolist()) <= set(range(5, 15))  # only tokens the texts hold, never a special one
    assert torch.equal(_consistency(_features(texts)).noised(batch["input_ids"], None, generator), batch["input_ids"])


def test_a_resumed_run_draws_the_batches_the_first_run_would_have():
    features = _features([[i + 3] for i in range(12)])
    first = _consistency(features, batch_size=4)
    drawn = [first.batch()[0]["input_ids"].tolist() for _ in range(5)]
    assert len({str(d) for d in drawn}) > 1  # not the same batch each step
    resumed = _consistency(features, batch_size=4)
    resumed.start(3)
    assert [resumed.batch()[0]["input_ids"].tolist() for _ in range(2)] == drawn[3:]
    assert all(len(set(map(str, d))) == 4 for d in drawn)  # no text twice in a batch
    other_process = _consistency(features, batch_size=4, rank=1)
    assert [other_process.batch()[0]["input_ids"].tolist() for _ in range(5)] != drawn


def test_the_loss_is_the_weighted_kl_from_the_sharpened_clean_prediction_over_the_confident_texts():
    texts = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14]]
    model = BagOfTokens()
    c = _consistency(_features(texts), weight=2.0, noise=0.5, threshold=0.55, temperature=0.4, batch_size=4, seed=3)
    loss = c.loss(model)

    batch, generator = _consistency(_features(texts), noise=0.5, batch_size=4, seed=3).batch()
    noisy_ids = c.noised(batch["input_ids"], batch["attention_mask"], generator)
    clean = model(**batch).logits.detach()
    noisy = model(noisy_ids, batch["attention_mask"]).logits
    p = (clean / 0.4).softmax(-1)
    kl = (p * (p.log() - noisy.log_softmax(-1))).sum(-1)
    confident = clean.softmax(-1).amax(-1) >= 0.55
    assert 0 < confident.sum() < 4, "the check needs both kinds of text"
    assert loss.item() == pytest.approx(2.0 * (kl * confident).sum().item() / 4, rel=1e-5)
    loss.backward()
    assert model.embed.weight.grad.abs().sum() > 0  # the noisy side carries the gradient
    assert c.summary()["share_counted"] == pytest.approx(confident.float().mean().item())


@pytest.fixture(scope="module")
def consistency_trained(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("consistency")
    data = write_jsonl(tmp / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    pool = tmp / "unlabeled.txt"
    pool.write_text("\n".join(UNLABELED) + "\n", encoding="utf-8")
    config = tiny_train_config(tmp, tiny_model_dir, data, unlabeled=[str(pool)], consistency_weight=1.0,
                               consistency_threshold=0.0, consistency_batch_ratio=2, dropout=0.0, pooling="mean")
    return config, train(config)


def test_every_step_reads_a_batch_of_unlabelled_texts_and_the_model_still_learns_its_labels(consistency_trained):
    config, out = consistency_trained
    meta = json.loads((out / "langbert.json").read_text())
    summary = meta["consistency"]
    assert summary["batches"] == meta["steps"] == config.max_steps and summary["unlabeled"] == len(UNLABELED)
    assert summary["batch_size"] == 16 and summary["share_counted"] == 1.0 and summary["mean_loss"] > 0
    assert meta["metrics"]["dev"]["accuracy"] == 1.0
    assert [p["label"] for p in Predictor.load(out).predict([t for t, _ in SENTIMENT])] == [l for _, l in SENTIMENT]


def test_the_consistency_loss_changes_what_the_model_learns(consistency_trained, tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    config, out = consistency_trained
    # Without dropout the unlabelled forwards draw no random numbers of the training's: a consistency loss
    # that did not reach the gradient would leave the two runs' weights identical.
    plain = train(tiny_train_config(tmp_path, tiny_model_dir, config.data.train, dropout=0.0, pooling="mean"))
    a, b = load_file(str(out / "model.safetensors")), load_file(str(plain / "model.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_consistency_and_self_training_together(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    pool = tmp_path / "u.txt"
    pool.write_text("\n".join(UNLABELED) + "\n", encoding="utf-8")
    out = train(tiny_train_config(tmp_path, tiny_model_dir, data, unlabeled=[str(pool)], self_training_rounds=1,
                                  consistency_weight=1.0, max_steps=20, pooling="mean"))
    for folder in (out / "self-training" / "round-0", out):  # teacher and student both
        assert json.loads((folder / "langbert.json").read_text())["consistency"]["unlabeled"] == len(UNLABELED)


def test_refusals(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    with pytest.raises(ConfigError, match="needs unlabelled texts"):
        train(tiny_train_config(tmp_path, tiny_model_dir, data, consistency_weight=1.0))
    with pytest.raises(ConfigError, match="consistency_noise"):
        tiny_train_config(tmp_path, tiny_model_dir, data, consistency_noise=1.0)
    with pytest.raises(ConfigError, match="consistency_temperature"):
        tiny_train_config(tmp_path, tiny_model_dir, data, consistency_temperature=0)
    with pytest.raises(ConfigError, match="method setfit does not use it"):
        tiny_train_config(tmp_path, tiny_model_dir, data, consistency_weight=1.0, method="setfit")
    numbers = write_jsonl(tmp_path / "r.jsonl", [{"text": t, "label": float(i)} for i, (t, _) in enumerate(SENTIMENT)])
    with pytest.raises(ConfigError, match="does not predict one label per text with a confidence"):
        train(tiny_train_config(tmp_path, tiny_model_dir, numbers, task="regression", consistency_weight=1.0,
                                unlabeled=["zh-corpus"]))


def test_consistency_from_the_cli(tmp_path, tiny_model_dir):
    meta = train_from_cli(tmp_path, tiny_model_dir, "--consistency-weight", "1", "--consistency-noise", "0.2",
                          "--max-steps", "10")
    summary = meta["consistency"]
    assert summary["batches"] == 10 and summary["noise"] == 0.2 and summary["batch_size"] == 24
