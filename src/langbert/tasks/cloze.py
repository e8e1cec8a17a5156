"""Classification read off a masked-LM head through a pattern: zero-shot, or fine-tuned PET-style.

A pattern such as ``{text}。总之很[MASK]。`` puts the text around a mask, and a verbalizer names a word
per label (``positive=好,negative=差``), or several (``positive=好|满意|不错,negative=差|失望|糟糕``). A
word's score is the mean log-probability the masked-LM head gives its tokens at the mask positions (a word
of several tokens gets one mask per token); a label's score is the mean over its words, so one word the
head happens to dislike in this pattern does not decide the label (PET's multiple verbalizations). Used
as is, that is zero-shot classification; trained with cross-entropy over the label scores, it is PET
(Schick & Schütze, EACL 2021): the head the checkpoint learned in pretraining is the classifier, so a few
dozen labels start from what the masked-LM already knows instead of from a random layer.

Calibration (Zhao et al., ICML 2021) subtracts the label scores of a content-free input, the pattern
around an empty text: a masked-LM that prefers 好 after 很 whatever the review says would otherwise call
everything positive. With ``calibration_texts`` the subtracted prior is instead the scores' mean over
training texts, their labels unused (batch calibration, Zhou et al., ICLR 2024): the head's preference
measured on the domain's own text rather than on one empty input.

The model class is built per architecture on top of its own ``*ForMaskedLM``; the label-word ids, the
mask id and the calibration prior live in ``config.json`` (``langbert_cloze``), so save/load, peft and ONNX
export work as for any HF model, and the exported graph carries the prior as a constant.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from ..data.rows import Row
from ..errors import ConfigError, DataError
from .base import model_class_for, register_task
from .options import TaskOptions
from .sequence_classification import TextClassification

CLOZE_KEY = "langbert_cloze"
CALIBRATION_MAX_LENGTH = 256
MASK = "[MASK]"


@dataclass(frozen=True)
class ClozeOptions(TaskOptions):
    pattern: str = "{text}" + MASK
    """The model's input around the text: ``{text}`` (and ``{pair}`` for text pairs) stand for the input,
    ``[MASK]`` for the label word, whatever the checkpoint's own mask token is (e.g. ``{text}。总之很[MASK]。``)."""
    verbalizer: str = ""
    """The words of each label, ``label=word`` pairs joined by commas (``positive=好,negative=差``), several
    words of a label joined by ``|`` (``positive=好|满意,negative=差|失望``): what the masked-LM head should
    put at ``[MASK]`` for that label. All words must have the same number of tokens."""
    calibrate: bool = True
    """Subtract each label word's score on a content-free input (the pattern around an empty text), so the
    head's prior preference for one word does not decide the label."""
    calibration_texts: int = 0
    """With ``calibrate``: subtract instead the label scores' mean over up to this many training texts (a
    fixed random sample; their labels are not read), so the prior is the head's preference on the domain's
    own text (batch calibration). It assumes no label dominates those texts. 0: the content-free input."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.verbalizer, dict):  # a recipe may give a mapping
            object.__setattr__(self, "verbalizer", ",".join(f"{k}={v}" for k, v in self.verbalizer.items()))
        if self.calibration_texts < 0 or (self.calibration_texts and not self.calibrate):
            raise ConfigError(f"calibration_texts must be >= 0 and needs calibrate, got {self.calibration_texts} "
                              f"with calibrate={self.calibrate}")
        if self.pattern.count(MASK) != 1:
            raise ConfigError(f"pattern must hold {MASK} exactly once, got {self.pattern!r}")
        if self.pattern.count("{text}") != 1 or self.pattern.count("{pair}") > 1:
            raise ConfigError(f"pattern must hold {{text}} once (and {{pair}} at most once), got {self.pattern!r}")
        if self.verbalizer:
            self.words()

    def words(self) -> dict[str, tuple[str, ...]]:
        """The verbalizer as {label: its words}, in the order given (the output order)."""
        found: dict[str, tuple[str, ...]] = {}
        for item in self.verbalizer.split(","):
            label, sep, value = item.partition("=")
            label, words = label.strip(), tuple(w.strip() for w in value.split("|"))
            if not sep or not label or not all(words):
                raise ConfigError(f"verbalizer: expected label=word pairs (label=word|word for several) joined by "
                                  f"commas, got {item!r}")
            if label in found:
                raise ConfigError(f"verbalizer: label {label!r} is given twice")
            found[label] = words
        if len(found) < 2:
            raise ConfigError(f"verbalizer: a classifier needs at least 2 labels, got {list(found)}")
        every = [w for words in found.values() for w in words]
        if len(set(every)) < len(every):
            shared = sorted({w for w in every if every.count(w) > 1})
            raise ConfigError(f"verbalizer: a word may stand for one label once, but {shared} is given twice "
                              "(two labels share a word, or a label repeats one)")
        return found

    @property
    def takes_pair(self) -> bool:
        return "{pair}" in self.pattern


def _flat(words: dict[str, str | Sequence[str]]) -> list[tuple[int, str]]:
    """(label index, word) for every word of the verbalizer, label by label."""
    return [(i, w) for i, ws in enumerate(words.values()) for w in ([ws] if isinstance(ws, str) else ws)]


def word_labels(words: dict[str, str | Sequence[str]]) -> list[int]:
    """The label index of each row ``label_token_ids`` returns."""
    return [i for i, _ in _flat(words)]


def label_token_ids(words: dict[str, str | Sequence[str]], tokenizer: Any) -> list[list[int]]:
    """Each label word's token ids, one row per word, label by label (one word a label: one row per
    label); all words must be as long, none unknown."""
    spelled = [w for _, w in _flat(words)]
    rows = [tokenizer(word, add_special_tokens=False)["input_ids"] for word in spelled]
    unknown = [w for w, ids in zip(spelled, rows) if tokenizer.unk_token_id in ids or not ids]
    if unknown:
        raise ConfigError(f"verbalizer: the vocabulary cannot spell {unknown}; choose words it has")
    if len({len(ids) for ids in rows}) > 1:
        lengths = {w: len(ids) for w, ids in zip(spelled, rows)}
        raise ConfigError(f"verbalizer: words of different token lengths {lengths}; each label is read at the "
                          "same masks, so choose words of one length (e.g. 好/差, or 满意/失望)")
    return rows


def label_scores(logits: torch.Tensor, label_ids: torch.Tensor, labels_of_words: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """(batch, masks, vocab) head outputs at the mask positions -> (batch, labels): the mean
    log-probability of each label word's tokens, token l at mask l, averaged over the words of each label
    (``labels_of_words``: each row's label index; without it, row i is label i)."""
    logprobs = logits.float().log_softmax(-1)
    per_token = torch.stack([logprobs[:, l, label_ids[:, l]] for l in range(label_ids.shape[1])], dim=-1)
    per_word = per_token.mean(-1)
    if labels_of_words is None:
        return per_word
    # A constant averaging matrix rather than a scatter, so an exported graph stays a plain matmul.
    share = nn.functional.one_hot(labels_of_words).float()
    return per_word @ (share / share.sum(0))


def _select_masks(hidden: torch.Tensor, is_mask: torch.Tensor, count: int) -> torch.Tensor:
    """(batch, seq, dim) -> (batch, count, dim): the vectors at the first ``count`` mask positions, in order.
    A one-hot product rather than indexing, so an exported graph needs no data-dependent shapes."""
    rank = is_mask.long().cumsum(-1) - 1
    picks = torch.stack([(is_mask & (rank == l)).to(hidden.dtype) for l in range(count)], dim=1)
    return torch.einsum("blt,btd->bld", picks, hidden)


@functools.lru_cache(maxsize=None)
def _cloze_class(mlm_class: type) -> type:
    prefix = mlm_class.base_model_prefix

    def head(self) -> nn.Module | None:
        """The one module on top of the encoder (BERT's ``cls``, RoBERTa's ``lm_head``), else None."""
        others = [m for name, m in self.named_children() if name != prefix]
        return others[0] if len(others) == 1 else None

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None):
        spec = getattr(self.config, CLOZE_KEY)
        label_ids = torch.tensor(spec["label_token_ids"], device=input_ids.device)
        labels_of_words = torch.tensor(spec["word_labels"], device=input_ids.device) if "word_labels" in spec else None
        is_mask = input_ids == spec["mask_token_id"]
        inputs = {k: v for k, v in {"input_ids": input_ids, "attention_mask": attention_mask,
                                    "token_type_ids": token_type_ids}.items() if v is not None}
        top = head(self)
        if top is not None:  # the vocabulary projection only where it is read: the masks
            hidden = getattr(self, prefix)(**inputs).last_hidden_state
            logits = top(_select_masks(hidden, is_mask, label_ids.shape[1]))
        else:
            logits = _select_masks(mlm_class.forward(self, **inputs).logits, is_mask, label_ids.shape[1])
        scores = label_scores(logits, label_ids, labels_of_words) - torch.tensor(spec["prior"], device=input_ids.device)
        loss = nn.functional.cross_entropy(scores, labels.view(-1)) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=scores)

    name = mlm_class.__name__.removesuffix("ForMaskedLM") + "ClozeClassifier"
    return type(name, (mlm_class,), {"forward": forward, "__module__": __name__})


