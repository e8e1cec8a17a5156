"""Hashed n-gram scores: each template reads the tokens it names, padding never changes a text's scores,
and a tagger with them overfits, reloads, serves, exports and loads through the Auto classes."""

from __future__ import annotations

import json

import pytest
import torch

from langbert import Predictor, train
from langbert.errors import ConfigError
from langbert.tasks import create_task
from langbert.tasks.ngram_scores import TEMPLATES, NgramScores
from tests.conftest import served, tiny_train_config
from tests.tasks.test_token_classification import NER, _rows


def test_each_template_reads_exactly_its_offsets():
    scores = NgramScores(buckets=1_000_003, num_labels=3)
    ids = torch.tensor([[2, 10, 11, 12, 13, 14, 3]])
    keys = scores.keys(ids)
    position = 3
    for moved in range(ids.shape[1]):
        changed = ids.clone()
        changed[0, moved] = 99
        differs = (scores.keys(changed)[0, position] != keys[0, position]).tolist()
        reads = [moved - position in template for template in TEMPLATES]
        assert differs == reads, moved
    # The same tokens under another template are another feature.
    assert len(set(keys[0, position].tolist())) == len(TEMPLATES)


def test_padding_and_batching_leave_a_texts_scores_as_alone():
    scores = NgramScores(buckets=4099, num_labels=3)
    torch.nn.init.normal_(scores.table.weight)
    alone = scores(torch.tensor([[2, 10, 11, 3]]))
    batch = torch.tensor([[2, 10, 11, 3, 0, 0], [2, 20, 21, 22, 23, 3]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    torch.testing.assert_close(scores(batch, mask)[0, :4], alone[0])
    # Beyond the text is "no token", not the pad id: a pad-id token inside the text reads differently.
    assert not torch.equal(scores.keys(torch.tensor([[2, 10, 11, 3, 0]]))[0, 3], scores.keys(torch.tensor([[2, 10, 11, 3]]))[0, 3])


def test_new_scores_start_at_zero_and_learn_at_their_own_rate(tiny_model_dir):
    from langbert.data.rows import Row

    task = create_task("token-classification", {"crf": True, "ngram_buckets": 512, "ngram_lr_scale": 50.0})
    task.fit([Row(text=t, label=e) for t, e in NER])
    model = task.build_model(tiny_model_dir, dropout=0.0).eval()
    assert model.ngram_scores.table.weight.shape == (512, len(task.labels))
    assert model.ngram_scores.table.weight.abs().sum() == 0
    assert task.head_modules() == ["classifier", "crf", "ngram_scores"]
    assert (list(model.ngram_scores.parameters()), 50.0) in task.lr_scaled_parameters()
    ids = torch.tensor([[2, 10, 11, 3]])
    with torch.no_grad():
        before = model(input_ids=ids).logits
        model.ngram_scores.table.weight.normal_()
        after = model(input_ids=ids).logits
    torch.testing.assert_close(after - before, model.ngram_scores(ids))


@pytest.mark.parametrize("options", [{"crf": True}, {"crf": False, "lexicon": ["train"], "lexicon_folds": 2}],
                         ids=["crf", "softmax-lexicon"])
def test_an_ngram_model_overfits_reloads_serves_and_exports(tmp_path, tiny_model_dir, options):
    from safetensors.torch import load_file
    from transformers import AutoModelForTokenClassification

    from langbert.inference.export import export_onnx

    config = tiny_train_config(tmp_path, tiny_model_dir, _rows(tmp_path), task="token-classification",
                               ngram_buckets=2048, max_steps=150, eval_steps=75, dropout=0.0, learning_rate=5e-3,
                               **options)
    out = train(config)
    learned = load_file(str(out / "model.safetensors"))["ngram_scores.table.weight"]
    assert learned.shape[0] == 2048 and learned.abs().sum() > 0
    assert json.loads((out / "config.json").read_text())["langbert_ngrams"] == {"buckets": 2048}
    texts = [t for t, _ in NER]
    first = Predictor.load(out).predict(texts)
    assert [[(s["start"], s["end"], s["type"]) for s in p["spans"]] for p in first] == [e for _, e in NER]
    assert Predictor.load(out, unpadded=False).predict(texts) == first
    assert served(out, texts) == json.loads(json.dumps(first))
    parity = export_onnx(out, tmp_path / "onnx", texts=texts, tolerance=1e-4)
    assert parity.passed and parity.label_agreement == 1.0
    assert Predictor.load(tmp_path / "onnx").predict(texts) == first
    if not options.get("lexicon"):  # a lexicon model needs langbert for its input; this one does not
        auto = AutoModelForTokenClassification.from_pretrained(out)
        torch.testing.assert_close(auto.ngram_scores.table.weight, learned)


def test_a_model_fine_tuned_again_keeps_its_scores_for_the_same_tags_only(tmp_path, tiny_model_dir):
    from langbert.data.rows import Row

    out = train(tiny_train_config(tmp_path, tiny_model_dir, _rows(tmp_path), task="token-classification",
                                  crf=True, ngram_buckets=256, max_steps=20, eval_steps=20, learning_rate=5e-3))
    rows = [Row(text=t, label=e) for t, e in NER]
    again = create_task("token-classification", {"crf": True, "ngram_buckets": 256})
    again.fit(rows)
    assert again.build_model(str(out)).ngram_scores.table.weight.abs().sum() > 0
    other = create_task("token-classification", {"crf": True, "ngram_buckets": 256})
    other.fit([Row(text=t, label=[(s, e, "X") for s, e, _ in spans]) for t, spans in NER])
    assert other.build_model(str(out)).ngram_scores.table.weight.abs().sum() == 0
    plain = create_task("token-classification", {"crf": True})
    plain.fit(rows)
    model = plain.build_model(str(out))
    assert getattr(model, "ngram_scores", None) is None and not hasattr(model.config, "langbert_ngrams")


def test_dropout_drops_whole_scores_while_training_only(tiny_model_dir):
    from langbert.data.rows import Row

    scores = NgramScores(buckets=4099, num_labels=3, dropout=0.5)
    torch.nn.init.normal_(scores.table.weight)
    ids = torch.randint(4, 90, (64, 20))
    full = scores.eval()(ids)
    torch.manual_seed(0)
    dropped = scores.train()(ids)
    assert not torch.allclose(dropped, full)
    # Each (token, template) score vector is kept or dropped whole, a kept one doubled (rate 0.5).
    per_template = scores.table(scores.keys(ids))
    torch.manual_seed(0)
    keep = torch.rand(per_template.shape[:-1]) >= 0.5
    torch.testing.assert_close(dropped, (per_template * keep.unsqueeze(-1) * 2).sum(dim=-2))
    assert 0.4 < keep.float().mean() < 0.6
    # The task sets the rate on the model it builds; a value out of range is refused.
    task = create_task("token-classification", {"crf": True, "ngram_buckets": 512, "ngram_dropout": 0.3})
    task.fit([Row(text=t, label=e) for t, e in NER])
    assert task.build_model(tiny_model_dir, dropout=0.0).ngram_scores.dropout == 0.3
    with pytest.raises(ConfigError, match="ngram_dropout"):
        create_task("token-classification", {"ngram_buckets": 512, "ngram_dropout": 1.0})
