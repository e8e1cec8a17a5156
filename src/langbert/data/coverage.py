"""How much of a text a tokenizer can read: the measurement behind ``data check`` and ``adapt``'s report."""

from __future__ import annotations

from typing import Any


def coverage(tokenizer: Any, texts: list[str]) -> dict[str, float]:
    """[UNK] rate (share of tokens) and tokens per character on ``texts`` (None without texts)."""
    if not texts:
        return {"unk_rate": None, "tokens_per_char": None, "tokens": 0, "chars": 0}
    ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    tokens = sum(len(x) for x in ids)
    unk = sum(x.count(tokenizer.unk_token_id) for x in ids)
    chars = sum(len("".join(t.split())) for t in texts)
    return {"unk_rate": unk / max(tokens, 1), "tokens_per_char": tokens / max(chars, 1),
            "tokens": tokens, "chars": chars}
