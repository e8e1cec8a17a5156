"""Self-training: the surest pseudo-labels, the same number per label, from the previous round's model."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter

import pytest

from langbert import train
from langbert.errors import ConfigError
from langbert.inference import Predictor
from langbert.data.corpus import unlabeled_rows
from langbert.training.self_training import labelled_shares, select_confident
from tests.conftest import SENTIMENT, tiny_train_config, write_jsonl

UNLABELED = ["很好很喜欢啊", "质量好满意了", "服务很棒的", "便宜又好啊", "很差很失望啊", "质量差讨厌了", "服务太烂的",
             "贵又慢不好啊", "喜欢", "讨厌", "很好", "失望"]


def test_the_surest_predictions_the_same_number_per_label():
    predicted = [("pos", 0.9), ("pos", 0.6), ("neg", 0.7), ("pos", 0.99), ("neg", 0.55), ("pos", 0.8)]
    assert select_confident(predicted, 0.5) == [2, 4, 3, 0]  # 3 of 6: round(1.5) = 2 per label, surest first
    assert select_confident(predicted, 0.34) == [2, 3]
    # A label predicted less often than its share gives what it has; the others keep their share.
    assert select_confident([("a", 0.9), ("b", 0.8), ("b", 0.7), ("b", 0.6), ("b", 0.5)], 0.8) == [0, 1, 2]
    assert select_confident([], 0.3) == []


def test_the_surest_predictions_in_the_labelled_rows_proportions():
    predicted = [("pos", 0.9), ("pos", 0.6), ("neg", 0.7), ("pos", 0.99), ("neg", 0.55), ("pos", 0.8),
                 ("neg", 0.65), ("pos", 0.7)]
    assert select_confident(predicted, 0.5, {"pos": 0.75, "neg": 0.25}) == [2, 3, 0, 5]  # 4 kept: 1 neg, 3 pos
    assert select_confident(predicted, 0.5, {"pos": 3, "neg": 1}) == [2, 3, 0, 5]  # weights, not only fractions
    assert select_confident(predicted, 0.5, {"pos": 1.0}) == [3, 0, 5, 7]  # a label the rows lack: none of it
    assert select_confident(predicted, 1.0, {"pos": 0.1, "neg": 0.9}) == [2, 6, 4, 3]  # neg gives all it has
    from langbert.data.rows import Row
    from langbert.tasks import create_task

    rows = [Row("a", "pos"), Row("b", "neg"), Row("c", "pos"), Row("d", "pos")]
    assert labelled_shares(create_task("text-classification", {}), rows) == {"neg": 0.25, "pos": 0.75}
    tagger = create_task("token-classification", {})
    assert labelled_shares(tagger, [Row("我在北京", [(2, 4, "LOC")]), Row("很好", [])]) == {
        "with spans": 0.5, "without spans": 0.5}


def test_unlabeled_texts_are_read_once_and_skip_the_labelled_ones(tmp_path):
    from langbert.data.rows import Row

    f = tmp_path / "u.txt"
    f.write_text("甲\n\n乙\n甲\n丙\n", encoding="utf-8")
    rows = unlabeled_rows([str(f)], [Row(text="丙", label="pos")])
    assert [r.text for r in rows] == ["甲", "乙"] and all(r.label is None and r.source == str(f) for r in rows)


@pytest.fixture(scope="module")
def self_trained(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("self_training")
    data = write_jsonl(tmp / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    pool = tmp / "unlabeled.txt"
    pool.write_text("\n".join(UNLABELED + [t for t, _ in SENTIMENT]) + "\n", encoding="utf-8")
    config = tiny_train_config(tmp, tiny_model_dir, data, unlabeled=[str(pool)], self_training_rounds=2,
                               pseudo_label_fraction=0.5, pooling="mean")
    return config, train(config)


def test_each_round_learns_from_the_previous_ones_surest_labels(self_trained):
    config, out = self_trained
    meta = json.loads((out / "langbert.json").read_text())
    assert meta["config"]["self_training_rounds"] == 2 and meta["metrics"]["dev"]["accuracy"] == 1.0
    rounds = meta["self_training"]
    assert [r["round"] for r in rounds] == [1, 2] and all(r["unlabeled"] == len(UNLABELED) for r in rounds)
    for r in rounds:  # the pseudo-labels are the teacher's own surest predictions
        teacher = Predictor.load(r["teacher"])
        predicted = teacher.predict(UNLABELED)
        kept = select_confident([(p["label"], p["score"]) for p in predicted], 0.5)
        assert r["pseudo_labels"] == dict(sorted(Counter(predicted[i]["label"] for i in kept).items()))
        assert r["lowest_confidence_kept"] == pytest.approx(min(predicted[i]["score"] for i in kept), abs=1e-6)
    assert rounds[0]["teacher"].endswith("round-0") and rounds[1]["teacher"].endswith("round-1")
    assert meta["data"]["rows"]["train"] == len(SENTIMENT) + sum(rounds[1]["pseudo_labels"].values())
    assert [p["label"] for p in Predictor.load(out).predict([t for t, _ in SENTIMENT])] == [l for _, l in SENTIMENT]


def test_a_rerun_reuses_the_rounds_that_finished(self_trained, caplog, monkeypatch):
    from langbert.tasks.sequence_classification import TextClassification

    config, out = self_trained
    # and a task whose own pseudo_label predates partial labels (one argument, a plain 3-tuple) still works
    monkeypatch.setattr(TextClassification, "pseudo_label",
                        lambda self, predicted: (predicted["label"], predicted["label"], predicted["score"]))
    first = (out / "self-training" / "round-1" / "model.safetensors").stat().st_mtime_ns
    (out / "langbert.json").unlink()  # as if stopped during the last round
    older = out / "self-training" / "round-1" / "langbert.json"  # written before a setting existed
    state = json.loads(older.read_text())
    del state["config"]["pseudo_label_teacher"]
    older.write_text(json.dumps(state))
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    with caplog.at_level("INFO", logger="langbert.training.self_training"):
        train(config)
    assert (out / "self-training" / "round-1" / "model.safetensors").stat().st_mtime_ns == first
    assert sum("is finished, reusing it" in m for m in caplog.messages) == 2
    assert "self_training" in json.loads((out / "langbert.json").read_text())


def test_refusals(tmp_path, tiny_model_dir, monkeypatch):
    from langbert.data.rows import Row

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    with pytest.raises(ConfigError, match="self-training and consistency training only"):
        tiny_train_config(tmp_path, tiny_model_dir, data, unlabeled=["x.txt"])
    with pytest.raises(ConfigError, match="self-training only"):
        tiny_train_config(tmp_path, tiny_model_dir, data, pseudo_label_teacher="model+tfidf")
    with pytest.raises(ConfigError, match="pseudo_label_shares and pseudo_label_unsure_below are read by self-tra"):
        tiny_train_config(tmp_path, tiny_model_dir, data, pseudo_label_shares="labelled")
    with pytest.raises(ConfigError, match="read by self-training only"):
        tiny_train_config(tmp_path, tiny_model_dir, data, pseudo_label_unsure_below=0.9)
    with pytest.raises(ConfigError, match=r"pseudo_label_unsure_below must be in \(0, 1\], got 1.5"):
        tiny_train_config(tmp_path, tiny_model_dir, data, self_training_rounds=1, pseudo_label_unsure_below=1.5)
    with pytest.raises(ConfigError, match="task 'text-classification' gives one label per text"):
        train(tiny_train_config(tmp_path, tiny_model_dir, data, self_training_rounds=1, pseudo_label_unsure_below=0.9),
              unlabeled=[Row(text="好")])
    with pytest.raises(ConfigError, match="pseudo_label_fraction"):
        tiny_train_config(tmp_path, tiny_model_dir, data, self_training_rounds=1, pseudo_label_fraction=0)
    with pytest.raises(ConfigError, match="needs unlabelled texts"):
        train(tiny_train_config(tmp_path, tiny_model_dir, data, self_training_rounds=1))
    with pytest.raises(ConfigError, match="self-training and consistency training only"):
        train(tiny_train_config(tmp_path, tiny_model_dir, data), unlabeled=[Row(text="好")])
    with monkeypatch.context() as m:
        m.setenv("WORLD_SIZE", "2")
        with pytest.raises(ConfigError, match="one process"):
            train(tiny_train_config(tmp_path, tiny_model_dir, data, self_training_rounds=1, unlabeled=["zh-corpus"]))
    numbers = write_jsonl(tmp_path / "r.jsonl", [{"text": t, "label": float(i)} for i, (t, _) in enumerate(SENTIMENT)])
    with pytest.raises(ConfigError, match="does not give a confidence with each prediction"):
        train(tiny_train_config(tmp_path, tiny_model_dir, numbers, task="regression", self_training_rounds=1,
                                unlabeled=["zh-corpus"]))


def train_from_cli(tmp_path, tiny_model_dir, *flags: str) -> dict:
    """``langbert train`` in process on ``SENTIMENT`` with ``UNLABELED`` as --unlabeled, plus ``flags``: the
    output folder's langbert.json."""
    from langbert.cli import main

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    pool = tmp_path / "u.txt"
    pool.write_text("\n".join(UNLABELED) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["train", "--model", tiny_model_dir, "--train", str(data), "--dev", str(data), "--output-dir", str(out),
                 "--unlabeled", str(pool), "--batch-size", "8", "--learning-rate", "3e-3", "--max-length", "32",
                 "--no-bf16", "--no-progress", *flags]) == 0
    return json.loads((out / "langbert.json").read_text())


