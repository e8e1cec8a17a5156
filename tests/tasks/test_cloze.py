"""Cloze classification: label words to token ids, scores at the masks, calibration, zero-shot, the pattern kept."""

from __future__ import annotations

import json
import math

import pytest
import torch

from langbert import Predictor, train
from langbert.cli import main
from langbert.data.rows import Row
from langbert.errors import ConfigError
from langbert.tasks import create_task
from langbert.tasks.cloze import label_scores, label_token_ids, word_labels
from tests.conftest import SENTIMENT, tiny_train_config, write_jsonl

PATTERN = "{text}很[MASK]"


def cloze(**options):
    return create_task("cloze-classification", {"pattern": PATTERN, "verbalizer": "pos=好,neg=差", **options})


def test_verbalizer_words_map_to_their_token_ids_one_mask_per_character(tiny_mlm_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    ids = label_token_ids({"pos": "满意", "neg": "失望"}, tokenizer)
    assert ids == [tokenizer.convert_tokens_to_ids(list("满意")), tokenizer.convert_tokens_to_ids(list("失望"))]
    with pytest.raises(ConfigError, match="different token lengths"):
        label_token_ids({"pos": "好", "neg": "失望"}, tokenizer)
    with pytest.raises(ConfigError, match="cannot spell"):
        label_token_ids({"pos": "好", "neg": "龘"}, tokenizer)
    task = cloze(verbalizer="pos=满意,neg=失望")
    feature = task.encode([Row(text="质量好", label="pos")], tokenizer, 32)[0]
    assert feature["input_ids"].count(tokenizer.mask_token_id) == 2 and feature["labels"] == 0


def test_several_words_a_label_are_one_row_each_label_by_label(tiny_mlm_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    words = cloze(verbalizer="pos=好|棒|快, neg = 差").options.words()
    assert words == {"pos": ("好", "棒", "快"), "neg": ("差",)}
    assert label_token_ids(words, tokenizer) == [[tokenizer.convert_tokens_to_ids(w)] for w in "好棒快差"]
    assert word_labels(words) == [0, 0, 0, 1]
    with pytest.raises(ConfigError, match="different token lengths"):
        label_token_ids(cloze(verbalizer="pos=好|满意,neg=差").options.words(), tokenizer)


@pytest.mark.parametrize("options, error", [
    ({"verbalizer": "pos=好|,neg=差"}, "label=word"),
    ({"verbalizer": "pos=好|好,neg=差"}, "given twice"),
    ({"verbalizer": "pos=好|棒,neg=差|棒"}, r"\['棒'\]"),
    ({"pattern": "{text}"}, r"\[MASK\] exactly once"),
    ({"pattern": "很[MASK]"}, "{text} once"),
    ({"verbalizer": "pos=好"}, "at least 2 labels"),
    ({"verbalizer": "pos=好,neg"}, "label=word"),
    ({"verbalizer": "pos=好,neg=好"}, "share a word"),
])
def test_bad_patterns_and_verbalizers_are_refused(options, error):
    with pytest.raises(ConfigError, match=error):
        cloze(**options)


def test_label_scores_are_the_mean_log_probability_of_each_words_tokens():
    logits = torch.log(torch.tensor([[[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]]))  # batch 1, 2 masks, vocab 3
    scores = label_scores(logits, torch.tensor([[0, 2], [1, 0]]))
    expected = [(math.log(0.5) + math.log(0.8)) / 2, (math.log(0.3) + math.log(0.1)) / 2]
    assert scores[0].tolist() == pytest.approx(expected, abs=1e-6)


def test_a_labels_score_is_the_mean_over_its_words():
    logits = torch.log(torch.tensor([[[0.5, 0.3, 0.2]]]))  # batch 1, 1 mask, vocab 3
    scores = label_scores(logits, torch.tensor([[0], [2], [1]]), torch.tensor([0, 0, 1]))
    assert scores[0].tolist() == pytest.approx([(math.log(0.5) + math.log(0.2)) / 2, math.log(0.3)], abs=1e-6)


@pytest.mark.parametrize("calibrate", [False, True])
def test_several_words_score_as_the_mean_of_one_word_verbalizers(calibrate, tiny_mlm_dir):
    """A label's logit with words 好|棒 is the mean of its logits with 好 alone and 棒 alone (calibrated or
    not: the content-free prior averages the same way), read through the saved model's forward."""
    texts = [t for t, _ in SENTIMENT]

    def logits(verbalizer):
        predictor = Predictor.zero_shot(tiny_mlm_dir, cloze(verbalizer=verbalizer, calibrate=calibrate))
        batch = predictor.tokenizer(texts[0] + "很" + predictor.tokenizer.mask_token, return_tensors="pt")
        with torch.no_grad():
            return predictor.model(**batch).logits[0]

    both = logits("pos=好|棒,neg=差|烂")
    expected = (logits("pos=好,neg=差") + logits("pos=棒,neg=烂")) / 2
    assert both.tolist() == pytest.approx(expected.tolist(), abs=1e-5)
    assert not torch.allclose(logits("pos=好,neg=差"), logits("pos=棒,neg=烂"))  # the words do differ


def test_the_text_is_cut_never_the_pattern(tiny_mlm_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    tokenizer.model_max_length = 32  # the text is longer: measuring it before the cut must not warn of indexing errors
    task = cloze()
    (feature,) = task.encode([Row(text="好" * 100)], tokenizer, 16, with_labels=False)
    ids = feature["input_ids"]
    assert len(ids) == 16 and ids[-3:] == [tokenizer.convert_tokens_to_ids("很"), tokenizer.mask_token_id,
                                           tokenizer.sep_token_id]
    assert "sequence-length-is-longer-than-the-specified-maximum" not in tokenizer.deprecation_warnings


def test_zero_shot_predicts_without_a_training_step_and_calibration_zeroes_the_empty_text(tmp_path, tiny_mlm_dir):
    from safetensors.torch import load_file

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    out = train(tiny_train_config(tmp_path, tiny_mlm_dir, data, task="cloze-classification", method="zero-shot",
                                  pattern=PATTERN, verbalizer="pos=好,neg=差"))
    meta = json.loads((out / "langbert.json").read_text())
    assert meta["steps"] == 0 and not list((out / "checkpoints").glob("checkpoint-*"))
    saved, source = load_file(out / "model.safetensors"), load_file(f"{tiny_mlm_dir}/model.safetensors")
    assert all(torch.equal(saved[k], source[k]) for k in source if k in saved)  # nothing trained
    texts = [t for t, _ in SENTIMENT]
    direct = Predictor.zero_shot(tiny_mlm_dir, cloze())
    assert direct.predict(texts) == Predictor.load(out).predict(texts)
    empty = direct.predict([""])[0]["probabilities"]
    assert empty["pos"] == pytest.approx(0.5, abs=1e-4)  # the content-free input scores level after calibration
    raw = Predictor.zero_shot(tiny_mlm_dir, cloze(calibrate=False)).predict([""])[0]["probabilities"]
    assert abs(raw["pos"] - 0.5) > 1e-4  # a random head prefers one word: what calibration removes


def test_calibration_on_training_texts_levels_their_mean_scores_without_reading_labels(tmp_path, tiny_mlm_dir):
    """With calibration_texts the prior is the mean uncalibrated score over a sample of the training texts:
    after it, those texts' calibrated scores average zero per label, whatever labels they carry."""
    import numpy as np

    from langbert.tasks.forward import forward_batches

    rows = [Row(text=t, label=l) for t, l in SENTIMENT]
    relabelled = [Row(text=r.text, label="pos") for r in rows]
    priors = []
    for training in (rows, relabelled):
        task = cloze(calibration_texts=4)
        task.fit(training)
        model = task.build_model(tiny_mlm_dir)
        priors.append(model.config.langbert_cloze["prior"])
    assert priors[0] == priors[1] and len(task._calibration_rows) == 4
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    calibrated = forward_batches(task, model, tokenizer, task._calibration_rows, 64)
    np.testing.assert_allclose(calibrated.mean(axis=0), 0.0, atol=1e-4)
    content_free = cloze()
    content_free.fit(rows)
    assert content_free.build_model(tiny_mlm_dir).config.langbert_cloze["prior"] != priors[0]
    with pytest.raises(ConfigError, match="calibration_texts"):
        cloze(calibration_texts=4, calibrate=False)


def test_a_checkpoint_without_a_masked_lm_head_is_refused(tiny_model_dir):
    with pytest.raises(ConfigError, match="no masked-LM head"):
        cloze().build_model(tiny_model_dir)


def test_zero_shot_needs_a_head_the_checkpoint_holds(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    with pytest.raises(ConfigError, match="new, untrained head"):
        train(tiny_train_config(tmp_path, tiny_model_dir, data, method="zero-shot"))


def test_training_labels_outside_the_verbalizer_are_refused(tmp_path, tiny_mlm_dir):
    from langbert.errors import DataError

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT] + [{"text": "一般", "label": "mid"}])
    with pytest.raises(DataError, match="'mid'"):
        train(tiny_train_config(tmp_path, tiny_mlm_dir, data, task="cloze-classification", pattern=PATTERN,
                                verbalizer="pos=好,neg=差"))


def test_cli_predicts_and_evaluates_zero_shot_on_a_checkpoint(tmp_path, tiny_mlm_dir, capsys):
    (tmp_path / "in.txt").write_text("很好很喜欢\n很差很失望\n", encoding="utf-8")
    flags = ["--task", "cloze-classification", "--pattern", PATTERN, "--verbalizer", "pos=好,neg=差"]
    assert main(["predict", tiny_mlm_dir, str(tmp_path / "in.txt"), *flags]) == 0
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [l["line"] for l in lines] == [1, 2] and all(l["label"] in ("pos", "neg") for l in lines)
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    assert main(["eval", tiny_mlm_dir, "--data", str(data), *flags, "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "eval.md").exists() and not (tmp_path / "eval.md").exists()
