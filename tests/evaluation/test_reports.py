"""Metric reports: macro-F1 averages over the classes that occur, per-class rows cover every label."""

from __future__ import annotations

import numpy as np
import pytest

from langbert.evaluation import multi_label_report, single_label_report


def test_a_class_absent_from_gold_and_predictions_does_not_pull_macro_f1_down():
    report = single_label_report([0, 0, 0], [0, 0, 0], ["neg", "pos"])
    assert report.metrics["accuracy"] == 1.0
    assert report.metrics["macro_f1"] == 1.0
    assert [row["label"] for row in report.table] == ["neg", "pos"]  # the absent class is still listed
    assert report.table[1]["support"] == 0


def test_a_class_that_is_only_predicted_counts_as_zero():
    report = single_label_report([0, 0, 0], [0, 0, 1], ["neg", "pos", "neutral"])
    # neg: 2 right, 1 missed -> F1 0.8; pos: one spurious prediction -> 0; neutral: nowhere -> not averaged.
    assert report.metrics["macro_f1"] == pytest.approx(0.4)


def test_multi_label_macro_f1_skips_labels_no_example_has():
    gold = np.array([[1, 0, 1], [1, 0, 0]])
    predicted = np.array([[1, 0, 1], [1, 0, 0]])
    report = multi_label_report(gold, predicted, ["a", "b", "c"])
    assert report.metrics["macro_f1"] == 1.0
    assert report.metrics["subset_accuracy"] == 1.0
    predicted[0, 1] = 1  # a spurious "b"
    assert multi_label_report(gold, predicted, ["a", "b", "c"]).metrics["macro_f1"] == pytest.approx(2 / 3)