def test_self_training_from_the_cli(tmp_path, tiny_model_dir):
    meta = train_from_cli(tmp_path, tiny_model_dir, "--self-training-rounds", "1", "--max-steps", "20")
    assert sum(meta["self_training"][0]["pseudo_labels"].values()) == 4  # 0.3 of 12, 2 per label


def _co_taught(teacher: str, labelled: list) -> list[tuple[str, float]]:
    """(label, confidence) for each UNLABELED text: the teacher's probabilities averaged with TF-IDF + LR's
    fitted on ``labelled`` rows."""
    from langbert.evaluation.baselines import fit_tfidf_logreg

    model = Predictor.load(teacher).predict(UNLABELED)
    classical = fit_tfidf_logreg(labelled, seed=0)
    tfidf = classical.predict_proba(UNLABELED)
    mean = [{c: (p["probabilities"][c] + q[list(classical.classes_).index(c)]) / 2 for c in ("neg", "pos")}
            for p, q in zip(model, tfidf)]
    return [(max(m, key=m.get), max(m.values())) for m in mean]


def _co_training_rounds(tmp_path, model_dir, teacher: str, rounds: int) -> list[dict]:
    """What each round of a co-training run on SENTIMENT and UNLABELED (half the pool kept) recorded."""
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    pool = tmp_path / "u.txt"
    pool.write_text("\n".join(UNLABELED) + "\n", encoding="utf-8")
    out = train(tiny_train_config(tmp_path, model_dir, data, unlabeled=[str(pool)], self_training_rounds=rounds,
                                  pseudo_label_fraction=0.5, pseudo_label_teacher=teacher, max_steps=20))
    return json.loads((out / "langbert.json").read_text())["self_training"]


