"""Whole-word masking, packing without padding, the embeddings-first phase, perplexity and resume."""

from __future__ import annotations

import json

import numpy as np
import torch
from transformers import AutoTokenizer

from langbert.config import PretrainConfig
from langbert.language.masking import WholeWordMaskCollator
from langbert.language.packing import PackedBlocks, pack, word_starts
from langbert.language.pretrain import pretrain
from tests.conftest import transformers_warnings
from tests.language.test_adapt import CORPUS


def test_word_starts_follow_the_segmenter_and_wordpiece():
    text = "我喜欢北京playing"
    offsets = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 9), (9, 12)]  # ..., "play", "##ing"
    segmenter = lambda t: ["我", "喜欢", "北京", "playing"]  # noqa: E731
    assert word_starts(text, offsets, segmenter) == [1, 1, 0, 1, 0, 1, 0]
    assert word_starts(text, offsets, None) == [1, 1, 1, 1, 1, 1, 0]


def test_whole_word_masking_masks_every_token_of_a_word_together():
    collator = WholeWordMaskCollator(mask_id=4, vocab_size=100, special_ids=(0, 1, 2, 3, 4), mlm_probability=0.3,
                                     generator=torch.Generator().manual_seed(0))
    ids = torch.arange(10, 76).reshape(1, 66).repeat(200, 1)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] 64 tokens [SEP]
    starts = torch.zeros_like(ids)
    starts[:, 1::4] = 1  # 16 words of 4 tokens
    _, labels = collator.mask(ids, starts)
    chosen = (labels != -100)[:, 1:-1].reshape(200, 16, 4)
    assert chosen.any() and (chosen.all(-1) | ~chosen.any(-1)).all(), "a word was partly masked"
    assert 0.25 < (labels != -100).float().mean() < 0.35
    assert (labels[:, 0] == -100).all() and (labels[:, -1] == -100).all(), "[CLS]/[SEP] must never be predicted"


