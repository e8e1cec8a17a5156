"""Options a task declares: a frozen dataclass per task, validated on construction.

A recipe fills them from its ``options:`` section, ``langbert train`` turns each field into a flag (the
attribute docstring is its help), and the task's state in ``langbert.json`` saves them with the labels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from ..config import check_literals
from ..errors import ConfigError


@dataclass(frozen=True)
class TaskOptions:
    """A task without options of its own."""

    def __post_init__(self) -> None:
        check_literals(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], task: str) -> "TaskOptions":
        known = sorted(f.name for f in dataclasses.fields(cls))
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"task '{task}' has no option(s) {unknown}; its options: {known or 'none'}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ClassificationOptions(TaskOptions):
    pooling: Literal["auto", "cls", "mean"] = "auto"
    """Classify the [CLS] pooler output or the masked mean of the token vectors; ``auto`` takes what the
    checkpoint was trained with (mean for sentence-transformers models, whose [CLS] was never trained)."""


@dataclass(frozen=True)
class MultiLabelOptions(ClassificationOptions):
    threshold: float = 0.5
    """A label is predicted where its sigmoid reaches this value."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.threshold < 1:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}")


@dataclass(frozen=True)
class WindowOptions(TaskOptions):
    stride: int = 32
    """Tokens shared by consecutive windows of a long text, so a span near a border is seen whole once."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stride < 0:
            raise ConfigError(f"stride must be >= 0, got {self.stride}")


@dataclass(frozen=True)
class TokenClassificationOptions(WindowOptions):
    tag_scheme: Literal["BIO", "BMES"] = "BIO"
    """Tags over characters; a built-in dataset may set its own (BMES for word segmentation)."""
    crf: bool = False
    """A CRF head (learned tag transitions, invalid moves forbidden) instead of a per-token softmax."""
    crf_lr_scale: float = 100.0
    """The CRF's start, end and transition scores learn at this multiple of the learning rate: a few dozen
    numbers starting at zero barely move at the body's rate, and the CRF then only constrains decoding."""
    lexicon: list[str] = dataclasses.field(default_factory=list)
    """Lexicon features beside the encoder's output (SoftLexicon's B/M/E/S sets of each character): sources
    ``cc-cedict``, ``train`` (the training split's words or entity strings, out of fold) or a file of
    ``word[<TAB>count[<TAB>type]]``. Saved with the model; none by default."""
    lexicon_folds: int = 5
    """Folds of the out-of-fold training-split lexicon (a training sentence sees the other folds' entries)."""
    lexicon_lr_scale: float = 10.0
    """The lexicon projection (new, small) learns at this multiple of the learning rate."""
    lexicon_input: bool = False
    """The encoder reads the lexicon features too: their embedding (starting at zero) is added to each
    character's word embedding, so every layer sees which lexicon words cover it and its neighbours
    (lexicon-enhanced BERT, Liu et al., ACL 2021, at the bottom layer); the output projection stays."""
    ngram_buckets: int = 0
    """Hashed n-gram scores beside the encoder (0: none): per tag, a learned weight for each token at
    offsets -2..+2 and each adjacent pair among them, the features of a classical feature CRF, hashed into
    this many rows (e.g. 1048576). They start at zero and are saved in the model; export needs no input."""
    ngram_lr_scale: float = 100.0
    """The n-gram scores learn at this multiple of the learning rate: each is read only where its n-gram
    occurs, so at the body's rate a rare one would barely move."""
    ngram_dropout: float = 0.0
    """While training, each n-gram score is dropped with this probability (the rest rescaled), so the
    encoder keeps learning to label where the table is silent, as it is for an n-gram unseen in training.
    Off by default: at 0.3 it gave no gain on zh-ner or zh-cws (benchmarks/RESULTS.md, sequence_labeling)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.crf_lr_scale <= 0 or self.lexicon_lr_scale <= 0 or self.ngram_lr_scale <= 0:
            raise ConfigError("crf_lr_scale, lexicon_lr_scale and ngram_lr_scale must be > 0")
        if not 0 <= self.ngram_buckets < 2**31:
            raise ConfigError(f"ngram_buckets must be in [0, 2**31) (0: no n-gram scores), got {self.ngram_buckets}")
        if not 0 <= self.ngram_dropout < 1:
            raise ConfigError(f"ngram_dropout must be in [0, 1), got {self.ngram_dropout}")
        if self.lexicon_folds < 2:
            raise ConfigError(f"lexicon_folds must be >= 2, got {self.lexicon_folds}")
        if isinstance(self.lexicon, str):  # a recipe may give one source as a string
            object.__setattr__(self, "lexicon", [self.lexicon])
        object.__setattr__(self, "lexicon", list(self.lexicon))


@dataclass(frozen=True)
class QuestionAnsweringOptions(WindowOptions):
    scoring: Literal["auto", "squad", "cmrc2018"] = "auto"
    """Which official definition ``exact_match`` and ``f1`` follow (both are reported, suffixed):
    ``squad`` (whitespace tokens, English normalisation) or ``cmrc2018`` (Chinese characters, longest common
    substring); ``auto`` takes ``cmrc2018`` when the training contexts are mostly Chinese."""