def test_a_tfidf_co_teacher_averages_its_probabilities_with_the_models(tmp_path, tiny_model_dir):
    from langbert.data.rows import Row

    [round1] = _co_training_rounds(tmp_path, tiny_model_dir, "model+tfidf", 1)
    predicted = _co_taught(round1["teacher"], [Row(text=t, label=l) for t, l in SENTIMENT])
    kept = select_confident(predicted, 0.5)
    assert round1["labelled_by"] == "model+tfidf" and round1["tfidf_fitted_on"] == len(SENTIMENT)
    assert round1["pseudo_labels"] == dict(sorted(Counter(predicted[i][0] for i in kept).items()))
    assert round1["lowest_confidence_kept"] == pytest.approx(min(predicted[i][1] for i in kept), abs=1e-5)


def test_a_refitted_tfidf_co_teacher_learns_the_previous_rounds_pseudo_labels(tmp_path, tiny_model_dir):
    from langbert.data.rows import Row

    round1, round2 = _co_training_rounds(tmp_path, tiny_model_dir, "model+tfidf-refit", 2)
    labelled = [Row(text=t, label=l) for t, l in SENTIMENT]
    first = _co_taught(round1["teacher"], labelled)
    kept1 = select_confident(first, 0.5)
    # Round 1 is plain co-training; round 2's TF-IDF reads the labels plus round 1's pseudo-labels.
    assert round1["tfidf_fitted_on"] == len(SENTIMENT) and round2["tfidf_fitted_on"] == len(SENTIMENT) + len(kept1)
    refit = _co_taught(round2["teacher"], labelled + [Row(text=UNLABELED[i], label=first[i][0]) for i in kept1])
    kept2 = select_confident(refit, 0.5)
    assert round2["labelled_by"] == "model+tfidf-refit"
    assert round2["pseudo_labels"] == dict(sorted(Counter(refit[i][0] for i in kept2).items()))
    assert round2["lowest_confidence_kept"] == pytest.approx(min(refit[i][1] for i in kept2), abs=1e-5)
    fixed = _co_taught(round2["teacher"], labelled)
    assert min(fixed[i][1] for i in select_confident(fixed, 0.5)) != pytest.approx(round2["lowest_confidence_kept"],
                                                                                  abs=1e-5)


