"""Soft targets: a teacher's probabilities as what a single-label classifier learns, beside one-hot labels."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from langbert.data.rows import Row, fingerprint
from langbert.tasks import create_task
from langbert.tasks.sequence_classification import cross_entropy

ROWS = [Row(text="好", label="pos"), Row(text="差", label="neg", probabilities=(("pos", 0.3), ("neg", 0.7)))]


@pytest.mark.parametrize("name, options", [("text-classification", {}),
                                           ("cloze-classification", {"pattern": "{text}很[MASK]",
                                                                     "verbalizer": "neg=差,pos=好"})])
def test_rows_with_probabilities_make_every_target_a_distribution_in_label_order(name, options, tiny_mlm_dir):
    from transformers import AutoTokenizer

    task = create_task(name, options)
    task.fit(ROWS)
    assert task.labels == ["neg", "pos"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    assert [f["labels"] for f in task.encode(ROWS, tokenizer, 16)] == [[0.0, 1.0], [0.7, 0.3]]
    # Rows without probabilities keep their label ids, and prediction features carry no target at all.
    assert [f["labels"] for f in task.encode(ROWS[:1], tokenizer, 16)] == [1]
    assert all("labels" not in f for f in task.encode(ROWS, tokenizer, 16, with_labels=False))


def test_cross_entropy_against_probabilities_is_the_soft_formula_and_one_hot_is_the_hard_loss():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.25], [-0.3, 1.2]])
    outputs = SimpleNamespace(logits=logits)
    ids = torch.tensor([0, 1, 1])
    hard = cross_entropy(outputs, ids).item()
    assert hard == pytest.approx(torch.nn.functional.cross_entropy(logits, ids).item())
    assert cross_entropy(outputs, torch.nn.functional.one_hot(ids, 2).float()).item() == pytest.approx(hard)
    soft = torch.tensor([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]])
    expected = -(soft * logits.log_softmax(-1)).sum(-1).mean().item()
    assert cross_entropy(outputs, soft).item() == pytest.approx(expected)
    assert expected != pytest.approx(hard)


def test_a_rows_probabilities_are_part_of_the_data_fingerprint():
    plain = Row(text="差", label="neg")
    assert fingerprint([ROWS[1]]) != fingerprint([plain])
    assert fingerprint([plain]) == fingerprint([Row(text="差", label="neg", probabilities=None)])
