"""Target-language vocabularies, built with the ``tokenizers`` library.

- ``char``: every CJK ideograph is its own token, other scripts get WordPiece: a standard BERT tokenizer
  (``BertTokenizerFast``), loadable by any tool.
- ``word``: frequent multi-character words from a segmenter (jieba by default) plus every character as
  fallback, in a Unigram model whose scores are the words' log frequencies, so at run time the tokenizer
  segments unsegmented text by itself (Viterbi), with no segmenter to install. Loads with ``AutoTokenizer``.

Both give exact character offsets, which sequence labelling depends on.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable, Literal

from ..data.segment import Segmenter

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
from ..data.vocab_chars import CJK_CLASS, CJK_RUN, is_cjk  # noqa: F401  (CJK ideographs: BERT's ranges)


def _lowercases(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "do_lower_case", False) or tokenizer("A", add_special_tokens=False)["input_ids"]
                == tokenizer("a", add_special_tokens=False)["input_ids"])


def train_wordpiece(texts: Iterable[str], vocab_size: int, lowercase: bool, min_frequency: int = 2) -> list[str]:
    """WordPiece over the corpus with CJK characters split apart: CJK chars + subwords of other scripts."""
    from tokenizers import BertWordPieceTokenizer

    wp = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase)
    # limit_alphabet must not cap the CJK characters: each is part of the "alphabet".
    wp.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL,
                           limit_alphabet=vocab_size, show_progress=False)
    vocab = wp.get_vocab()
    return sorted(vocab, key=vocab.get)


def char_tokenizer(trained: list[str], source: Any, mode: Literal["replace", "extend"]) -> Any:
    from transformers import BertTokenizerFast

    if mode == "extend":
        base = sorted(source.get_vocab(), key=source.get_vocab().get)
        tokens = base + [t for t in trained if t not in set(base)]
    else:
        tokens = SPECIAL + [t for t in trained if t not in SPECIAL]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    tok = BertTokenizerFast(vocab=vocab, do_lower_case=_lowercases(source), tokenize_chinese_chars=True)
    tok.model_max_length = source.model_max_length
    return tok


def count_words(texts: Iterable[str], segmenter: Segmenter) -> tuple[Counter, Counter]:
    """One pass over the corpus: counts of CJK words of 2+ characters as the segmenter cuts it, and of
    single CJK characters."""
    words: Counter = Counter()
    chars: Counter = Counter()
    for text in texts:
        for run in CJK_RUN.findall(text):
            chars.update(run)
            words.update(w for w in segmenter(run) if len(w) > 1 and is_cjk(w))
    return words, chars


def word_tokenizer(trained: list[str], word_counts: Counter, char_counts: Counter, source: Any, vocab_size: int,
                   min_word_count: int = 3, mode: Literal["replace", "extend"] = "replace") -> Any:
    """Unigram model over words + characters (+ the non-CJK pieces of ``trained``, ``##`` dropped)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    pieces = [t[2:] if t.startswith("##") else t for t in trained if t not in SPECIAL and not is_cjk(t)]
    if mode == "extend":
        pieces += [t[2:] if t.startswith("##") else t for t in source.get_vocab()
                   if t not in SPECIAL and not t.startswith("[")]
    chars = [t for t in trained if is_cjk(t)]
    budget = max(0, vocab_size - len(SPECIAL) - len(set(pieces)) - len(chars))
    words = [w for w, c in word_counts.most_common(budget) if c >= min_word_count]
    total = sum(word_counts.values()) + sum(char_counts.values()) + 1
    scored: dict[str, float] = {t: 0.0 for t in SPECIAL}
    # Word and character scores are log frequencies, so Viterbi prefers the segmenter's words; a word is
    # always more likely than spelling it out in characters.
    for c in chars:
        scored.setdefault(c, math.log((char_counts.get(c, 0) + 1) / total))
    for w in words:
        scored.setdefault(w, math.log(word_counts[w] / total))
    floor = min(scored.values()) - 1.0
    for p in dict.fromkeys(pieces):
        # Other scripts: a constant per piece, i.e. the fewest pieces win (longest match, as WordPiece).
        scored.setdefault(p, floor)
    vocab = list(scored.items())
    tok = Tokenizer(models.Unigram(vocab, unk_id=SPECIAL.index("[UNK]"), byte_fallback=False))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=None,
                                                lowercase=_lowercases(source))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.BertPreTokenizer(), pre_tokenizers.Split(Regex(f"[{CJK_CLASS}]+"), behavior="isolated")])
    cls, sep = SPECIAL.index("[CLS]"), SPECIAL.index("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_input_names=["input_ids", "token_type_ids", "attention_mask"],
        model_max_length=source.model_max_length)
