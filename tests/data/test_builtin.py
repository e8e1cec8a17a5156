"""The built-in zh-sentiment corpus: deduplicated, conflicts dropped, no text in two splits, and its
training texts as a corpus."""

from __future__ import annotations

from langbert.data import get_builtin, split_of


def test_zh_sentiment_counts_and_no_leakage():
    data = get_builtin("zh-sentiment").load()
    stats = data.stats
    assert 17_300 < stats["unique_texts"] < 17_500 and stats["conflicting_texts"] == 47
    assert stats["kept"] == stats["unique_texts"] - stats["conflicting_texts"]
    texts = {name: {r.text for r in rows} for name, rows in data.splits.items()}
    assert sum(len(t) for t in texts.values()) == stats["kept"], "duplicates inside a split"
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"] and not texts["dev"] & texts["test"]
    for name, rows in data.splits.items():
        assert all(split_of(r.text) == name for r in rows)
    assert 0.78 < stats["train_rows"] / stats["kept"] < 0.82
    assert {r.label for r in data.splits["test"]} == {"negative", "positive"}
    assert all(r.text == r.text.strip() and r.text for r in data.splits["train"])


def test_a_built_in_datasets_name_as_a_corpus_reads_its_training_texts_only():
    from langbert.data.corpus import iter_texts

    data = get_builtin("zh-sentiment").load()
    assert list(iter_texts(["zh-sentiment"])) == [r.text for r in data.splits["train"]]
