"""Sequence labelling: NER, word segmentation, POS. Labels are character spans; the model tags tokens.

- Alignment goes through the fast tokenizer's offsets: a token takes the tag of the characters it covers,
  so sub-tokens, [UNK], full-width characters and Latin/digit runs inside Chinese never shift a label.
- Long texts are cut into overlapping windows (``stride`` tokens shared); at prediction each character's
  tag comes from the window where it sits farthest from an edge, so a span across a border is found once.
- Heads: softmax, or a CRF (``crf: true``) whose transitions forbid invalid moves of the tag scheme.
- Evaluation is entity-level over characters, per type and micro/macro: ``entity_f1`` reads predicted tags
  as conlleval does, ``entity_f1_strict`` counts only well-formed entities (seqeval's strict mode); the
  best checkpoint is chosen on ``entity_f1`` unless ``--metric`` names another. Character tag accuracy is
  reported separately and named as such, and so is the recall of gold spans whose text the training split
  never held as a span (``oov_recall``: for segmentation SIGHAN's R_oov) and of the others (``iv_recall``).
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np
import torch
from transformers.modeling_outputs import TokenClassifierOutput

from ..data.lexicon import Lexicon, build_lexicon, lexicon_for, whole
from ..data.readers import Columns, read_rows
from ..data.rows import Row
from ..data.sequence_readers import read_conll, read_span_jsonl
from ..data.spans import (ERROR_KINDS, DecodeStats, close_at_edges, join_tag, span_errors, spans_to_tags,
                          split_tag, tags_for, tags_to_spans)
from ..errors import DataError
from ..evaluation import Report
from ..evaluation.seen_spans import SeenSpans, seen_recall
from .base import PseudoLabel, Task, model_class_for, register_task
from .crf import CRF
from .options import TokenClassificationOptions
from .heads import from_pretrained_for_finetuning
from .hf_auto import add_head, as_langbert_type
from .ngram_scores import NgramScores
from .windows import PadCollator, check_windows_cover

CRF_FILE = "crf.safetensors"
LEXICON_FILE = "lexicon.tsv"
SEEN_FILE = "training_spans.digests"
LEXICON_KEY = "langbert_lexicon"
CRF_KEY = "langbert_crf"
NGRAM_KEY = "langbert_ngrams"
UNTAGGED = -1
"""The label of a token whose tag is unknown (a row's ``untagged`` characters) for a CRF, which sums over
every tag there; without a CRF such a token is ignored (-100), as padding is."""


def _crf_keys_expected(config: Any) -> type:
    """The HF token-classification class for ``config``, told that model.safetensors also holds ``crf.*``
    (``save_pretrained`` writes every submodule): without it every load of a CRF model prints them as
    UNEXPECTED keys, "not ok if you expect identical arch". The CRF itself loads from ``crf.safetensors``."""
    from transformers import AutoModelForTokenClassification

    return _ignoring_crf_keys(model_class_for(AutoModelForTokenClassification, config,
                                              "token classification: no model class"))


def _saved_crf(path: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(path) / CRF_FILE))


@lru_cache(maxsize=None)
def _ignoring_crf_keys(base: type) -> type:
    # Same name: save_pretrained records it as the architecture, which the Auto classes must still find.
    return type(base.__name__, (base,), {"_keys_to_ignore_on_load_unexpected": [r"^crf\."]})


def _emissions(model: Any, input_ids: Any, attention_mask: Any, token_type_ids: Any, lexicon: Any) -> torch.Tensor:
    """The classifier's scores per token: the encoder's output after its dropout, plus the projected
    lexicon features where the model has them (so no lexicon evidence is dropped). A model that also reads
    them at its input (``lexicon_input``) adds their embedding to each token's word embedding, so every
    layer can weigh a character's lexicon words against its neighbours'. A model with hashed n-gram
    scores (``ngram_buckets``) adds them to the classifier's, as a feature CRF's weights would be."""
    encoder = getattr(model, model.base_model_prefix)
    inputs = {k: v for k, v in {"input_ids": input_ids, "attention_mask": attention_mask,
                                "token_type_ids": token_type_ids}.items() if v is not None}
    if lexicon is not None and getattr(model, "lexicon_embed", None) is not None:
        words = encoder.get_input_embeddings()(inputs.pop("input_ids"))
        inputs["inputs_embeds"] = words + model.lexicon_embed(lexicon.to(words.dtype))
    hidden = model.dropout(encoder(**inputs).last_hidden_state)
    if lexicon is not None:
        hidden = hidden + model.lexicon_proj(lexicon.to(hidden.dtype))
    logits = model.classifier(hidden)
    if getattr(model, "ngram_scores", None) is not None:
        logits = logits + model.ngram_scores(input_ids, attention_mask)
    return logits


def _add_feature_modules(model: Any, config: Any) -> None:
    """The lexicon features' projection onto the encoder's output (``lexicon_proj``) and, where the config
    says the input reads them too, their embedding beside the word embeddings (``lexicon_embed``); the
    hashed n-gram scores (``ngram_scores``) where the config declares them."""
    lexicon = getattr(config, LEXICON_KEY, None) or {}
    model.lexicon_proj = torch.nn.Linear(lexicon["features"], config.hidden_size) if lexicon else None
    model.lexicon_embed = (torch.nn.Linear(lexicon["features"], config.hidden_size, bias=False)
                           if lexicon.get("input") else None)
    ngrams = getattr(config, NGRAM_KEY, None)
    model.ngram_scores = NgramScores(ngrams["buckets"], config.num_labels) if ngrams else None


def _has_features(config: Any) -> bool:
    return bool(getattr(config, LEXICON_KEY, None) or getattr(config, NGRAM_KEY, None))


def _lexicon_modules(model: Any) -> list[Any]:
    """The lexicon modules ``_add_feature_modules`` gave ``model`` (a peft wrapper's lookups reach them)."""
    return [m for m in (getattr(model, "lexicon_proj", None), getattr(model, "lexicon_embed", None)) if m is not None]


@lru_cache(maxsize=None)
def _with_features(base: type) -> type:
    """``base`` (an HF ``*ForTokenClassification``) whose emissions also read the lexicon features (a
    linear projection of each token's B/M/E/S multi-hot vector) and/or hashed n-gram scores, as its config
    declares (see ``_emissions``)."""

    def __init__(self, config):
        base.__init__(self, config)
        _add_feature_modules(self, config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, lexicon=None, labels=None):
        logits = _emissions(self, input_ids, attention_mask, token_type_ids, lexicon)
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
        return TokenClassifierOutput(loss=loss, logits=logits)

    return type(base.__name__, (base,), {"__init__": __init__, "forward": forward, "__module__": base.__module__})


@lru_cache(maxsize=None)
def _auto_head(config_class: type) -> type:
    """What ``AutoModelForTokenClassification`` (and so ``pipeline("token-classification")``) builds for a
    folder with a CRF, lexicon features or n-gram scores: HF's head with the lexicon projection, n-gram
    scores and CRF its config declares, read from ``model.safetensors``. With a CRF its logits are the
    CRF's max-marginals, whose argmax per token is the Viterbi path langbert decodes. A lexicon model needs its ``lexicon`` input,
    which only langbert makes: called without it, it says so instead of answering without the lexicon."""
    from transformers import AutoModelForTokenClassification

    base = AutoModelForTokenClassification._model_mapping[config_class.langbert_base]

    def __init__(self, config):
        base.__init__(self, config)
        _add_feature_modules(self, config)
        crf = getattr(config, CRF_KEY, None)
        self.crf = CRF([config.id2label[i] for i in range(config.num_labels)], crf["scheme"]) if crf else None
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, lexicon=None, labels=None, **unused):
        if self.lexicon_proj is not None and lexicon is None:
            raise ValueError("this model reads lexicon features beside the text (lexicon.tsv in its folder), which "
                             "only langbert computes: load it with langbert.Predictor.load")
        logits = _emissions(self, input_ids, attention_mask, token_type_ids, lexicon)
        if attention_mask is None:
            attention_mask = torch.ones(logits.shape[:2], dtype=torch.long, device=logits.device)
        loss = None
        if self.crf is not None:
            if labels is not None:
                emissions, tags, mask = _crf_inputs(logits.float(), labels)
                loss = -self.crf.log_likelihood(emissions, tags, mask).mean()
            emissions, _, mask = _crf_inputs(logits.float(), None, attention_mask)
            logits = torch.cat([logits[:, :1].float(), self.crf.max_marginals(emissions, mask)], dim=1)
        elif labels is not None:
            loss = torch.nn.functional.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
        return TokenClassifierOutput(loss=loss, logits=logits)

    return type(f"Langbert{base.__name__}", (base,), {"__init__": __init__, "forward": forward,
                                                      "__module__": __name__, "config_class": config_class})


add_head("AutoModelForTokenClassification", _auto_head)


@register_task
class TokenClassification(Task):
    name = "token-classification"
    description = "a tag per character span: NER, word segmentation, POS (softmax or CRF)"
    default_metric = "entity_f1"
    windowed = True
    self_training = True
    partial_labels = True
    Options = TokenClassificationOptions

    def __init__(self, options: TokenClassificationOptions | None = None, labels: Sequence[str] | None = None,
                 types: Sequence[str] | None = None):
        super().__init__(options, labels)
        self.types = list(types or [])
        self._crf_module: CRF | None = None
        self.lexicon: Any = None
        """A ``Lexicon`` (a ``FoldedLexicon`` while training on a training-split lexicon); None without."""
        self._model_lexicon: list[Any] = []
        self._model_ngrams: list[Any] = []
        self._lexicon_digest: str | None = None
        self.seen: SeenSpans | None = None
        """The training split's span texts (as digests), for recall on seen and unseen spans."""

    def state(self) -> dict[str, Any]:
        state = {**super().state(), "types": self.types}
        if self.lexicon is not None:
            full = whole(self.lexicon)
            state["lexicon"] = {"file": LEXICON_FILE, "entries": len(full), "digest": full.digest()}
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TokenClassification":
        state = dict(state)
        saved = state.pop("lexicon", None)  # the entries are in the folder, read by load_trained / attach_exported
        task = super().from_state(state)
        task._lexicon_digest = saved["digest"] if saved else None
        return task

    @property
    def scheme(self) -> str:
        return self.options.tag_scheme

    @property
    def crf(self) -> bool:
        return self.options.crf

    @property
    def stride(self) -> int:
        return self.options.stride

    # -- data -----------------------------------------------------------------------------------------
    def parse_label(self, raw: Any) -> Any:
        return raw  # spans are checked by the readers, which know the text

    def read(self, path: str | Path, columns: Columns = Columns(), label_required: bool = True) -> list[Row]:
        suffix = Path(path).suffix.lower()
        if suffix in (".conll", ".bio", ".bmes", ".iob"):
            rows, stats = read_conll(path, self.scheme)
            if stats.repaired:
                import logging

                logging.getLogger(__name__).warning("%s: %d tags continued no entity and were read as starting one",
                                                    path, stats.repaired)
            return rows
        if suffix in (".jsonl", ".json") and label_required:
            return read_span_jsonl(path, columns.text, columns.label if columns.label != "label" else "entities")
        return read_rows(path, columns, None, label_required=False)

    def fit(self, rows: Sequence[Row]) -> None:
        self.types = sorted({kind for r in rows for _, _, kind in (r.label or [])})
        if not self.types:
            raise DataError("training data has no spans", rows[0].source if rows else None)
        self.labels = tags_for(self.types, self.scheme)
        self.seen = SeenSpans.from_rows(rows)
        if self.options.lexicon:
            self.lexicon = build_lexicon(self.options.lexicon, rows, self.options.lexicon_folds)

    def label_summary(self, rows: Sequence[Row]) -> dict[str, Any]:
        """Spans per type, and where rows leave characters untagged, how many rows and characters."""
        summary = super().label_summary(rows)
        partial = [r for r in rows if r.untagged]
        if partial:
            summary["untagged"] = {"rows": len(partial),
                                   "characters": sum(e - s for r in partial for s, e in r.untagged)}
        return summary

    def check(self, rows: Sequence[Row], split: str) -> None:
        known = set(self.types)
        for row in rows:
            if row.untagged and split != "train":
                raise DataError(f"untagged characters in the {split} data: scores need every tag (partial rows "
                                "belong in the training data)", row.source, row.line, "untagged")
            unseen = sorted({kind for _, _, kind in (row.label or []) if kind not in known})
            if unseen:
                raise DataError(f"type(s) {unseen} in the {split} data were never seen in training (known: {self.types})",
                                row.source, row.line, "label")

    # -- model ----------------------------------------------------------------------------------------
    def build_model(self, name_or_path: str, dropout: float | None = None) -> Any:
        from transformers import AutoConfig

        overrides = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout,
                     "classifier_dropout": dropout} if dropout is not None else {}
        config = AutoConfig.from_pretrained(name_or_path, id2label=dict(enumerate(self.labels)),
                                            label2id={t: i for i, t in enumerate(self.labels)}, **overrides)
        read_lexicon_input = (getattr(config, LEXICON_KEY, None) or {}).get("input", False)  # the checkpoint's own
        if self.lexicon is not None:
            setattr(config, LEXICON_KEY, {"features": len(whole(self.lexicon).feature_names()),
                                          "sources": self.options.lexicon, "input": self.options.lexicon_input})
        elif hasattr(config, LEXICON_KEY):  # a lexicon model fine-tuned again without one
            delattr(config, LEXICON_KEY)
        if self.crf:
            setattr(config, CRF_KEY, {"scheme": self.scheme})
        elif hasattr(config, CRF_KEY):
            delattr(config, CRF_KEY)
        saved_buckets = (getattr(config, NGRAM_KEY, None) or {}).get("buckets")
        if self.options.ngram_buckets:
            setattr(config, NGRAM_KEY, {"buckets": self.options.ngram_buckets})
        elif hasattr(config, NGRAM_KEY):
            delattr(config, NGRAM_KEY)
        # A head HF does not have is saved under langbert's model type, so the Auto classes find it.
        config = as_langbert_type(config, self.crf or _has_features(config))
        model, carried_on = from_pretrained_for_finetuning(self._model_class(config), name_or_path, config,
                                                           self.head_modules())
        model = self._attach_crf(model)
        if getattr(model, "lexicon_embed", None) is not None and not read_lexicon_input:
            # New: the encoder starts reading exactly what its pretraining fed it, the lexicon fading in.
            torch.nn.init.zeros_(model.lexicon_embed.weight)
        ngrams = getattr(model, "ngram_scores", None)
        if ngrams is not None and not (carried_on and saved_buckets == self.options.ngram_buckets):
            ngrams.reset_parameters()  # new scores start at zero: the encoder's emissions as they were
        self._model_lexicon = _lexicon_modules(model)
        if ngrams is not None:
            ngrams.dropout = self.options.ngram_dropout
        self._model_ngrams = [ngrams] if ngrams is not None else []
        if self.crf and carried_on and (Path(name_or_path) / CRF_FILE).is_file():
            # The transitions were learned for these tags too: they carry on with the emissions.
            model.crf.load_state_dict(_saved_crf(name_or_path))
        return model

    def load_trained(self, path: str) -> Any:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path)
        if getattr(config, LEXICON_KEY, None):
            self._read_lexicon(path)
        model = self._model_class(config).from_pretrained(path, config=config, use_safetensors=True)
        if self.crf:
            model = self._attach_crf(model)
            model.crf.load_state_dict(_saved_crf(path))
        self._read_seen(path)
        return model

    def _read_seen(self, path: str | Path) -> None:
        file = Path(path) / SEEN_FILE
        if file.is_file():  # folders saved before it was kept report without the seen / unseen split
            self.seen = SeenSpans.from_text(file.read_text(encoding="utf-8"))

    def _model_class(self, config: Any) -> type:
        """HF's token-classification class for ``config`` (told of the CRF's keys where there is one), with
        the lexicon projection and n-gram scores where the config declares them."""
        from transformers import AutoModelForTokenClassification

        base = _crf_keys_expected(config) if self.crf else model_class_for(
            AutoModelForTokenClassification, config, "token classification: no model class")
        return _with_features(base) if _has_features(config) else base

    def _read_lexicon(self, path: str | Path) -> None:
        file = Path(path) / LEXICON_FILE
        if not file.is_file():
            raise DataError(f"a lexicon model needs its {LEXICON_FILE} beside it", str(path))
        self.lexicon = Lexicon.from_text(file.read_text(encoding="utf-8"))
        if self._lexicon_digest and self.lexicon.digest() != self._lexicon_digest:
            raise DataError(f"{LEXICON_FILE} is not the lexicon this model was trained with (digest "
                            f"{self.lexicon.digest()}, trained with {self._lexicon_digest})", str(file))

    def _attach_crf(self, model: Any) -> Any:
        if self.crf:
            # A submodule of the HF model: trained, checkpointed and restored with it by the Trainer.
            model.crf = CRF(self.labels, self.scheme)
            self._crf_module = model.crf
        return model

    def head_modules(self) -> list[str]:
        lexicon = ["lexicon_proj", *(["lexicon_embed"] if self.options.lexicon_input else [])] if self.lexicon is not None else []
        return ["classifier", *(["crf"] if self.crf else []), *lexicon,
                *(["ngram_scores"] if self.options.ngram_buckets else [])]

    def bind(self, model: Any) -> None:
        """Point at the CRF, lexicon and n-gram modules the model really trains: peft copies a
        ``modules_to_save`` module and trains the copy, so the module attached before wrapping is frozen
        from then on. PeftModel forwards attribute lookups down to the HF model."""
        if self.crf:
            self._crf_module = _trained_copy(model.crf)
        self._model_lexicon = [_trained_copy(m) for m in _lexicon_modules(model)]
        self._model_ngrams = [_trained_copy(model.ngram_scores)] if getattr(model, "ngram_scores", None) is not None else []
        for ngrams in self._model_ngrams:
            ngrams.dropout = self.options.ngram_dropout

    def lr_scaled_parameters(self) -> list[tuple[list[Any], float]]:
        scaled = [(list(self._crf_module.parameters()), self.options.crf_lr_scale)] if self.crf else []
        if self._model_lexicon:
            scaled.append(([p for m in self._model_lexicon for p in m.parameters()], self.options.lexicon_lr_scale))
        if self._model_ngrams:
            scaled.append(([p for m in self._model_ngrams for p in m.parameters()], self.options.ngram_lr_scale))
        return scaled

    def attach_exported(self, model: Any, path: str) -> None:
        if (Path(path) / LEXICON_FILE).is_file():
            self._read_lexicon(path)
        self._read_seen(path)
        if self.crf:
            crf = CRF(self.labels, self.scheme)
            crf.load_state_dict(_saved_crf(path))
            model.crf = self._crf_module = crf

    def save_extra(self, model: Any, out: str | Path) -> None:
        """HF's save_pretrained keeps crf.* in model.safetensors too; a separate file keeps loading explicit.
        The lexicon is saved whole (every entry, the training split's included), in its feature order."""
        from ..artifacts import atomic_write_text

        if self.lexicon is not None:
            atomic_write_text(Path(out) / LEXICON_FILE, whole(self.lexicon).to_text())
        if self.seen is not None:
            atomic_write_text(Path(out) / SEEN_FILE, self.seen.to_text())
        if self.crf:
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in self._crf_module.state_dict().items()}, str(Path(out) / CRF_FILE))

    def extra_files(self) -> list[str]:
        return [*([CRF_FILE] if self.crf else []), *([LEXICON_FILE] if self.lexicon is not None else []),
                *([SEEN_FILE] if self.seen is not None else [])]

    def loss_function(self) -> Any:
        if not self.crf:
            return None

        def crf_loss(outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
            emissions, tags, mask = _crf_inputs(outputs.logits, labels)
            return -self._crf_module.log_likelihood(emissions.float(), tags, mask).mean()

        return crf_loss

    # -- features -------------------------------------------------------------------------------------
    def encode(self, rows: Sequence[Row], tokenizer: Any, max_length: int, with_labels: bool = True) -> list[dict]:
        stride = min(self.stride, max_length // 2 - 2)
        enc = tokenizer([r.text for r in rows], truncation=True, max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
        check_windows_cover(rows, [r.text for r in rows], enc, tokenizer, max_length)
        label_ids = {t: i for i, t in enumerate(self.labels)}
        by_char = self._lexicon_features(rows) if self.lexicon is not None else None
        features = []
        for w, row_index in enumerate(enc["overflow_to_sample_mapping"]):
            row = rows[row_index]
            offsets = [tuple(o) for o in enc["offset_mapping"][w]]
            specials = set(tokenizer.all_special_ids)
            valid = [i for i, (s, e) in enumerate(offsets) if e > s and enc["input_ids"][w][i] not in specials]
            item = {k: enc[k][w] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
            item["_row"], item["_offsets"], item["_valid"] = row_index, offsets, valid
            if by_char is not None:  # a token reads the features of its first character
                item["lexicon"] = [by_char[row_index][s] if e > s else [] for s, e in offsets]
            if with_labels and row.label is not None:
                char_tags = spans_to_tags(len(row.text), row.label, self.scheme)
                labels = [-100] * len(offsets)
                window_tags = close_at_edges([self._token_tag(char_tags, *offsets[i]) for i in valid], self.scheme)
                unknown = {c for s, e in row.untagged or () for c in range(s, e)}
                for i, tag in zip(valid, window_tags):
                    known = unknown.isdisjoint(range(*offsets[i]))
                    labels[i] = label_ids[tag] if known else UNTAGGED if self.crf else -100
                item["labels"] = labels
            features.append(item)
        return features

    def _lexicon_features(self, rows: Sequence[Row]) -> list[list[list[int]]]:
        """Per row and character, the indices of its lexicon features (out of fold for a training sentence)."""
        index = {name: i for i, name in enumerate(whole(self.lexicon).feature_names())}
        return [[[index[n] for n in names] for names in lexicon_for(self.lexicon, row.text).features(row.text)]
                for row in rows]

    def _token_tag(self, char_tags: list[str], start: int, end: int) -> str:
        first, last = split_tag(char_tags[start]), split_tag(char_tags[end - 1])
        if self.scheme == "BIO":
            return char_tags[start]
        starts, ends = first[0] in ("B", "S"), last[0] in ("E", "S")
        prefix = "S" if starts and ends else "B" if starts else "E" if ends else "M"
        return join_tag(prefix, first[1])

    def collator(self, tokenizer: Any) -> Any:
        size = len(whole(self.lexicon).feature_names()) if self.lexicon is not None else 0
        return PadCollator(tokenizer.pad_token_id or 0, multi_hot={"lexicon": size} if size else None)

    def export_inputs(self, tokenizer: Any) -> dict[str, torch.Tensor]:
        inputs = super().export_inputs(tokenizer)
        if self.lexicon is not None:
            size = len(whole(self.lexicon).feature_names())
            inputs["lexicon"] = torch.zeros(*inputs["input_ids"].shape, size)
            inputs["lexicon"][..., 0] = 1.0
        return inputs

    # -- outputs --------------------------------------------------------------------------------------
    def unbatch(self, model: Any, outputs: Any, batch: dict) -> list[Any]:
        """Per window, the tag id of every position, each with how sure the model was of it: with a CRF the
        Viterbi path's share of the max-marginals at that position (1 where no other tag there comes close
        to the best path's score), without one the tag's softmax probability."""
        logits = outputs.logits.float()
        if self.crf:
            emissions, _, mask = _crf_inputs(logits, None, batch["attention_mask"])
            paths = self._crf_module.viterbi(emissions, mask)
            sure = self._crf_module.max_marginals(emissions, mask).softmax(-1).amax(-1).cpu()
            # position 0 is [CLS]
            return [SureTags([-1, *p], [1.0, *sure[b, :len(p)].tolist()]) for b, p in enumerate(paths)]
        sure, tags = logits.softmax(-1).max(-1)
        return [SureTags(t, s) for t, s in zip(tags.tolist(), sure.tolist())]

    def gather(self, results: list[Any], features: list[dict], rows: Sequence[Row]) -> list[list[tuple[int, int, int]]]:
        """Per row: (start, end, tag id) of every token, each taken from the window where it is most central;
        where the windows' tags say how sure the model was (``unbatch``), the row's ``sure`` is its least
        sure token's."""
        best: list[dict[int, tuple[float, int, int, float | None]]] = [{} for _ in rows]
        for tags, feature in zip(results, features):
            valid, sure = feature["_valid"], getattr(tags, "sure", None)
            for rank, i in enumerate(valid):
                start, end = feature["_offsets"][i]
                centrality = min(rank, len(valid) - 1 - rank)
                current = best[feature["_row"]].get(start)
                if current is None or centrality > current[0]:
                    best[feature["_row"]][start] = (centrality, end, int(tags[i]), None if sure is None else sure[i])
        scored = all(hasattr(tags, "sure") for tags in results)
        gathered = []
        for b in best:
            ordered = sorted(b.items())
            each = [p for _, (*_, p) in ordered] if scored else None
            gathered.append(SureTags([(s, e, t) for s, (_, e, t, _) in ordered],
                                     min(each, default=1.0) if scored else None, each))
        return gathered

    def spans(self, tokens: list[tuple[int, int, int]], stats: DecodeStats | None = None,
              strict: bool = False) -> list[tuple[int, int, str]]:
        """The predicted spans; ``strict``: only the well-formed ones (see ``tags_to_spans``)."""
        return tags_to_spans([self.labels[t] for _, _, t in tokens], self.scheme, [s for s, _, _ in tokens],
                             [e for _, e, _ in tokens], stats, strict=strict)

    def decode(self, outputs: Any, rows: Sequence[Row] | None = None) -> list[dict[str, Any]]:
        results = []
        for tokens, row in zip(outputs, rows):
            spans = self.spans(tokens)
            sure = getattr(tokens, "sure", None)
            results.append({"spans": [{"text": row.text[s:e], "type": k, "start": s, "end": e} for s, e, k in spans],
                            **({"score": round(sure, 6)} if sure is not None else {})})
        return results

    def pseudo_label(self, predicted: dict[str, Any], output: Any = None,
                     unsure_below: float | None = None) -> PseudoLabel:
        """The predicted spans, ranked by the sentence's least sure token; sentences with spans and those
        without are two groups that share the kept count (equally, or as the labelled sentences do), for a
        tagger is surest where it finds nothing (an NER model that misses names would otherwise teach mostly
        sentences without any). With ``unsure_below``, the tokens (of ``output``, ``gather``'s for this
        sentence) the model was less sure of are left untagged and the ranking reads the others: a
        sentence's one doubtful name no longer rules out, or gets taught as, its other tags."""
        spans = [(s["start"], s["end"], s["type"]) for s in predicted["spans"]]
        if unsure_below is None:
            return PseudoLabel(spans, self.pseudo_label_group(spans), predicted["score"])
        if getattr(output, "each", None) is None:
            raise ValueError("pseudo_label with unsure_below reads each token's sureness: give gather's output")
        unsure = [(s, e) for (s, e, _), p in zip(output, output.each) if p < unsure_below]
        sure = [p for p in output.each if p >= unsure_below]
        return PseudoLabel(spans, self.pseudo_label_group(spans), min(sure, default=0.0), _merged(unsure))

    def pseudo_label_group(self, label: Any) -> str:
        return "with spans" if label else "without spans"

    def parity(self, a: Any, b: Any, rows: Sequence[Row]) -> tuple[float, float]:
        """Tag agreement per token: a long text's one changed tag should not count as the whole row."""
        pairs = [(x, y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)]
        return 0.0, float(np.mean([x == y for x, y in pairs])) if pairs else 1.0

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        """Entity P/R/F1 (conlleval-style and strict) on the dev rows' characters, windows merged as at
        prediction: the numbers the report gives, so the best checkpoint is chosen on one of them. Without
        bound rows only ``window_entity_*``: over the tag sequences of the dev windows, where an entity in
        two windows' overlap counts twice."""
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        if self._eval is not None and len(self._eval[1]) == len(logits):
            rows, features = self._eval
            lengths = [len(f["input_ids"]) for f in features]
            width = max(lengths)
            # Batches were padded to their own longest window: each window keeps its own length.
            mask = torch.tensor([[1] * n + [0] * (width - n) for n in lengths])
            scores = SimpleNamespace(logits=torch.from_numpy(np.ascontiguousarray(logits[:, :width])))
            tags = self.unbatch(None, scores, {"attention_mask": mask})
            metrics = self.evaluate(self.gather(tags, features, rows), rows).metrics
            return {k: metrics[k] for k in ("entity_f1", "entity_precision", "entity_recall", "entity_f1_strict",
                                            "char_tag_accuracy")}

        if self.crf:
            emissions, _, mask = _crf_inputs(torch.from_numpy(logits).float(), torch.from_numpy(labels))
            paths = self._crf_module.viterbi(emissions, mask)
            predicted = [[self.labels[t] for t in p] for p in paths]
        else:
            predicted = [[self.labels[t] for t, g in zip(row, gold) if g != -100]
                         for row, gold in zip(logits.argmax(-1).tolist(), labels.tolist())]
        gold = [[self.labels[g] for g in row if g != -100] for row in labels.tolist()]
        gold_spans = [set(tags_to_spans(g, self.scheme)) for g in gold]
        pred_spans = [set(tags_to_spans(p, self.scheme)) for p in predicted]
        tp = sum(len(g & p) for g, p in zip(gold_spans, pred_spans))
        n_pred, n_gold = sum(map(len, pred_spans)), sum(map(len, gold_spans))
        precision, recall = tp / max(n_pred, 1), tp / max(n_gold, 1)
        return {"window_entity_f1": 2 * precision * recall / max(precision + recall, 1e-12),
                "window_entity_precision": precision, "window_entity_recall": recall}

    def evaluate(self, outputs: Any, rows: Sequence[Row]) -> Report:
        """Entity-level scores over characters, twice: ``entity_*`` read the predicted tags as conlleval
        does (a tag that continues no entity starts one), ``entity_*_strict`` count only well-formed
        entities (seqeval's strict mode). The per-type table and error counts are conlleval-style. With the
        training split's spans known (after ``fit``, or saved beside the model): ``oov_recall``,
        ``iv_recall``, ``oov_rate`` (``evaluation.seen_spans``)."""
        gold_tags, pred_tags, strict_tags, all_predicted = [], [], [], []
        correct = total = 0
        errors: Counter = Counter()
        found: Counter = Counter()
        for tokens, row in zip(outputs, rows):
            predicted = self.spans(tokens)
            all_predicted.append(predicted)
            errors.update(span_errors(row.label or [], predicted))
            found.update(kind for _, _, kind in set(row.label or []) & set(predicted))
            # Spans compared over characters in IOB2, whatever the scheme: type and both bounds must match.
            gold_tags.append(_char_iob(len(row.text), row.label or []))
            pred_tags.append(_char_iob(len(row.text), predicted))
            strict_tags.append(_char_iob(len(row.text), self.spans(tokens, strict=True)))
            native_g = spans_to_tags(len(row.text), row.label or [], self.scheme)
            native_p = spans_to_tags(len(row.text), predicted, self.scheme)
            keep = [i for i, c in enumerate(row.text) if not c.isspace()]
            correct += sum(native_g[i] == native_p[i] for i in keep)
            total += len(keep)
        report = _seqeval(gold_tags, pred_tags)
        strict = _seqeval(gold_tags, strict_tags)["micro avg"]
        table = [{"label": k, "precision": v["precision"], "recall": v["recall"], "f1": v["f1-score"],
                  "support": int(v["support"]), **{error: errors[k, error] for error in ERROR_KINDS}}
                 for k, v in report.items() if "avg" not in k]
        micro, macro = report["micro avg"], report["macro avg"]
        metrics = {"entity_f1": micro["f1-score"], "entity_precision": micro["precision"],
                   "entity_recall": micro["recall"], "entity_macro_f1": macro["f1-score"],
                   "entity_f1_strict": strict["f1-score"], "entity_precision_strict": strict["precision"],
                   "entity_recall_strict": strict["recall"],
                   "char_tag_accuracy": correct / max(total, 1), "sentences": len(rows),
                   "entities": int(micro["support"])}
        if self.seen is not None:
            metrics.update(seen_recall([r.text for r in rows], [r.label or [] for r in rows], all_predicted, self.seen))
        outcomes = {row["label"]: {"found": found[row["label"]], **{e: row[e] for e in ERROR_KINDS}} for row in table}
        return Report(metrics, table, outcomes=outcomes)


class SureTags(list):
    """Tags (per position from ``unbatch``, (start, end, tag id) per token from ``gather``) with ``sure``:
    how sure the model was of each position's tag, or of a row's least sure token (None: not known), and
    for a row ``each`` token's."""

    def __init__(self, tags: Sequence[Any], sure: Any, each: Sequence[float] | None = None):
        super().__init__(tags)
        self.sure, self.each = sure, each


def _merged(ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted (start, end) ranges with touching ones joined."""
    out: list[tuple[int, int]] = []
    for s, e in ranges:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return tuple(out)


def _trained_copy(module: Any) -> Any:
    if hasattr(module, "modules_to_save"):
        active = module.active_adapters[0] if hasattr(module, "active_adapters") else module.active_adapter
        return module.modules_to_save[active]
    return module


def _char_iob(length: int, spans: Sequence[tuple[int, int, str]]) -> list[str]:
    return [_iob(t) for t in spans_to_tags(length, spans, "BIO")]


def _seqeval(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """seqeval's report over well-formed IOB2 sequences (both sides are made from spans)."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    return classification_report(gold, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)


def _iob(tag: str) -> str:
    prefix, kind = split_tag(tag)
    return tag if prefix == "O" else f"{prefix}-{kind or 'W'}"


def _crf_inputs(logits: torch.Tensor, labels: torch.Tensor | None, attention_mask: torch.Tensor | None = None):
    """Drop [CLS]; the remaining valid tokens form a prefix (text tokens, then [SEP] and padding)."""
    emissions = logits[:, 1:]
    if labels is not None:
        mask = labels[:, 1:] != -100
        tags = labels[:, 1:].clamp(min=UNTAGGED)  # padding clamps to UNTAGGED too, outside the mask
    else:
        mask = attention_mask[:, 1:].bool().clone()
        lengths = mask.sum(1)  # drop the final [SEP] of each window
        mask[torch.arange(mask.shape[0]), (lengths - 1).clamp(min=0)] = False
        tags = None
    mask[:, 0] = True  # a window always holds at least one position (an empty text still yields one)
    return emissions, tags, mask
