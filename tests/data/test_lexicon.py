"""Lexicon B/M/E/S sets: hand-made lexicon and text, Latin/digit runs, overlaps, out-of-fold training entries."""

from __future__ import annotations

import pytest

from langbert.data.lexicon import FoldedLexicon, Lexicon, fold_of, training_lexicon
from langbert.errors import DataError


def test_sets_mark_begin_middle_end_and_single_with_overlaps():
    lexicon = Lexicon.from_words(["北京", "北京大学", "大学", "学生"]) | Lexicon.from_words(["京"], "LOC")
    sets = lexicon.sets("北京大学生")
    assert sets[0] == {"B": {"len2", "len4"}, "M": set(), "E": set(), "S": set()}
    assert sets[1] == {"B": set(), "M": {"len4"}, "E": {"len2"}, "S": {"LOC"}}
    assert sets[2] == {"B": {"len2"}, "M": {"len4"}, "E": set(), "S": set()}
    assert sets[3] == {"B": {"len2"}, "M": set(), "E": {"len2", "len4"}, "S": set()}
    assert sets[4] == {"B": set(), "M": set(), "E": {"len2"}, "S": set()}
    assert lexicon.features("北京大学生")[1] == ["M-len4", "E-len2", "S-LOC"]
    assert len(lexicon.vectors("北京")[0]) == len(lexicon.feature_names()) == 4 * len(lexicon.types)


def test_a_match_never_cuts_through_a_latin_or_digit_run():
    lexicon = Lexicon.from_words(["art", "iphone", "2024年", "24年"])
    assert [(a, b) for a, b, _ in lexicon.matches("start art")] == [(6, 9)]
    assert [(a, b) for a, b, _ in lexicon.matches("iphone在2024年")] == [(0, 6), (7, 12)]  # not "24年" inside 2024
    assert lexicon.matches("iphones") == []


def test_single_characters_and_overlong_words_stay_out_of_an_untyped_lexicon():
    assert set(Lexicon.from_words(["好", "好人", "一二三四五六七八九"]).entries) == {"好人"}


def test_file_lexicon_reads_counts_and_types_and_names_a_bad_line(tmp_path):
    path = tmp_path / "lex.tsv"
    path.write_text("北京\t12\n王小明\t3\tPER\n", encoding="utf-8")
    lexicon = Lexicon.from_file(path)
    assert lexicon.entries == {"北京": frozenset({"len2"}), "王小明": frozenset({"PER"})}
    path.write_text("北京\t12\n上海\tmany\n", encoding="utf-8")
    with pytest.raises(DataError, match="count must be a number") as err:
        Lexicon.from_file(path)
    assert "lex.tsv:2: field 'count'" in str(err.value)


def test_saved_lexicon_reads_back_with_its_feature_order():
    lexicon = Lexicon.from_words(["北京大学"]) | Lexicon.from_words(["王小明"], "PER")
    again = Lexicon.from_text(lexicon.to_text())
    assert again.entries == lexicon.entries and again.types == lexicon.types
    assert again.feature_names() == lexicon.feature_names() and again.digest() == lexicon.digest()


def test_a_training_sentence_never_sees_its_own_fold_and_other_text_sees_everything():
    sentences = [(f"句子{i}王{chr(0x4e00 + i)}明", [(f"王{chr(0x4e00 + i)}明", "PER")]) for i in range(40)]
    folded = training_lexicon(sentences, base=Lexicon.from_words(["北京"]), folds=5)
    assert isinstance(folded, FoldedLexicon) and len(folded.full) == 41
    for text, entries in sentences:
        own = folded.for_text(text)
        assert entries[0][0] not in own.entries and "北京" in own.entries
        others = [e[0][0] for t, e in sentences if fold_of(t, 5) != fold_of(text, 5)]
        assert all(name in own.entries for name in others)
        assert own.types == folded.full.types
    assert folded.for_text("王一明在北京") is folded.full  # dev, test, prediction: the whole lexicon
    with pytest.raises(DataError, match="2 folds"):
        training_lexicon(sentences, folds=1)


def test_cc_cedict_has_words_of_two_to_eight_characters():
    lexicon = Lexicon.cc_cedict()
    assert "北京" in lexicon.entries and "中华人民共和国" in lexicon.entries
    assert all(2 <= len(w) <= 8 for w in lexicon.entries)
