"""Extractive QA: answers read against their context, token targets that map back to the exact characters
across windows, span decoding over windows, SQuAD-style scoring that is not English-only."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoTokenizer

from langbert.data.rows import Row
from langbert.errors import DataError
from langbert.tasks import create_task
from langbert.tasks.question_answering import QuestionAnswering
from langbert.tasks.answers import answer_spans, answer_tokens, exact_match, token_f1
from tests.conftest import write_jsonl


def test_answers_are_read_in_squad_and_plain_forms_and_checked_against_the_context():
    context = "2024年iPhone在北京发布"
    assert answer_spans({"text": ["北京"], "answer_start": [12]}, context) == ((12, 14),)
    assert answer_spans([{"text": "iPhone", "answer_start": 5}, {"text": "北京", "answer_start": 12}], context) == \
        ((5, 11), (12, 14))
    assert answer_spans("iPhone", context) == ((5, 11),)
    assert answer_spans({"text": [], "answer_start": []}, context) == ()  # unanswerable
    with pytest.raises(ValueError, match="not at character 11 of the context"):
        answer_spans({"text": ["北京"], "answer_start": [11]}, context)
    with pytest.raises(ValueError, match="does not occur in the context"):
        answer_spans("上海", context)
    with pytest.raises(ValueError, match="equal length"):
        answer_spans({"text": ["北京"], "answer_start": []}, context)


def test_a_bad_answer_is_an_error_naming_file_line_and_field(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [
        {"question": "在哪", "context": "我在北京", "answers": {"text": ["北京"], "answer_start": [2]}},
        {"question": "在哪", "context": "我在北京", "answers": {"text": ["北京"], "answer_start": [1]}}])
    task = create_task("question-answering")
    with pytest.raises(DataError, match=r"qa.jsonl:2: field 'answers': answer '北京' is not at character 1"):
        task.read(path)
    (row,) = task.read(write_jsonl(tmp_path / "ok.jsonl", [
        {"q": "在哪", "c": "我在北京", "a": "北京"}]), columns=_columns("q", "c", "a"))
    assert (row.text, row.pair, row.label) == ("在哪", "我在北京", ((2, 4),))


def _columns(text, pair, label):
    from langbert.data.readers import Columns

    return Columns(text, pair, label)


def test_answer_targets_map_back_to_the_answer_in_every_window_that_holds_it(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    context = "我的服务很差" * 4 + "2024年iphone在北京发布" + "你的服务很慢" * 4
    start = context.index("iphone")
    row = Row(text="什么发布", label=((start, start + 6),), pair=context)
    task = create_task("question-answering", {"stride": 8})
    features = task.encode([row], tokenizer, max_length=32)
    assert len(features) >= 3, "the context must need several windows"
    holding = [f for f in features if f["start_positions"] != 0]
    assert holding, "some window holds the answer"
    for f in holding:
        offsets = f["_offsets"]
        assert context[offsets[f["start_positions"]][0]:offsets[f["end_positions"]][1]] == "iphone"
    for f in features:
        first, last = f["_context"]
        covers = f["_offsets"][first][0] <= start and f["_offsets"][last][1] >= start + 6
        assert (f["start_positions"] != 0) == covers, "a window without all of the answer points at [CLS]"
    # Every character of the context sits in some window.
    seen = set()
    for f in features:
        first, last = f["_context"]
        for s, e in f["_offsets"][first:last + 1]:
            seen.update(range(s, e))
    assert seen == set(range(len(context)))


def _window(n, context, span, best, null=0.0):
    start, end = np.full(n, -5.0), np.full(n, -5.0)
    start[0] = end[0] = null
    start[span[0]], end[span[1]] = best, best
    return {"start": start, "end": end, "offsets": [(0, 0)] + [(i, i + 1) for i in range(n - 1)], "context": context}


def test_the_answer_is_the_best_span_over_all_windows_and_none_only_for_unanswerable_tasks():
    row = Row(text="q", pair="abcdefghij")
    weak, strong = _window(11, (1, 10), (2, 3), 1.0), _window(11, (1, 10), (6, 8), 4.0)
    task = create_task("question-answering")
    (prediction,) = task.decode([[weak, strong]], [row])
    assert (prediction["answer"], prediction["start"], prediction["end"]) == ("fgh", 5, 8)
    confident_null = _window(11, (1, 10), (6, 8), 1.0, null=6.0)
    assert task.decode([[confident_null]], [row])[0]["answer"] == "fgh"  # trained without unanswerable rows
    task.unanswerable = True
    (none,) = task.decode([[confident_null]], [row])
    assert (none["answer"], none["start"], none["end"]) == ("", None, None) and 0 < none["score"] <= 1
    # Spans longer than MAX_ANSWER_TOKENS or ending before they start are never answers.
    backwards = _window(11, (1, 10), (8, 3), 9.0)
    assert task.decode([[backwards, weak]], [row])[0]["answer"] != "defgh"


def test_answers_are_scored_on_characters_for_cjk_and_words_elsewhere():
    assert answer_tokens("北京2024年, The iPhone!") == ["北", "京", "2024", "年", "the", "iphone"]
    assert exact_match("北京。", ["上海", "北京"]) == 1.0
    assert token_f1("北京大学", ["北京"]) == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert token_f1("the red car", ["a red car"]) == pytest.approx(2 / 3)
    assert token_f1("", [""]) == 1.0 and token_f1("北京", [""]) == 0.0


def test_evaluation_reports_exact_match_f1_and_both_halves_of_unanswerable_data():
    task = QuestionAnswering(unanswerable=True)
    rows = [Row("q", ((2, 4),), "abcdefghij"), Row("q", (), "abcdefghij")]
    outputs = [[_window(11, (1, 10), (3, 4), 4.0)], [_window(11, (1, 10), (3, 4), 1.0, null=5.0)]]
    metrics = task.evaluate(outputs, rows).metrics
    assert metrics["exact_match"] == 1.0 and metrics["f1"] == 1.0 and metrics["questions"] == 2
    assert metrics["answerable_f1"] == 1.0 and metrics["unanswerable_accuracy"] == 1.0


def test_a_trained_qa_head_carries_on_when_fine_tuned_again(tmp_path, tiny_model_dir):
    import torch

    from langbert import train
    from tests.conftest import tiny_train_config

    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "我在哪", "context": "我在北京", "answers": "北京"}])
    out = train(tiny_train_config(tmp_path, tiny_model_dir, path, task="question-answering", max_steps=2,
                                  eval_steps=2))
    task = create_task("question-answering")
    again, saved = task.build_model(str(out)), task.load_model(str(out))
    assert torch.equal(again.qa_outputs.weight, saved.qa_outputs.weight)
    fresh = task.build_model(tiny_model_dir)  # a body without a QA head gets a new one
    assert fresh.qa_outputs.weight.shape == saved.qa_outputs.weight.shape
    # A hub QA model names its two outputs LABEL_0 and LABEL_1: its head carries on too.
    from transformers import AutoTokenizer, BertForQuestionAnswering

    hub = BertForQuestionAnswering.from_pretrained(tiny_model_dir)
    assert hub.config.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    hub.save_pretrained(tmp_path / "hub-qa")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "hub-qa")
    assert torch.equal(task.build_model(str(tmp_path / "hub-qa")).qa_outputs.weight, hub.qa_outputs.weight)


def test_the_dev_metric_during_training_is_answer_f1_over_questions(tiny_model_dir):
    from types import SimpleNamespace

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [Row("在哪", ((2, 4),), "我在北京"), Row("什么发布", ((5, 11),), "2024年iphone在北京发布")]
    task = create_task("question-answering")
    features = task.encode(rows, tokenizer, max_length=32)
    longest = max(len(f["input_ids"]) for f in features)
    start, end = np.full((len(features), longest), -100.0), np.full((len(features), longest), -100.0)
    for i, f in enumerate(features):  # right on the first row, one token too early a start on the second
        start[i, :len(f["input_ids"])] = end[i, :len(f["input_ids"])] = 0.0
        start[i, f["start_positions"] - (i == 1)] = 5.0
        end[i, f["end_positions"]] = 5.0
    gold = (np.array([f["start_positions"] for f in features]), np.array([f["end_positions"] for f in features]))
    prediction = SimpleNamespace(predictions=(start, end), label_ids=gold)
    assert set(task.compute_metrics(prediction)) == {"window_f1"}  # bare windows: never called "f1"
    task.bind_eval(rows, features)
    metrics = task.compute_metrics(prediction)
    # "年iphone" predicted for "iphone": tokens 年, iphone against iphone -> F1 2/3
    assert metrics["exact_match"] == 0.5 and metrics["f1"] == pytest.approx((1.0 + 2 / 3) / 2)
