"""Sequence labelling: alignment, windows, CRF, readers, entity-level evaluation, overfit + reload."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from langbert import Predictor, train
from langbert.data.sequence_readers import read_conll, read_span_jsonl
from langbert.data.spans import spans_to_tags, tags_to_spans
from langbert.errors import DataError
from langbert.tasks import create_task
from langbert.tasks.crf import CRF, allowed_transitions
from tests.conftest import served, tiny_train_config, transformers_warnings, write_jsonl

NER = [
    ("我在北京发布了", [(2, 4, "LOC")]),
    ("他喜欢上海", [(3, 5, "LOC")]),
    ("中国人民很好", [(0, 2, "LOC")]),
    ("2024年iPhone在北京发布", [(5, 11, "PRD"), (12, 14, "LOC")]),
    ("你在上海", [(2, 4, "LOC")]),
    ("我喜欢iPhone", [(3, 9, "PRD")]),
]


def _rows(tmp_path):
    return write_jsonl(tmp_path / "ner.jsonl", [{"text": t, "entities": [list(s) for s in e]} for t, e in NER])


@pytest.mark.parametrize("crf", [False, True])
def test_ner_overfits_and_reloads(tmp_path, tiny_model_dir, crf):
    path = _rows(tmp_path)
    config = tiny_train_config(tmp_path, tiny_model_dir, path, task="token-classification", crf=crf, max_steps=150,
                               eval_steps=75, dropout=0.0, learning_rate=5e-3)
    out = train(config)
    texts = [t for t, _ in NER]
    with transformers_warnings() as warnings:
        first = Predictor.load(out).predict(texts)
    # A saved model loads as saved: no HF load report (it listed the CRF's keys as UNEXPECTED).
    assert not [w for w in warnings if "LOAD REPORT" in w]
    assert first == Predictor.load(out).predict(texts)
    padded = Predictor.load(out, unpadded=False)
    assert Predictor.load(out).unpadded and not padded.unpadded
    assert padded.predict(texts) == first
    got = [[(s["start"], s["end"], s["type"]) for s in p["spans"]] for p in first]
    assert got == [e for _, e in NER]
    assert first[3]["spans"][0]["text"] == "iPhone"
    assert served(out, texts) == json.loads(json.dumps(first))  # spans over HTTP as from Predictor
    meta = json.loads((out / "langbert.json").read_text())
    assert meta["metrics"]["dev"]["entity_f1"] == 1.0 and meta["task"]["options"]["crf"] is crf
    assert meta["best_dev_metric"] == {"entity_f1": meta["metrics"]["dev"]["entity_f1"]}
    assert "eval_char_tag_accuracy" in (out / "metrics.jsonl").read_text()  # dev scored on characters
    assert (out / "crf.safetensors").exists() is crf
    # The training spans are kept as digests, so a reloaded model splits recall on seen and unseen spans too.
    assert meta["metrics"]["dev"]["oov_rate"] == 0.0 and meta["metrics"]["dev"]["iv_recall"] == 1.0
    assert (out / "training_spans.digests").is_file() and "北京" not in (out / "training_spans.digests").read_text()
    from langbert.data.rows import Row
    unseen = Predictor.load(out).evaluate([Row("我在北京工作", [(2, 4, "LOC")]), Row("他去了南京", [(3, 5, "LOC")])])
    assert unseen.metrics["oov_spans"] == 1 and unseen.metrics["oov_rate"] == 0.5
    assert "| support | missed | wrong_bounds | wrong_type | spurious |" in (out / "eval.md").read_text()
    assert (out / "errors_dev.png").exists()


def test_crf_scores_learn_at_their_own_rate(tmp_path, tiny_model_dir):
    from transformers import TrainerCallback

    seen = {}

    class Spy(TrainerCallback):
        def on_step_end(self, args, state, control, optimizer=None, model=None, **kwargs):
            seen.setdefault("groups", getattr(optimizer, "optimizer", optimizer).param_groups)
            seen.setdefault("crf", list(model.crf.parameters()))

    config = tiny_train_config(tmp_path, tiny_model_dir, _rows(tmp_path), task="token-classification", crf=True,
                               learning_rate=1e-3, crf_lr_scale=50.0, scheduler="constant", max_steps=2, eval_steps=2)
    train(config, callbacks=[Spy()])
    crf_ids = {id(p) for p in seen["crf"]}
    (crf_group,) = [g for g in seen["groups"] if any(id(p) in crf_ids for p in g["params"])]
    assert {id(p) for p in crf_group["params"]} == crf_ids and crf_group["lr"] == pytest.approx(5e-2)
    assert all(g["lr"] == pytest.approx(1e-3) for g in seen["groups"] if g is not crf_group)


def test_alignment_round_trips_on_mixed_text(tiny_model_dir):
    from transformers import AutoTokenizer

    task = create_task("token-classification")
    from langbert.data.rows import Row

    row = Row(text="2024年iPhone在北京发布", label=[(5, 11, "PRD"), (12, 14, "LOC")])
    task.fit([row])
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    (feature,) = task.encode([row], tok, 64)
    # Feed the gold labels back as if predicted: the spans must come back with the same character offsets.
    tokens = task.gather([feature["labels"]], [feature], [row])
    assert task.spans(tokens[0]) == row.label


def test_sliding_windows_find_an_entity_across_a_border_once(tiny_model_dir):
    from transformers import AutoTokenizer

    from langbert.data.rows import Row

    text = "我" * 13 + "北京" + "你" * 27
    row = Row(text=text, label=[(13, 15, "LOC")])
    task = create_task("token-classification", {"stride": 4})
    task.fit([row])
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.model_max_length = 16
    with transformers_warnings() as logged:
        features = task.encode([row], tok, 16)
    # transformers' "will result in indexing errors" would be wrong: the model gets 16-token windows
    assert not [m for m in logged if "indexing errors" in m]
    assert len(features) > 3, "a 42-character text in 16-token windows needs several windows"
    assert features[0]["_offsets"][features[0]["_valid"][-1]][0] == 13, "the first window must end inside the entity"
    tokens = task.gather([f["labels"] for f in features], features, [row])
    assert task.spans(tokens[0]) == [(13, 15, "LOC")]
    assert [s for s, _, _ in tokens[0]] == list(range(len(text))), "every character exactly once"


class _DropsLastWindow:
    """A tokenizer as tokenizers 0.23.1-0.23.2 behave (huggingface/tokenizers#2091): overflow cut short."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def __call__(self, texts, **kwargs):
        enc = self.tokenizer(texts, **kwargs)
        if not kwargs.get("return_overflowing_tokens"):
            return enc
        rows = enc["overflow_to_sample_mapping"]
        keep = [w for w in range(len(rows)) if w + 1 < len(rows) and rows[w + 1] == rows[w] or rows.count(rows[w]) == 1]
        return {k: [v[w] for w in keep] for k, v in enc.items()}


def test_windows_that_stop_before_the_text_does_are_refused(tiny_model_dir):
    from transformers import AutoTokenizer

    from langbert.data.rows import Row
    from langbert.errors import LangbertError

    rows = [Row(text="短句", label=[]), Row(text="我" * 13 + "北京" + "你" * 27, label=[(13, 15, "LOC")],
                                          source="ner.jsonl", line=2)]
    task = create_task("token-classification", {"stride": 4})
    task.fit(rows)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert len(task.encode(rows, tok, 16)) > 4  # a working tokenizer passes the check
    with pytest.raises(LangbertError, match=r"ner.jsonl, line 2: .*stop at character 34 of .* 42.*tokenizers#2091"):
        task.encode(rows, _DropsLastWindow(tok), 16)


def test_crf_log_likelihood_matches_brute_force():
    torch.manual_seed(0)
    tags = ["O", "B-X", "I-X"]
    crf = CRF(tags, "BIO")
    with torch.no_grad():
        crf.transitions.normal_()
        crf.start.normal_()
        crf.end.normal_()
    emissions = torch.randn(1, 3, 3)
    mask = torch.ones(1, 3, dtype=torch.bool)
    start, trans, end = crf._scores()
    scores = {}
    for path in itertools.product(range(3), repeat=3):
        s = start[path[0]] + end[path[-1]] + sum(emissions[0, t, path[t]] for t in range(3))
        s = s + sum(trans[path[t], path[t + 1]] for t in range(2))
        scores[path] = s
    log_z = torch.logsumexp(torch.stack(list(scores.values())), 0)
    gold = (1, 2, 0)
    expected = scores[gold] - log_z
    got = crf.log_likelihood(emissions, torch.tensor([gold]), mask)[0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    best = max(scores, key=lambda p: scores[p])
    assert tuple(crf.viterbi(emissions, mask)[0]) == best
    # Partial labels (-1: unknown): the log of the summed probability of every path that agrees with the
    # known tags, here B-X at 0 and O at 2; a padded second sequence in the batch changes nothing.
    agreeing = torch.stack([scores[(1, k, 0)] for k in range(3)])
    got = crf.log_likelihood(torch.cat([emissions, torch.randn(1, 3, 3)]), torch.tensor([[1, -1, 0], [2, -1, -100]]),
                             torch.tensor([[True, True, True], [True, True, False]]))[0]
    torch.testing.assert_close(got, torch.logsumexp(agreeing, 0) - log_z, rtol=1e-5, atol=1e-5)
    everything = crf.log_likelihood(emissions, torch.tensor([[-1, -1, -1]]), mask)[0]
    torch.testing.assert_close(everything, torch.tensor(0.0), rtol=0, atol=1e-5)  # no tag known: certain


@pytest.mark.parametrize("crf", [False, True])
def test_untagged_characters_teach_no_tag(tiny_model_dir, crf):
    """A row's untagged characters: a CRF's label there is UNTAGGED (any tag the scheme allows), without
    a CRF -100 (ignored, as padding is); the characters around keep their tags."""
    from transformers import AutoTokenizer

    from langbert.data.rows import Row
    from langbert.tasks.token_classification import UNTAGGED

    task = create_task("token-classification", {"crf": crf})
    task.fit([Row(t, e) for t, e in NER])
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    full, partial = task.encode([Row("我在北京", [(2, 4, "LOC")]), Row("我在北京", [(2, 4, "LOC")], untagged=((1, 3),))],
                                tok, 16)
    tags = [full["labels"][i] for i in full["_valid"]]
    assert [task.labels[t] for t in tags] == ["O", "O", "B-LOC", "I-LOC"]
    unknown = UNTAGGED if crf else -100
    assert [partial["labels"][i] for i in partial["_valid"]] == [tags[0], unknown, unknown, tags[3]]


def test_viterbi_never_emits_o_then_i():
    tags = ["O", "B-X", "I-X"]
    crf = CRF(tags, "BIO")
    emissions = torch.tensor([[[5.0, 0, 0], [0, 0, 9.0], [0, 0, 9.0]]])  # argmax would say O I I
    path = crf.viterbi(emissions, torch.ones(1, 3, dtype=torch.bool))[0]
    seq = [tags[t] for t in path]
    assert all(not (a == "O" and b.startswith("I")) for a, b in zip(seq, seq[1:])) and seq[0] != "I-X"
    _, allowed, _ = allowed_transitions(["B", "M", "E", "S"], "BMES")
    assert not allowed[0, 3] and allowed[0, 1] and allowed[2, 3] and not allowed[3, 1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: the CRF on it, the emissions on the CPU")
def test_viterbi_decodes_cpu_emissions_with_the_crf_on_a_gpu():
    # The Trainer gathers dev logits on the CPU for compute_metrics while the model (and its CRF) stays on
    # the GPU: the first evaluation of a --crf run on CUDA once stopped with a device mismatch.
    tags = ["O", "B-X", "I-X"]
    emissions = torch.tensor([[[0.0, 5, 0], [0, 0, 9.0], [5.0, 0, 0]]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    on_gpu = CRF(tags, "BIO").to("cuda")
    assert on_gpu.viterbi(emissions, mask) == CRF(tags, "BIO").viterbi(emissions, mask) == [[1, 2, 0]]


def test_spans_tags_round_trip_and_repair():
    spans = [(0, 2, "LOC"), (3, 4, "PER")]
    assert tags_to_spans(spans_to_tags(5, spans, "BIO"), "BIO") == spans
    assert tags_to_spans(spans_to_tags(5, [(0, 2, "W"), (2, 3, "W"), (3, 5, "W")], "BMES"), "BMES") == \
        [(0, 2, "W"), (2, 3, "W"), (3, 5, "W")]


def test_conll_reader_and_its_errors(tmp_path):
    good = tmp_path / "a.conll"
    good.write_text("我 O\n在 O\n北 B-LOC\n京 I-LOC\n\nApple B-ORG\nInc I-ORG\nrocks O\n", encoding="utf-8")
    rows, stats = read_conll(good)
    assert [(r.text, r.label, r.line) for r in rows] == [("我在北京", [(2, 4, "LOC")], 1),
                                                         ("Apple Inc rocks", [(0, 9, "ORG")], 6)]
    orphan = tmp_path / "o.conll"
    orphan.write_text("我 O\n北 I-LOC\n京 I-LOC\n", encoding="utf-8")
    rows, stats = read_conll(orphan)
    assert rows[0].label == [(1, 3, "LOC")] and stats.repaired == 1
    with pytest.raises(DataError, match="continues no entity") as info:
        read_conll(orphan, strict=True)
    assert info.value.line == 1
    bad = tmp_path / "b.conll"
    bad.write_text("我 O\n北 B-LOC extra\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_conll(bad)
    assert info.value.line == 2 and "2 columns" in str(info.value)


@pytest.mark.parametrize("entities,message", [([[0, 9, "LOC"]], "out of range"), ([[0, 2, "A"], [1, 3, "B"]], "overlaps")])
def test_span_jsonl_errors(tmp_path, entities, message):
    path = write_jsonl(tmp_path / "s.jsonl", [{"text": "我在北京", "entities": []}, {"text": "我在北京", "entities": entities}])
    with pytest.raises(DataError, match=message) as info:
        read_span_jsonl(path)
    assert (info.value.line, info.value.field) == (2, "entities")


@pytest.mark.parametrize("untagged,message", [([[4, 9]], "out of range"), ([[3, 5]], "overlaps span"),
                                              ([[4, 6], [5, 6]], "overlaps"), ([4, 6], "a list of")])
def test_span_jsonl_untagged_characters_and_their_errors(tmp_path, untagged, message):
    from langbert.data.rows import Row

    good = {"text": "我在北京上海", "entities": [[2, 4, "LOC"]], "untagged": [[5, 6], [0, 1]]}
    path = write_jsonl(tmp_path / "s.jsonl", [good, {**good, "untagged": untagged}])
    with pytest.raises(DataError, match=message) as info:
        read_span_jsonl(path)
    assert (info.value.line, info.value.field) == (2, "untagged")
    (row,) = read_span_jsonl(write_jsonl(tmp_path / "ok.jsonl", [good]))
    assert row.untagged == ((0, 1), (5, 6)) and row.label == [(2, 4, "LOC")]
    summary = create_task("token-classification").label_summary([row, Row("我在上海", [(2, 4, "LOC")])])
    assert summary == {"labels": {"LOC": 2}, "untagged": {"rows": 1, "characters": 2}}


def test_partially_tagged_training_rows_train_and_are_refused_for_scoring(tmp_path, tiny_model_dir):
    """A training file may leave characters untagged; a dev file may not (its scores need every tag)."""
    partial = [{"text": t, "entities": [list(s) for s in e], "untagged": [[0, 1]]} for t, e in NER if e[0][0] > 0]
    train_file = write_jsonl(tmp_path / "train.jsonl", partial)
    out = train(tiny_train_config(tmp_path, tiny_model_dir, train_file, dev=str(_rows(tmp_path)),
                                  task="token-classification", crf=True, max_steps=4, eval_steps=4))
    assert Predictor.load(out).predict(["我在北京"])
    with pytest.raises(DataError, match="untagged characters in the dev data") as info:
        train(tiny_train_config(tmp_path, tiny_model_dir, _rows(tmp_path), dev=str(train_file),
                                task="token-classification", crf=True, max_steps=4, output_dir=str(tmp_path / "b")))
    assert (info.value.path, info.value.line, info.value.field) == (str(train_file), 1, "untagged")


def test_entity_evaluation_is_strict_and_per_type():
    from langbert.data.rows import Row

    task = create_task("token-classification")
    rows = [Row("我在北京和上海", [(2, 4, "LOC"), (5, 7, "LOC")]), Row("张三好", [(0, 2, "PER")])]
    task.fit(rows)
    ids = {t: i for i, t in enumerate(task.labels)}
    # predictions: LOC 北京 right, 上海 with a wrong boundary, PER right
    pred = [[(2, 3, ids["B-LOC"]), (3, 4, ids["I-LOC"]), (5, 6, ids["B-LOC"])], [(0, 1, ids["B-PER"]), (1, 2, ids["I-PER"])]]
    pred = [[(s, e, t) for s, e, t in p] + [(i, i + 1, ids["O"]) for i in range(len(r.text)) if i not in {s for s, _, _ in p}]
            for p, r in zip(pred, rows)]
    pred = [sorted(p) for p in pred]
    report = task.evaluate(pred, rows)
    assert report.metrics["entity_precision"] == pytest.approx(2 / 3)
    assert report.metrics["entity_recall"] == pytest.approx(2 / 3)
    per_type = {r["label"]: r for r in report.table}
    assert per_type["LOC"]["f1"] == pytest.approx(0.5) and per_type["PER"]["f1"] == 1.0
    assert report.metrics["char_tag_accuracy"] < 1.0
    assert (per_type["LOC"]["wrong_bounds"], per_type["LOC"]["missed"], per_type["PER"]["wrong_bounds"]) == (1, 0, 0)
    assert report.outcomes["LOC"] == {"found": 1, "missed": 0, "wrong_bounds": 1, "wrong_type": 0, "spurious": 0}
    for label, outcome in report.outcomes.items():  # every gold span is found or one of the gold-side errors
        assert outcome["found"] + outcome["missed"] + outcome["wrong_bounds"] + outcome["wrong_type"] == \
            per_type[label]["support"]


def test_the_report_draws_each_types_spans_found_and_errors(tmp_path):
    from langbert.evaluation import Report, write_reports

    report = Report({"entity_f1": 0.8}, [{"label": "LOC", "precision": 0.8, "recall": 0.8, "f1": 0.8, "support": 10}],
                    outcomes={"LOC": {"found": 8, "missed": 1, "wrong_bounds": 1, "wrong_type": 0, "spurious": 2}})
    written = write_reports({"dev": report, "test": report}, tmp_path)
    assert written["plot_dev"].name == "errors_dev.png" and written["plot_test"].name == "errors.png"
    assert written["plot_dev"].stat().st_size > 5000
    assert "![dev](errors_dev.png)" in (tmp_path / "eval.md").read_text()


def test_span_errors_say_what_went_wrong():
    from langbert.data.spans import span_errors

    gold = [(0, 2, "PER"), (3, 5, "LOC"), (6, 8, "LOC"), (9, 11, "ORG"), (12, 14, "PER")]
    predicted = [(0, 2, "PER"), (3, 5, "ORG"), (6, 9, "LOC"), (15, 16, "LOC")]
    assert span_errors(gold, predicted) == {("LOC", "wrong_type"): 1, ("LOC", "wrong_bounds"): 1,
                                            ("ORG", "missed"): 1, ("PER", "missed"): 1, ("LOC", "spurious"): 1}
    assert span_errors(gold, gold) == {}


@pytest.mark.parametrize("scheme", ["BIO", "BMES"])
def test_every_window_is_a_gold_path_the_crf_allows(tiny_model_dir, scheme):
    """Windows cut through an entity must still be valid tag sequences: a CRF cannot score an I-X start."""
    from transformers import AutoTokenizer

    from langbert.data.rows import Row

    if scheme == "BIO":
        rows = [Row(text="我" * k + "北京上海" + "你" * (30 - k), label=[(k, k + 4, "LOC")]) for k in range(8, 20)]
    else:  # segmentation: every character in a word, words of 1 to 5 characters
        rows = []
        for k in range(8, 20):
            bounds = [0, *range(k % 5 + 1, 34, 5), 34]
            rows.append(Row(text=("我北京上海你" * 6)[:34],
                            label=[(a, b, "W") for a, b in zip(bounds, bounds[1:])]))
    task = create_task("token-classification", {"stride": 4, "tag_scheme": scheme, "crf": True})
    task.fit(rows)
    crf = CRF(task.labels, scheme)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    features = task.encode(rows, tok, 16)
    cut = 0
    for f in features:
        tags = torch.tensor([[f["labels"][i] for i in f["_valid"]]])
        assert crf.log_likelihood(torch.zeros(1, tags.shape[1], len(task.labels)), tags,
                                  torch.ones_like(tags, dtype=torch.bool)).item() > -100, task.labels
        first = f["_offsets"][f["_valid"][0]][0]
        cut += 0 < first and any(a < first < b for a, b, _ in rows[f["_row"]].label)
    assert cut, "some window must start inside a span for this test to mean anything"


@pytest.mark.parametrize("crf", [False, True])
def test_the_dev_metric_during_training_is_the_reports_entity_f1(tiny_model_dir, crf):
    from types import SimpleNamespace

    import numpy as np
    from transformers import AutoTokenizer

    from langbert.data.rows import Row

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [Row(t, e) for t, e in NER] + [Row("我在北京" * 12, [(4 * i + 2, 4 * i + 4, "LOC") for i in range(12)])]
    task = create_task("token-classification", {"crf": crf, "stride": 8})
    task.fit(rows)
    if crf:
        task._attach_crf(torch.nn.Module())
    features = task.encode(rows, tokenizer, max_length=16)
    assert len(features) > len(rows), "the long row must run in several windows"
    width = max(len(f["input_ids"]) for f in features) + 3
    logits = np.full((len(features), width, len(task.labels)), -100.0, dtype=np.float32)
    for i, f in enumerate(features):
        logits[i, :len(f["input_ids"])] = 0.0
        for j, gold in enumerate(f["labels"]):
            logits[i, j, gold if gold >= 0 else task.labels.index("O")] = 9.0
    logits[0, 3, :] = 0.0
    logits[0, 3, task.labels.index("O")] = 9.0  # the first row's 北 missed: one LOC lost
    labels = np.full((len(features), width), -100)
    for i, f in enumerate(features):
        labels[i, :len(f["labels"])] = f["labels"]
    prediction = SimpleNamespace(predictions=logits, label_ids=labels)
    assert set(task.compute_metrics(prediction)) == {"window_entity_f1", "window_entity_precision",
                                                     "window_entity_recall"}
    task.bind_eval(rows, features)
    metrics = task.compute_metrics(prediction)
    tags = task.unbatch(None, SimpleNamespace(logits=torch.from_numpy(logits)),
                        {"attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"]))
                                                          for f in features])})
    report = task.evaluate(task.gather(tags, features, rows), rows).metrics
    assert metrics["entity_f1"] == pytest.approx(report["entity_f1"]) and report["entity_f1"] < 1.0
    assert metrics["entity_recall"] == pytest.approx((report["entities"] - 1) / report["entities"])


def test_entity_scores_match_seqeval_in_its_default_and_strict_modes():
    """``entity_f1`` is conlleval's reading (seqeval's default mode), ``entity_f1_strict`` seqeval's strict
    mode: "I-PER I-PER" against "B-PER I-PER" is a hit for the first and a miss for the second."""
    import random

    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    from langbert.data.rows import Row

    task = create_task("token-classification")
    task.fit([Row("甲乙丙", [(0, 1, "PER"), (1, 2, "LOC")])])
    ids = {t: i for i, t in enumerate(task.labels)}
    report = task.evaluate([[(0, 1, ids["I-PER"]), (1, 2, ids["I-PER"])]], [Row("张三", [(0, 2, "PER")])])
    assert report.metrics["entity_f1"] == 1.0 and report.metrics["entity_f1_strict"] == 0.0

    rng = random.Random(0)
    gold_tags, pred_tags, rows, outputs = [], [], [], []
    for _ in range(60):
        n = rng.randint(1, 12)
        gold = [rng.choice(task.labels) for _ in range(n)]
        pred = [rng.choice(task.labels) for _ in range(n)]
        # gold as the data has it: well-formed spans (a reader would repair an orphan the same way)
        from langbert.data.spans import spans_to_tags, tags_to_spans

        spans = tags_to_spans(gold, "BIO")
        gold_tags.append(spans_to_tags(n, spans, "BIO"))
        pred_tags.append(pred)
        rows.append(Row("字" * n, spans))
        outputs.append([(i, i + 1, ids[t]) for i, t in enumerate(pred)])
    metrics = task.evaluate(outputs, rows).metrics
    assert metrics["entity_f1"] == pytest.approx(f1_score(gold_tags, pred_tags))
    assert metrics["entity_f1_strict"] == pytest.approx(f1_score(gold_tags, pred_tags, mode="strict", scheme=IOB2))
    assert metrics["entity_f1_strict"] < metrics["entity_f1"]


def test_strict_bmes_spans_must_end_with_e():
    from langbert.data.spans import tags_to_spans

    tags = ["B-W", "M-W", "O", "B-W", "E-W", "E-W", "S-W", "M-W"]
    assert tags_to_spans(tags, "BMES", strict=True) == [(3, 5, "W"), (6, 7, "W")]
    assert tags_to_spans(tags, "BMES") == [(0, 2, "W"), (3, 5, "W"), (5, 6, "W"), (6, 7, "W"), (7, 8, "W")]


@pytest.mark.parametrize("crf,lexicon_input", [(False, False), (True, False), (True, True)],
                         ids=["softmax", "crf", "crf-lexicon-input"])
def test_a_lexicon_model_overfits_reloads_serves_and_exports(tmp_path, tiny_model_dir, crf, lexicon_input):
    from safetensors.torch import load_file

    from langbert.data.lexicon import Lexicon
    from langbert.inference.export import export_onnx

    words = tmp_path / "words.tsv"
    words.write_text("北京\t10\n上海\t8\niphone\t3\tPRD\n", encoding="utf-8")
    config = tiny_train_config(tmp_path, tiny_model_dir, _rows(tmp_path), task="token-classification", crf=crf,
                               lexicon=[str(words), "train"], lexicon_folds=2, max_steps=150, eval_steps=75,
                               dropout=0.0, learning_rate=5e-3, lexicon_input=lexicon_input)
    out = train(config)
    embedded = [k for k in load_file(str(out / "model.safetensors")) if k.startswith("lexicon_embed")]
    assert embedded == (["lexicon_embed.weight"] if lexicon_input else [])
    texts = [t for t, _ in NER]
    first = Predictor.load(out).predict(texts)
    assert [[(s["start"], s["end"], s["type"]) for s in p["spans"]] for p in first] == [e for _, e in NER]
    assert Predictor.load(out).predict(texts) == first == Predictor.load(out, unpadded=False).predict(texts)
    assert served(out, texts) == json.loads(json.dumps(first))
    saved = Lexicon.from_text((out / "lexicon.tsv").read_text(encoding="utf-8"))
    # Saved whole: the file's words and every training entity (the folds only hide them during training).
    assert {"北京", "上海", "iphone", "iPhone", "中国"} <= set(saved.entries)
    meta = json.loads((out / "langbert.json").read_text())
    assert meta["task"]["lexicon"]["digest"] == saved.digest()
    assert json.loads((out / "config.json").read_text())["langbert_lexicon"]["features"] == len(saved.feature_names())
    parity = export_onnx(out, tmp_path / "onnx", texts=texts, tolerance=1e-4)
    assert parity.passed and parity.label_agreement == 1.0
    assert Predictor.load(tmp_path / "onnx").predict(texts) == first
    with open(out / "lexicon.tsv", "a", encoding="utf-8") as f:
        f.write("广州\t\tlen2\n")
    with pytest.raises(DataError, match="not the lexicon this model was trained with"):
        Predictor.load(out)


def test_the_lexicon_changes_what_the_model_reads_and_training_text_reads_it_out_of_fold(tmp_path):
    from langbert.data.rows import Row
    from langbert.tasks import create_task

    task = create_task("token-classification", {"lexicon": ["train"], "lexicon_folds": 2})
    rows = [Row(text=t, label=e) for t, e in NER]
    task.fit(rows)

    class CharTokenizer:  # one token per character, [CLS]/[SEP] around: enough for the features
        all_special_ids = [0, 1]

        def __call__(self, texts, **kwargs):
            ids = [[0] + [2] * len(t) + [1] for t in texts]
            return {"input_ids": ids, "attention_mask": [[1] * len(i) for i in ids],
                    "offset_mapping": [[(0, 0)] + [(i, i + 1) for i in range(len(t))] + [(0, 0)] for t in texts],
                    "overflow_to_sample_mapping": list(range(len(texts)))}

    names = task.lexicon.full.feature_names()
    unseen = "他在北京"  # not a training sentence: reads every training entity
    (feature,) = task.encode([Row(text=unseen)], CharTokenizer(), 32, with_labels=False)
    assert [[names[i] for i in on] for on in feature["lexicon"][3:5]] == [["B-LOC"], ["E-LOC"]]
    trained = task.encode(rows, CharTokenizer(), 32)
    own_fold = {row.text: task.lexicon.for_text(row.text) for row in rows}
    for row, feature in zip(rows, trained):  # a training sentence's own entities come only from other folds
        for start, end, kind in row.label:
            if row.text[start:end] not in own_fold[row.text].entries:
                assert names.index(f"B-{kind}") not in feature["lexicon"][start + 1]


def test_lexicon_input_starts_at_zero_and_reaches_the_encoder(tmp_path, tiny_model_dir):
    """A new input embedding of the lexicon leaves the pretrained encoder's output as it was, and once
    trained (here: set) it changes what every layer reads, not only the classifier."""
    import torch

    from langbert.data.rows import Row
    from langbert.tasks import create_task

    words = tmp_path / "words.tsv"
    words.write_text("北京\t10\n", encoding="utf-8")
    task = create_task("token-classification", {"lexicon": [str(words)], "lexicon_input": True})
    task.fit([Row(text=t, label=e) for t, e in NER])
    model = task.build_model(tiny_model_dir, dropout=0.0).eval()
    assert model.lexicon_embed.weight.abs().sum() == 0
    assert task.head_modules() == ["classifier", "lexicon_proj", "lexicon_embed"]
    assert sum(len(p) for p, _ in task.lr_scaled_parameters()) == 3  # projection weight and bias, embedding
    ids = torch.tensor([[2, 10, 11, 3]])
    lexicon = torch.zeros(1, 4, model.lexicon_proj.in_features)
    lexicon[0, 1:3, 0] = 1.0
    hidden = lambda: model.bert(inputs_embeds=model.bert.get_input_embeddings()(ids)).last_hidden_state  # noqa: E731
    with torch.no_grad():
        before = model(input_ids=ids, lexicon=lexicon).logits
        expected = model.classifier(hidden() + model.lexicon_proj(lexicon))
        torch.testing.assert_close(before, expected)
        model.lexicon_embed.weight.normal_()
        after = model(input_ids=ids, lexicon=lexicon).logits
    assert (after - before)[0, 0].abs().max() > 1e-3  # [CLS] carries no lexicon word: it changed through attention


@pytest.mark.parametrize("crf", [False, True])
def test_each_prediction_says_how_sure_the_model_was_of_its_least_sure_tag(crf):
    """With a CRF, a position's sureness is the Viterbi path's share of the max-marginals there (checked
    against every allowed path), without one the tag's softmax probability; a row's ``score`` is the
    least sure of its tokens, and a window that does not score its tags leaves the score out."""
    from types import SimpleNamespace

    from langbert.data.rows import Row
    from langbert.tasks.token_classification import SureTags

    task = create_task("token-classification", {"crf": crf})
    task.fit([Row(t, e) for t, e in NER])
    if crf:
        task._attach_crf(torch.nn.Module())
        with torch.no_grad():
            for p in task._crf_module.parameters():
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    k, length = len(task.labels), 4
    logits = torch.randn(2, length + 3, k, generator=torch.Generator().manual_seed(0))  # [CLS] 4 chars [SEP] pad
    mask = torch.tensor([[1] * (length + 2) + [0], [1] * (length + 1) + [0, 0]])
    windows = task.unbatch(None, SimpleNamespace(logits=logits), {"attention_mask": mask})
    for b, n in enumerate((length, length - 1)):
        emissions = logits[b, 1:n + 1]
        if crf:
            start, trans, end = task._crf_module._scores()
            best_with = torch.full((n, k), -float("inf"))
            for path in itertools.product(range(k), repeat=n):
                score = start[path[0]] + end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path)) \
                    + sum(trans[a, y] for a, y in zip(path, path[1:]))
                for t, y in enumerate(path):
                    best_with[t, y] = max(best_with[t, y], score)
            expected = best_with.softmax(-1).amax(-1)
            assert windows[b][1:n + 1] == best_with.argmax(-1).tolist()
        else:
            expected = emissions.softmax(-1).amax(-1)
            assert windows[b][1:n + 1] == emissions.argmax(-1).tolist()
        assert windows[b].sure[1:n + 1] == pytest.approx(expected.tolist(), abs=1e-5)
    features = [{"_row": 0, "_valid": [1, 2, 3, 4], "_offsets": [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (0, 0), (0, 0)]}]
    rows = [Row("我在北京")]
    (tokens,) = task.gather(windows[:1], features, rows)
    assert tokens.sure == pytest.approx(min(windows[0].sure[1:5]))
    assert task.decode([tokens], rows)[0]["score"] == round(tokens.sure, 6)
    (unscored,) = task.gather([list(windows[0])], features, rows)
    assert unscored.sure is None and "score" not in task.decode([unscored], rows)[0]
    assert isinstance(tokens, SureTags) and task.pseudo_label(task.decode([tokens], rows)[0])[1:3] == (
        "with spans" if task.decode([tokens], rows)[0]["spans"] else "without spans", round(tokens.sure, 6))
    assert tokens.each == pytest.approx(windows[0].sure[1:5])


def test_unsure_tags_are_left_untagged_and_the_rest_rank_the_sentence():
    from langbert.data.rows import Row
    from langbert.tasks.token_classification import SureTags

    task = create_task("token-classification", {"crf": True})
    task.fit([Row(t, e) for t, e in NER])
    tokens = [(0, 1, 0), (1, 2, 0), (2, 3, 1), (3, 4, 2), (4, 5, 0)]
    output = SureTags(tokens, 0.5, [0.99, 0.5, 0.6, 0.95, 0.8])
    predicted = {"spans": [{"start": 2, "end": 4, "type": "LOC"}], "score": 0.5}
    assert task.pseudo_label(predicted, output) == (([(2, 4, "LOC")]), "with spans", 0.5, None)
    judged = task.pseudo_label(predicted, output, unsure_below=0.9)
    assert judged == ([(2, 4, "LOC")], "with spans", 0.95, ((1, 3), (4, 5)))
    assert task.pseudo_label(predicted, output, unsure_below=1.0)[2:] == (0.0, ((0, 5),))  # nothing sure
    with pytest.raises(ValueError, match="each token's sureness"):
        task.pseudo_label(predicted, SureTags(tokens, 0.5), unsure_below=0.9)