def cloze_class(config: Any) -> type:
    from transformers import AutoModelForMaskedLM

    return _cloze_class(model_class_for(AutoModelForMaskedLM, config, "cloze classification: no masked-LM class"))


@register_task
class ClozeClassification(TextClassification):
    name = "cloze-classification"
    description = "one label per text, read off the masked-LM head through a pattern and label words (zero-/few-shot)"
    Options = ClozeOptions
    head_in_checkpoint = True
    setfit = False

    def __init__(self, options: ClozeOptions | None = None, labels: Sequence[str] | None = None):
        super().__init__(options, labels)
        if not self.options.verbalizer:
            raise ConfigError("cloze-classification needs a verbalizer (label=word pairs, e.g. positive=好,negative=差)")
        self.labels = list(self.options.words())  # the verbalizer's order is the output order
        self.needs_pair = self.options.takes_pair
        self._calibration_rows: list[Row] = []

    def fit(self, rows: Sequence[Row]) -> None:
        """The labels are the verbalizer's; training data with any other label is refused. With
        ``calibration_texts``, a fixed sample of the texts is kept to measure the prior on."""
        self.check(rows, "training")
        if self.options.calibration_texts:
            import random

            picked = random.Random(0).sample(range(len(rows)), min(self.options.calibration_texts, len(rows)))
            self._calibration_rows = [dataclasses.replace(rows[i], label=None) for i in sorted(picked)]

    def build_model(self, name_or_path: str, dropout: float | None = None) -> Any:
        from transformers import AutoConfig, AutoTokenizer

        from .load_report import load_for_training

        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        if tokenizer.mask_token_id is None:
            raise ConfigError(f"{name_or_path}: its tokenizer has no mask token; cloze classification needs a masked LM")
        ids = label_token_ids(self.options.words(), tokenizer)
        overrides = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout} if dropout is not None else {}
        config = AutoConfig.from_pretrained(name_or_path, id2label=dict(enumerate(self.labels)),
                                            label2id={label: i for i, label in enumerate(self.labels)}, **overrides)
        setattr(config, CLOZE_KEY, {"label_token_ids": ids, "word_labels": word_labels(self.options.words()),
                                    "mask_token_id": tokenizer.mask_token_id, "prior": [0.0] * len(self.labels)})
        model, info = load_for_training(cloze_class(config), name_or_path, [], "", config=config)
        body = model.base_model_prefix
        head_missing = [k for k in info["missing_keys"] if k.split(".")[0] != body and not k.endswith("decoder.weight")]
        if head_missing:
            raise ConfigError(f"{name_or_path} has no masked-LM head ({head_missing[0]} is not in it): continue its "
                              "pretraining with 'langbert pretrain' first, or choose a masked-LM checkpoint")
        if self.options.calibrate:
            getattr(model.config, CLOZE_KEY)["prior"] = self._prior(model, tokenizer)
        return model

    def _prior(self, model: Any, tokenizer: Any) -> list[float]:
        """The label scores to subtract: their mean over the calibration texts, else those of the pattern
        around an empty text (read while the prior is still zero)."""
        from .forward import forward_batches

        if self.options.calibration_texts and not self._calibration_rows:
            raise ConfigError("calibration_texts: no training texts to calibrate on (fit the task on them first)")
        rows = self._calibration_rows or [Row(text="", pair="" if self.needs_pair else None)]
        scores = forward_batches(self, model, tokenizer, rows, CALIBRATION_MAX_LENGTH, batch_size=32)
        return [round(float(s), 6) for s in scores.mean(axis=0)]

    def load_trained(self, path: str) -> Any:
        from transformers import AutoConfig

        return cloze_class(AutoConfig.from_pretrained(path)).from_pretrained(path, use_safetensors=True)

    def head_modules(self) -> list[str]:
        return []  # the masked-LM head is pretrained: an adapter trains beside it, it is not replaced

    # -- features ---------------------------------------------------------------------------------
    def encode(self, rows: Sequence[Row], tokenizer: Any, max_length: int, with_labels: bool = True) -> list[dict]:
        """The pattern around each text, the texts cut (never the pattern) to fit ``max_length``."""
        self.check_rows_have_pairs(rows)
        words = len(label_token_ids(self.options.words(), tokenizer)[0])
        template = self.options.pattern.replace(MASK, tokenizer.mask_token * words)
        fixed = len(tokenizer(template.format(text="", pair=""))["input_ids"])
        budget = max_length - fixed
        if budget < 1:
            raise ConfigError(f"pattern {self.options.pattern!r} alone takes {fixed} of max_length={max_length} tokens")
        fields = ("text", "pair") if self.needs_pair else ("text",)
        shares = {"text": budget - budget // 2, "pair": budget // 2} if self.needs_pair else {"text": budget}
        cut = {name: _cut([getattr(r, name) or "" for r in rows], tokenizer, shares[name]) for name in fields}
        filled = [template.format(**{name: cut[name][i] for name in fields}) for i in range(len(rows))]
        enc = tokenizer(filled, truncation=True, max_length=max_length)
        features = []
        for i, row in enumerate(rows):
            item = {key: enc[key][i] for key in enc.keys()}
            if item["input_ids"].count(tokenizer.mask_token_id) != words:
                raise DataError(f"the text holds the mask token {tokenizer.mask_token!r} itself", row.source, row.line,
                                "text")
            if with_labels and row.label is not None:
                item["labels"] = self.target(row.label)
            features.append(item)
        return self.soft_targets(features, rows)

    def state(self) -> dict[str, Any]:
        return {"name": self.name, "options": self.options.to_dict()}

    def sample_rows(self, texts: Sequence[str] | None = None) -> list[Row]:
        rows = super().sample_rows(texts)
        return [dataclasses.replace(r, pair=r.text if self.needs_pair else None) for r in rows]


def _cut(texts: list[str], tokenizer: Any, budget: int) -> list[str]:
    """Each text cut at a character boundary so that it alone makes at most ``budget`` tokens."""
    # The whole text is measured to find the cut; only the cut text reaches the model, so no length warning.
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return [t if len(offsets) <= budget else t[:offsets[budget - 1][1]]
            for t, offsets in zip(texts, enc["offset_mapping"])]

