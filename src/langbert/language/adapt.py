"""``langbert adapt``: source model + target-language text -> an ordinary checkpoint that reads the language.

1. a vocabulary from the corpus (``vocab``), 2. embedding rows moved or initialised (``embeddings``),
3. the model resized and saved with its tokenizer (BertForMaskedLM: the MLM head is tied to the new
embeddings, ready for ``langbert pretrain``; any task loads the encoder), 4. a coverage report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..artifacts import atomic_write_text, write_metadata
from ..config import AdaptConfig, resolve_model
from ..data.corpus import iter_texts
from ..data.coverage import coverage
from ..data.script import converted_texts, declare_conversion
from ..data.segment import get_segmenter
from ..data.split import bucket
from ..tasks.load_report import load_for_training
from ..tasks.pooling import carry_pooling_declaration
from .dictionary import load_dictionary
from .embeddings import transfer_embeddings
from .vocab import _lowercases, char_tokenizer, count_words, train_wordpiece, word_tokenizer

logger = logging.getLogger(__name__)


def is_heldout(text: str) -> bool:
    """1% of lines, by hash: never used to build the vocabulary or to pretrain."""
    return bucket(text) == 0


def training_texts(sources: list[str]):
    return (t for t in iter_texts(sources) if not is_heldout(t))


def heldout_texts(sources: list[str], extra: list[str] = ()) -> list[str]:
    return [t for t in iter_texts(sources) if is_heldout(t)] + list(iter_texts(extra))


def build_tokenizer(cfg: AdaptConfig, source_tokenizer: Any) -> Any:
    trained = train_wordpiece(training_texts(cfg.corpus), cfg.vocab_size, _lowercases(source_tokenizer),
                              cfg.min_frequency)
    if cfg.granularity == "char":
        return char_tokenizer(trained, source_tokenizer, cfg.mode)
    segmenter = get_segmenter(cfg.segmenter)
    words, chars = count_words(training_texts(cfg.corpus), segmenter)
    return word_tokenizer(trained, words, chars, source_tokenizer, cfg.vocab_size, cfg.min_word_count, cfg.mode)


def adapt(cfg: AdaptConfig) -> Path:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    source_path = resolve_model(cfg.model)
    source_tok = AutoTokenizer.from_pretrained(source_path)
    model, _ = load_for_training(AutoModelForMaskedLM, source_path, ["cls"], "a masked-LM head for pretraining")

    tokenizer = build_tokenizer(cfg, source_tok)
    declare_conversion(tokenizer, cfg.script_conversion)
    vocab = tokenizer.get_vocab()
    new_tokens = sorted(vocab, key=vocab.get)
    dictionary = load_dictionary(cfg.dictionary) if cfg.init == "dictionary" else None
    weights, report = transfer_embeddings(model.get_input_embeddings().weight, source_tok, new_tokens, cfg.init,
                                          dictionary, seed=cfg.seed)

    model.resize_token_embeddings(len(new_tokens), mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(weights)
        head = model.get_output_embeddings()
        if getattr(head, "bias", None) is not None:
            head.bias.zero_()  # old biases belong to old token ids
    model.config.vocab_size = len(new_tokens)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.tie_weights()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    carry_pooling_declaration(source_path, out)

    heldout = heldout_texts(cfg.corpus, cfg.heldout)
    before, after = coverage(source_tok, heldout), coverage(tokenizer, converted_texts(heldout, tokenizer))
    counts = report.counts()
    summary = {
        "stage": "adapt",
        "source_model": cfg.model,
        "config": cfg.to_dict(),
        "vocab_size": len(new_tokens),
        "embedding_init": counts,
        "examples": report.examples,
        "coverage": {"heldout_lines": len(heldout), "before": before, "after": after},
    }
    write_metadata(out, summary)
    atomic_write_text(out / "adapt.md", _markdown(summary))
    logger.info("adapted %s -> %s: vocab %d, [UNK] %s -> %s, rows %s", cfg.model, out, len(new_tokens),
                _pct(before["unk_rate"]), _pct(after["unk_rate"]), counts)
    return out


def _markdown(s: dict) -> str:
    b, a = s["coverage"]["before"], s["coverage"]["after"]
    lines = [f"# Adaptation of {s['source_model']}", "",
             f"Vocabulary: {s['vocab_size']} tokens ({s['config']['granularity']}, {s['config']['mode']}), "
             f"init: {s['config']['init']}", "",
             f"Coverage on {s['coverage']['heldout_lines']} held-out lines:", "",
             "| | [UNK] rate | tokens per char |", "|---|---|---|",
             f"| before | {_pct(b['unk_rate'])} | {_num(b['tokens_per_char'])} |",
             f"| after | {_pct(a['unk_rate'])} | {_num(a['tokens_per_char'])} |", "",
             "| embedding rows | count | examples |", "|---|---|---|"]
    lines += [f"| {k} | {v} | {' '.join(s['examples'].get(k, [])[:8])} |" for k, v in sorted(s["embedding_init"].items())]
    return "\n".join(lines) + "\n"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"