def test_students_of_a_zero_shot_teacher_learn_from_pseudo_labels_alone(tmp_path, tiny_mlm_dir):
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    pool = tmp_path / "u.txt"
    pool.write_text("\n".join(UNLABELED) + "\n", encoding="utf-8")
    settings = dict(task="cloze-classification", method="zero-shot", pattern="{text}很[MASK]",
                    verbalizer="pos=好,neg=差", unlabeled=[str(pool)], self_training_rounds=1, max_steps=10)
    out = train(tiny_train_config(tmp_path, tiny_mlm_dir, data, pseudo_label_fraction=0.5, **settings))
    meta = json.loads((out / "langbert.json").read_text())
    kept = sum(meta["self_training"][0]["pseudo_labels"].values())
    assert meta["data"]["rows"]["train"] == kept > 0  # no labelled row among them
    assert json.loads((out / "self-training" / "round-0" / "langbert.json").read_text())["steps"] == 0
    with pytest.raises(ConfigError, match="zero-shot has none"):
        train(tiny_train_config(tmp_path, tiny_mlm_dir, data, pseudo_label_teacher="model+tfidf",
                                output_dir=str(tmp_path / "other"), **settings))
    with pytest.raises(ConfigError, match="pseudo_label_shares labelled reads the labelled rows' proportions"):
        train(tiny_train_config(tmp_path, tiny_mlm_dir, data, pseudo_label_shares="labelled",
                                output_dir=str(tmp_path / "shares"), **settings))


