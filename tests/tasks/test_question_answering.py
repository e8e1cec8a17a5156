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
from langbert.tasks.answers import answer_f1, answer_spans, cmrc_segments, exact_match, scoring_for, squad_tokens
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


@pytest.mark.parametrize("scoring,predicted,golds,em,f1", [
    # Cases worked by the rules of the SQuAD v2.0 evaluation script
    ("squad", "$5 million", ["5 million"], 1.0, 1.0),           # ASCII punctuation goes
    ("squad", "the red car", ["a red car"], 1.0, 1.0),          # so do articles
    ("squad", "red car", ["the big red car"], 0.0, 2 * (1 * 2 / 3) / (1 + 2 / 3)),
    ("squad", "北京大学", ["北京"], 0.0, 0.0),                     # no spaces: one token each
    ("squad", "", [""], 1.0, 1.0),
    ("squad", "北京", [""], 0.0, 0.0),
    # ... and of the CMRC 2018 script (v5)
    ("cmrc2018", "北大", ["北京大学"], 0.0, 1 / 3),                 # longest common substring: 北 (or 大)
    ("cmrc2018", "北京。", ["上海", "北京"], 1.0, 1.0),              # its punctuation list goes
    ("cmrc2018", "iPhone 12发布", ["iphone 12"], 0.0, 2 * 0.5 / 1.5),
    ("cmrc2018", "京大学", ["北京大学"], 0.0, 2 * 1 * 0.75 / 1.75),
    ("cmrc2018", "", [""], 1.0, 1.0),
])
def test_answers_are_scored_by_each_official_definition(scoring, predicted, golds, em, f1):
    assert exact_match(predicted, golds, scoring) == em
    assert answer_f1(predicted, golds, scoring) == pytest.approx(f1)


def test_the_two_tokenisations_and_which_one_a_corpus_gets():
    assert squad_tokens("The iPhone, $5!") == ["iphone", "5"]
    assert cmrc_segments("2024年iPhone, 发布！") == ["2024", "年", "iphone", ",", "发", "布"]
    assert scoring_for(["小明住在北京。", "他在书店工作"]) == "cmrc2018"
    assert scoring_for(["The delivery arrived on Monday.", "北京"]) == "squad"


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
    task = create_task("question-answering", {"scoring": "cmrc2018"})
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
    # "年iphone" is one whitespace token to SQuAD's script: no credit there
    assert metrics["f1_squad"] == 0.5 and metrics["f1_cmrc2018"] == metrics["f1"] and metrics["scoring_cmrc2018"] == 1.0
