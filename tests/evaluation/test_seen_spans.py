"""Recall on spans seen and unseen in training: the split follows the span's text (not its type), the
digests round-trip, and a token-classification report carries the split when the training spans are known."""

from __future__ import annotations

import pytest

from langbert.data.rows import Row
from langbert.evaluation.seen_spans import SeenSpans, seen_recall
from langbert.tasks import create_task


def test_seen_and_unseen_spans_are_split_by_text_whatever_the_type():
    seen = SeenSpans.from_rows([Row("我在北京", [(2, 4, "LOC")]), Row("张三来了", [(0, 2, "PER")])])
    assert "北京" in seen and "张三" in seen and "上海" not in seen and len(seen) == 2
    assert SeenSpans.from_text(seen.to_text()).digests == seen.digests
    assert "北京" not in seen.to_text()  # digests, not the training split's text
    texts = ["北京和上海", "张三"]
    gold = [[(0, 2, "ORG"), (3, 5, "LOC")], [(0, 2, "PER")]]  # 北京 typed otherwise than in training: still seen
    predicted = [[(0, 2, "ORG"), (3, 4, "LOC")], [(0, 2, "LOC")]]  # 上海 cut short, 张三 mistyped
    assert seen_recall(texts, gold, predicted, seen) == {
        "oov_recall": 0.0, "iv_recall": pytest.approx(0.5), "oov_rate": pytest.approx(1 / 3), "oov_spans": 1}
    none = seen_recall([], [], [], seen)
    assert none["oov_recall"] == 0.0 and none["oov_rate"] == 0.0


def test_a_fitted_tagger_reports_recall_on_unseen_words():
    task = create_task("token-classification", {"tag_scheme": "BMES"})
    words = lambda text, cuts: [(a, b, "W") for a, b in zip(cuts, cuts[1:])]  # noqa: E731
    task.fit([Row("我们喜欢北京", words("我们喜欢北京", [0, 2, 4, 6]))])
    ids = {t: i for i, t in enumerate(task.labels)}
    test = Row("我们喜欢上海", words("我们喜欢上海", [0, 2, 4, 6]))
    # 我们 and 喜欢 right; the unseen 上海 split in two.
    tags = ["B", "E", "B", "E", "S", "S"]  # one type: plain BMES
    report = task.evaluate([[(i, i + 1, ids[t]) for i, t in enumerate(tags)]], [test])
    assert report.metrics["iv_recall"] == 1.0 and report.metrics["oov_recall"] == 0.0
    assert report.metrics["oov_rate"] == pytest.approx(1 / 3)
    unfitted = type(task)(task.options, labels=task.labels, types=task.types)  # as loaded from an older folder
    assert "oov_recall" not in unfitted.evaluate([[(i, i + 1, ids[t]) for i, t in enumerate(tags)]], [test]).metrics