def test_packing_leaves_no_padding(tmp_path, tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.model_max_length = 20
    tok.save_pretrained(tmp_path / "tok")
    long_document = "".join(CORPUS)  # longer than model_max_length: packing cuts it into blocks
    assert len(tok(long_document)["input_ids"]) > 20
    with transformers_warnings() as logged:
        meta = pack(iter([*CORPUS, long_document]), str(tmp_path / "tok"), tmp_path / "p", "jieba", workers=1)
    # transformers' "will result in indexing errors" would be wrong: no sequence longer than a block is fed
    assert not [m for m in logged if "indexing errors" in m]
    blocks = PackedBlocks(tmp_path / "p", 16, tok.cls_token_id, tok.sep_token_id)
    assert len(blocks) == meta["tokens"] // 14 > 5
    for i in range(len(blocks)):
        item = blocks[i]
        assert item["input_ids"].shape == (16,) and tok.pad_token_id not in item["input_ids"].tolist()
        assert item["input_ids"][0] == tok.cls_token_id and item["input_ids"][-1] == tok.sep_token_id
    ids = np.memmap(tmp_path / "p.ids", dtype=meta["dtype"], mode="r")
    assert (ids == tok.sep_token_id).sum() == len(CORPUS) + 1, "one [SEP] between documents"


def _config(tmp_path, model, corpus, **kw):
    settings = dict(model=model, corpus=[str(corpus)], output_dir=str(tmp_path / "pt"), block_size=16, batch_size=4,
                    max_steps=12, eval_steps=6, logging_steps=2, learning_rate=1e-3, workers=1, bf16=False,
                    progress=False, seed=0)
    settings.update(kw)
    return PretrainConfig(**settings)


def _corpus(tmp_path):
    path = tmp_path / "c.txt"
    # enough lines that the 1% hash hold-out is not empty
    path.write_text("\n".join(f"{line}{i}" for i, line in enumerate(CORPUS * 20)) + "\n", encoding="utf-8")
    return path


def test_embeddings_first_then_full_model_and_perplexity(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    corpus = _corpus(tmp_path)
    start = load_file(f"{tiny_model_dir}/model.safetensors")
    body, emb = "encoder.layer.0.attention.self.query.weight", "embeddings.word_embeddings.weight"

    def trained(**kw):
        out = pretrain(_config(tmp_path / f"run{kw['max_steps']}", tiny_model_dir, corpus, **kw))
        weights = load_file(str(out / "model.safetensors"))
        return {k.removeprefix("bert."): v for k, v in weights.items()}, json.loads((out / "langbert.json").read_text())

    only_phase1, _ = trained(max_steps=6, embeddings_only_steps=6)
    torch.testing.assert_close(only_phase1[body], start[body], rtol=0, atol=0)
    assert not torch.equal(only_phase1[emb], start[emb])

    both, meta = trained(max_steps=12, embeddings_only_steps=6)
    assert not torch.equal(both[body], start[body]), "phase 2 must train the body"
    ppl = meta["heldout_perplexity"]
    assert meta["steps"] == 12 and ppl["before"] > 0 and ppl["after"] < ppl["before"]
    assert (tmp_path / "run12" / "pt" / "training.png").exists()  # training and held-out MLM loss by step


def test_pretraining_resumes(tmp_path, tiny_model_dir):
    from transformers import TrainerCallback

    corpus = _corpus(tmp_path)

    class Stop(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 6:
                raise KeyboardInterrupt  # stands in for a crash right after a checkpoint

    cfg = _config(tmp_path, tiny_model_dir, corpus)
    import langbert.language.pretrain as module

    original = module.LangbertTrainer.__init__

    def with_stop(self, *a, callbacks=(), **kw):
        original(self, *a, callbacks=[*callbacks, Stop()], **kw)

    module.LangbertTrainer.__init__ = with_stop
    try:
        try:
            pretrain(cfg)
        except KeyboardInterrupt:
            pass
    finally:
        module.LangbertTrainer.__init__ = original
    assert not (tmp_path / "pt" / "langbert.json").exists()
    with transformers_warnings() as warnings:
        out = pretrain(_config(tmp_path, tiny_model_dir, corpus, resume=True))
    # The decoder is tied to the embeddings, so never saved: not a missing key to warn about.
    assert not [w for w in warnings if "missing keys" in w]
    meta = json.loads((out / "langbert.json").read_text())
    assert meta["steps"] == 12
    assert meta["heldout_perplexity"]["before"] > meta["heldout_perplexity"]["after"]  # measured before the crash


def test_a_time_budget_becomes_a_step_plan_that_ends_with_a_decayed_learning_rate(tmp_path, tiny_model_dir,
                                                                                   monkeypatch):
    import langbert.language.pretrain as module

    corpus = _corpus(tmp_path)
    # 5 minutes at a pretended 30 s a step: ~9 steps, and the real clock (a safety net) never stops the run.
    monkeypatch.setattr(module, "seconds_per_step", lambda *a, **k: 30.0)
    out = pretrain(_config(tmp_path, tiny_model_dir, corpus, max_steps=1000, max_minutes=5, logging_steps=1))
    meta = json.loads((out / "langbert.json").read_text())
    assert 1 < meta["planned_steps"] < 12 and meta["steps"] == meta["planned_steps"]
    rates = [json.loads(line)["learning_rate"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if "learning_rate" in line]
    assert rates[-1] < 0.25 * max(rates), "the schedule must decay within the budget, not stop at its peak"


def test_step_timing_leaves_the_weights_unchanged(tiny_model_dir):
    from transformers import AutoModelForMaskedLM

    from langbert.language.time_budget import seconds_per_step, steps_within

    model = AutoModelForMaskedLM.from_pretrained(tiny_model_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.randint(5, 50, (2, 8))
    seconds = seconds_per_step(model, lambda i: {"input_ids": ids, "labels": ids}, bf16=False)
    assert seconds > 0
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert steps_within(10, 1.0, 10_000, eval_steps=100, eval_batches=0) == 540
    assert steps_within(10, 1.0, 100, eval_steps=100, eval_batches=0) == 100
    # 100 cheap steps (0.5 s) first leave 540 - 50 s for full steps: 100 + 490.
    assert steps_within(10, 1.0, 10_000, eval_steps=100, eval_batches=0, first_steps=100, first_step_seconds=0.5) == 590
    assert steps_within(1, 1.0, 10_000, eval_steps=100, eval_batches=0, first_steps=500, first_step_seconds=0.5) == 108