def test_students_train_for_student_epochs_and_the_first_round_for_epochs(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    pool = tmp_path / "u.txt"
    pool.write_text("\n".join(UNLABELED) + "\n", encoding="utf-8")
    out = train(tiny_train_config(tmp_path, tiny_model_dir, data, unlabeled=[str(pool)], self_training_rounds=1,
                                  pseudo_label_fraction=0.5, max_steps=-1, epochs=2, student_epochs=3))
    meta = json.loads((out / "langbert.json").read_text())
    first = json.loads((out / "self-training" / "round-0" / "langbert.json").read_text())
    kept = sum(meta["self_training"][0]["pseudo_labels"].values())
    assert first["steps"] == 2 * -(-len(SENTIMENT) // 8)
    assert meta["steps"] == 3 * -(-(len(SENTIMENT) + kept) // 8) and kept == 6
    assert meta["config"]["student_epochs"] == 3 and first["config"]["epochs"] == 2
    with pytest.raises(ConfigError, match="student_epochs"):
        tiny_train_config(tmp_path, tiny_model_dir, data, student_epochs=3)
    with pytest.raises(ConfigError, match="student_epochs must be > 0"):
        tiny_train_config(tmp_path, tiny_model_dir, data, self_training_rounds=1, student_epochs=0)


def test_students_can_learn_the_teachers_probabilities_instead_of_its_labels(tmp_path, tiny_model_dir, monkeypatch):
    from langbert.tasks.sequence_classification import TextClassification

    seen = []
    original = TextClassification.soft_targets

    def spy(self, features, rows):
        features = original(self, features, rows)
        seen.extend((row, item.get("labels")) for row, item in zip(rows, features) if row.probabilities)
        return features

    monkeypatch.setattr(TextClassification, "soft_targets", spy)
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    pool = tmp_path / "u.txt"
    pool.write_text("\n".join(UNLABELED) + "\n", encoding="utf-8")
    out = train(tiny_train_config(tmp_path, tiny_model_dir, data, unlabeled=[str(pool)], self_training_rounds=1,
                                  pseudo_label_fraction=0.5, pseudo_label_targets="probabilities"))
    meta = json.loads((out / "langbert.json").read_text())
    assert meta["self_training"][0]["targets"] == "probabilities"
    teacher = Predictor.load(out / "self-training" / "round-0")
    expected = {t: p["probabilities"] for t, p in zip(UNLABELED, teacher.predict(UNLABELED))}
    kept = {row.text for row, _ in seen}
    assert len(kept) == sum(meta["self_training"][0]["pseudo_labels"].values()) == 6
    labels = sorted(next(iter(expected.values())))  # the task's label order
    for row, target in seen:  # the student's target for a kept text is its teacher's distribution, not 0/1
        assert target == pytest.approx([expected[row.text][label] for label in labels], abs=1e-5)
        assert row.label == max(expected[row.text], key=expected[row.text].get)
    assert any(0.01 < t < 0.99 for _, target in seen for t in target)
    assert len(Predictor.load(out).predict(UNLABELED[:2])) == 2
    with pytest.raises(ConfigError, match="pseudo_label_targets"):
        tiny_train_config(tmp_path, tiny_model_dir, data, pseudo_label_targets="probabilities")


def _partial_labels(tmp_path, config, out, pool, teacher, monkeypatch):
    """With pseudo_label_unsure_below, the kept sentences' tokens the teacher was less sure of reach the
    student untagged, the sentences ranked by their least sure tag among the others."""
    import statistics

    from langbert.data.rows import Row
    from langbert.tasks.forward import forward_batches
    from langbert.training import self_training

    outputs = forward_batches(teacher.task, teacher.model, teacher.tokenizer, [Row(t) for t in pool],
                              teacher.max_length)
    below = statistics.median(p for o in outputs for p in o.each)  # half the tags untagged
    judged = [teacher.task.pseudo_label(p, o, below) for p, o in zip(teacher.predict(pool), outputs)]
    kept = select_confident([(j.group, j.confidence) for j in judged], 0.4)
    seen = []
    real = self_training._finished_or_train
    monkeypatch.setattr(self_training, "_finished_or_train", lambda c, cb, splits, u: seen.append(splits.train)
                        or real(c, cb, splits, u))
    shutil.copytree(out / "self-training" / "round-0", tmp_path / "partial" / "self-training" / "round-0")
    partial = train(dataclasses.replace(config, output_dir=str(tmp_path / "partial"), pseudo_label_unsure_below=below),
                    unlabeled=[Row(t) for t in pool])
    (record,) = json.loads((partial / "langbert.json").read_text())["self_training"]
    untagged = {pool[i]: judged[i].untagged for i in kept}
    assert 0 < record["untagged_characters"] == sum(e - s for u in untagged.values() for s, e in u or ())
    assert record["untagged_characters"] < record["characters"] == sum(len(t) for t in untagged)
    assert record["lowest_confidence_kept"] == pytest.approx(min(judged[i].confidence for i in kept), abs=1e-6)
    students = [r for r in seen[-1] if r.text in untagged]
    assert {r.text: r.untagged for r in students} == untagged
    assert Predictor.load(partial).predict(pool[:2])


def test_sequence_labelling_students_learn_the_teachers_surest_sentences(tmp_path, tiny_model_dir, monkeypatch):
    """Token classification: the teacher tags every unlabelled sentence, the surest (by their least sure tag)
    are kept with all their predicted spans, as many with spans as without, and the student trains on them
    beside the labelled ones."""
    from langbert.data.rows import Row
    from tests.tasks.test_token_classification import NER, _rows

    pool = ["他在北京", "我喜欢北京", "你在中国发布了", "上海很好", "我在上海", "他喜欢iPhone", "北京上海", "我你他", "我很好",
            "你喜欢他"]
    config = tiny_train_config(tmp_path, tiny_model_dir, _rows(tmp_path), task="token-classification", crf=True,
                               max_steps=150, eval_steps=150, dropout=0.0, learning_rate=5e-3,
                               self_training_rounds=1, pseudo_label_fraction=0.4)
    out = train(config, unlabeled=[Row(t) for t in pool])
    (record,) = json.loads((out / "langbert.json").read_text())["self_training"]
    assert record["pseudo_labels"] == {"with spans": 2, "without spans": 2} and record["unlabeled"] == len(pool)
    teacher = Predictor.load(record["teacher"])
    predicted = teacher.predict(pool)
    judged = [teacher.task.pseudo_label(p) for p in predicted]
    assert [j.group for j in judged].count("without spans") == 3  # the model found every name
    kept = select_confident([(j.group, j.confidence) for j in judged], 0.4)
    assert record["lowest_confidence_kept"] == pytest.approx(min(judged[i].confidence for i in kept), abs=1e-6)
    assert 0 < record["lowest_confidence_kept"] <= 1
    meta = json.loads((out / "langbert.json").read_text())
    assert meta["data"]["rows"]["train"] == len(NER) + 4
    student = Predictor.load(out).predict([t for t, _ in NER])
    assert [[(s["start"], s["end"], s["type"]) for s in p["spans"]] for p in student] == [e for _, e in NER]
    # Every labelled sentence holds a name: in the labelled proportions, all 4 kept ones have spans (the
    # same teacher, copied in as the finished first round).
    shutil.copytree(out / "self-training" / "round-0", tmp_path / "shares" / "self-training" / "round-0")
    shared = train(dataclasses.replace(config, output_dir=str(tmp_path / "shares"), pseudo_label_shares="labelled"),
                   unlabeled=[Row(t) for t in pool])
    (record,) = json.loads((shared / "langbert.json").read_text())["self_training"]
    assert record["pseudo_labels"] == {"with spans": 4} and record["labelled_shares"] == {"with spans": 1.0}
    assert record["teacher"] == str(tmp_path / "shares" / "self-training" / "round-0")  # reused, not retrained
    _partial_labels(tmp_path, config, out, pool, teacher, monkeypatch)
    with pytest.raises(ConfigError, match="pseudo_label_targets probabilities read probabilities over one label"):
        train(dataclasses.replace(config, output_dir=str(tmp_path / "soft"), pseudo_label_targets="probabilities"),
              unlabeled=[Row(t) for t in pool])
    with pytest.raises(ConfigError, match="does not predict one label per text"):
        train(dataclasses.replace(config, output_dir=str(tmp_path / "uda"), self_training_rounds=0,
                                  consistency_weight=1.0), unlabeled=[Row(t) for t in pool])
