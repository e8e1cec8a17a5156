"""Vocabulary building and embedding transfer on a tiny random model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer

from langbert.config import AdaptConfig
from langbert.language.adapt import adapt
from langbert.language.embeddings import dictionary_embedding, gloss_embedding, transfer_embeddings

CORPUS = ["我喜欢北京。", "北京很大，上海也很大。", "iPhone在北京发布了。", "他喜欢上海的服务。",
          "质量很好，服务很满意！", "我们喜欢北京和上海。", "2024年有1000人。"] * 5


@pytest.fixture()
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def glosses(tmp_path):
    path = tmp_path / "dict.tsv"
    path.write_text("喜欢\tlike; be fond of\n北京\tbeijing\n大\tbig; large\n", encoding="utf-8")
    return path


def test_copied_rows_are_identical_and_dictionary_rows_are_gloss_means(tmp_path, tiny_model_dir, corpus, glosses):
    out = adapt(AdaptConfig(model=tiny_model_dir, corpus=[str(corpus)], output_dir=str(tmp_path / "a"),
                            granularity="word", min_word_count=2, vocab_size=200, dictionary=str(glosses), min_frequency=1))
    source_tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    source = AutoModelForMaskedLM.from_pretrained(tiny_model_dir).get_input_embeddings().weight.detach()
    new_tok = AutoTokenizer.from_pretrained(out)
    new = AutoModelForMaskedLM.from_pretrained(out).get_input_embeddings().weight.detach()
    vocab, source_vocab = new_tok.get_vocab(), source_tok.get_vocab()

    for token in ["[CLS]", "[SEP]", "好", "很"]:
        torch.testing.assert_close(new[vocab[token]], source[source_vocab[token]], rtol=0, atol=0)
    # 喜欢 is a new word token whose row is the weighted mean of its glosses' mean piece embeddings.
    assert "喜欢" in vocab and "喜欢" not in source_vocab
    g1 = gloss_embedding("like", source_tok, source)
    g2 = gloss_embedding("be fond of", source_tok, source)
    torch.testing.assert_close(new[vocab["喜欢"]], (g1 * 1.0 + g2 * 0.5) / 1.5, rtol=1e-5, atol=1e-6)
    meta = json.loads((out / "langbert.json").read_text())
    assert meta["embedding_init"]["copied"] >= 5 and meta["embedding_init"]["dictionary"] >= 1
    assert meta["coverage"]["heldout_lines"] == 0 and meta["coverage"]["after"]["unk_rate"] is None
    # the MLM head is tied to the new embeddings
    mlm = AutoModelForMaskedLM.from_pretrained(out)
    assert mlm.get_output_embeddings().weight.data_ptr() == mlm.get_input_embeddings().weight.data_ptr()


def test_char_vocabulary_splits_cjk_and_keeps_offsets(tmp_path, tiny_model_dir, corpus):
    out = adapt(AdaptConfig(model=tiny_model_dir, corpus=[str(corpus)], output_dir=str(tmp_path / "c"), init="mean",
                            vocab_size=300, min_frequency=1))
    tok = AutoTokenizer.from_pretrained(out)
    text = "2024年iPhone在北京发布"
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    pieces = tok.convert_ids_to_tokens(enc["input_ids"])
    assert "北" in pieces and "京" in pieces and "[UNK]" not in pieces
    assert "".join(text[s:e] for s, e in enc["offset_mapping"]).lower() == text.lower()


def test_mean_and_random_baselines(tiny_model_dir):
    source_tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    emb = torch.randn(len(source_tok), 32)
    tokens = ["[CLS]", "好", "未知词"]
    mean, report = transfer_embeddings(emb, source_tok, tokens, "mean")
    assert report.sources == ["copied", "copied", "mean"]
    torch.testing.assert_close(mean[2], emb.mean(0))
    rand, report = transfer_embeddings(emb, source_tok, tokens, "random", seed=1)
    assert report.sources[2] == "random" and 0.005 < rand[2].std().item() < 0.05
    assert dictionary_embedding(["zzzz_unknown"], source_tok, emb) is None  # all-[UNK] gloss gives nothing


def test_adapted_checkpoint_fine_tunes(tmp_path, tiny_model_dir, corpus):
    from langbert import Predictor, train
    from tests.conftest import SENTIMENT, tiny_train_config, write_jsonl

    adapted = adapt(AdaptConfig(model=tiny_model_dir, corpus=[str(corpus)], output_dir=str(tmp_path / "a"),
                                init="mean", vocab_size=300, min_frequency=1))
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    out = train(tiny_train_config(tmp_path, str(adapted), data))
    preds = Predictor.load(out).predict([t for t, _ in SENTIMENT])
    assert [p["label"] for p in preds] == [l for _, l in SENTIMENT]
