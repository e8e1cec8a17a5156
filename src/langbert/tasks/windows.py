"""Overlapping windows over long texts, shared by the tasks that read a text whole (tagging, QA).

The tokenizer cuts a text into windows of ``max_length`` tokens that share ``stride`` tokens; each task
maps the windows' offsets back to characters. Two things every such task needs live here: a refusal of
windows that stop before the text does, and the collator that pads windows and their targets.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from ..data.rows import Row
from ..errors import LangbertError


def check_windows_cover(rows: Sequence[Row], texts: Sequence[str], enc: Any, tokenizer: Any, max_length: int,
                        in_text: Callable[[int, int], bool] = lambda window, token: True) -> None:
    """Refuse windows that stop before the text does: the characters after them would be lost.

    ``texts[r]`` is the windowed text of ``rows[r]`` (the text itself, or a QA context); ``in_text(w, i)``
    says whether token ``i`` of window ``w`` belongs to it (not to a question before it).

    tokenizers 0.23.1 and 0.23.2 end the overflow windows early (huggingface/tokenizers#2091): on a
    300-character text, windows of 128 and 36 tokens covering characters 0-128. Seen on a GPU machine
    with 0.23.2: 19,512 zh-ner training windows instead of 21,856, and test entity recall 0.78.
    Only a row whose first window is full can have overflowed, so only those are tokenised again, whole.
    """
    mapping = enc["overflow_to_sample_mapping"]
    # A row's windows are consecutive: its first is the one whose predecessor belongs to another row.
    full = [r for w, r in enumerate(mapping)
            if (w == 0 or mapping[w - 1] != r) and len(enc["input_ids"][w]) >= max_length]
    if not full:
        return
    overflowed, reach = set(full), {}
    for w, r in enumerate(mapping):
        if r in overflowed:
            ends = (e for i, (s, e) in enumerate(enc["offset_mapping"][w]) if e > s and in_text(w, i))
            reach[r] = max(reach.get(r, 0), max(ends, default=0))
    # verbose=False: this whole-text pass only measures; transformers' "will result in indexing errors" for
    # texts over the model's maximum would be wrong, the model gets the windows.
    whole = tokenizer([texts[r] for r in full], add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    for r, offsets in zip(full, whole["offset_mapping"]):
        end = max((e for s, e in offsets if e > s), default=0)
        if reach[r] < end:
            import tokenizers

            row = rows[r]
            where = f"{row.source}, line {row.line}: " if row.source else ""
            raise LangbertError(
                f"{where}the tokenizer's windows stop at character {reach[r]} of a text whose tokens run to "
                f"{end}; the rest would be lost (installed: tokenizers {tokenizers.__version__}; 0.23.1 and "
                "0.23.2 drop overflow windows, huggingface/tokenizers#2091: "
                "pip install 'tokenizers!=0.23.1,!=0.23.2')")


class PadCollator:
    """Pads model inputs and per-token ``labels`` to the longest window (a multiple of 8); ``targets``
    (one number per window, e.g. an answer's first and last token) become tensors as they are. The
    alignment bookkeeping of a feature (``_row``, ``_offsets``, ...) stays behind."""

    def __init__(self, pad_id: int, targets: Sequence[str] = (), multi_hot: dict[str, int] | None = None):
        """``multi_hot``: per-token feature lists (indices of the features that are on) by key, with their
        vector size: they become (batch, tokens, size) float tensors, zero on padding."""
        self.pad_id = pad_id
        self.targets = tuple(targets)
        self.multi_hot = dict(multi_hot or {})

    def __call__(self, features: list[dict]) -> dict:
        longest = max(len(f["input_ids"]) for f in features)
        longest += (-longest) % 8
        batch: dict[str, Any] = {}
        for key, pad in (("input_ids", self.pad_id), ("attention_mask", 0), ("token_type_ids", 0), ("labels", -100)):
            if key in features[0]:
                batch[key] = torch.tensor([f[key] + [pad] * (longest - len(f[key])) for f in features])
        for key in self.targets:
            if key in features[0]:
                batch[key] = torch.tensor([f[key] for f in features])
        for key, size in self.multi_hot.items():
            if key in features[0]:
                dense = torch.zeros(len(features), longest, size)
                for b, f in enumerate(features):
                    for t, on in enumerate(f[key]):
                        dense[b, t, on] = 1.0
                batch[key] = dense
        return batch
