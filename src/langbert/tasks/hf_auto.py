"""langbert's own heads under model types of their own, known to transformers' Auto classes and pipelines.

A head HF does not have (classification over the mean of the token vectors, a CRF, lexicon features)
saved under the encoder's model type (``bert``) would load through ``AutoModelFor...`` or
``transformers.pipeline`` as HF's head for that type: a random pooler in place of the mean, emissions
read without their transitions, the lexicon ignored. Every answer would change and nothing would fail.

Such a folder's ``config.json`` therefore says ``"model_type": "langbert-bert"`` (``langbert-`` and the
encoder's type). ``import langbert`` registers those types with ``AutoConfig`` for the BERT family
(``FAMILIES``; any other type as soon as langbert reads or writes such a folder, or by
``register_family``), and the first config of a type built registers its heads with
``AutoModelForSequenceClassification`` and ``AutoModelForTokenClassification``. So ``pipeline(...)`` and
the Auto classes give langbert's predictions, with no ``trust_remote_code``. Without langbert installed,
transformers refuses the folder with "model type `langbert-bert` ... does not recognize this
architecture": it names the package rather than loading a random head.

The config class derives from the encoder's, so everything else (peft, ONNX export, tokenizers) reads
it as the encoder's config; ``base_config_class`` gives the class HF's own mappings know.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

from ..errors import ConfigError

PREFIX = "langbert-"
FAMILIES = ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "albert", "deberta-v2", "camembert",
            "mpnet", "ernie", "megatron-bert", "xlm", "modernbert")
"""Encoder types registered on ``import langbert``: what a user of an Auto class is likely to hold."""

_HEADS: list[tuple[str, Callable[[type], type]]] = []
"""(Auto class name, config class -> the langbert model class for it), filled by the modules of the heads."""


def add_head(auto_name: str, model_class_for_config: Callable[[type], type]) -> None:
    """Make ``transformers.<auto_name>`` build ``model_class_for_config(config class)`` for langbert types."""
    _HEADS.append((auto_name, model_class_for_config))


def is_langbert_type(model_type: str) -> bool:
    return model_type.startswith(PREFIX)


def base_config_class(config_class: type) -> type:
    """The encoder's own config class under a langbert one (itself for any other)."""
    return getattr(config_class, "langbert_base", config_class)


@lru_cache(maxsize=None)
def register_family(base_type: str) -> type:
    """The config class of ``langbert-<base_type>``, registered with ``AutoConfig`` (once)."""
    from transformers import CONFIG_MAPPING, AutoConfig

    if is_langbert_type(base_type):
        base_type = base_type[len(PREFIX):]
    try:
        base = CONFIG_MAPPING[base_type]
    except KeyError as exc:
        raise ConfigError(f"model type '{base_type}' is not known to this transformers version") from exc

    def __init__(self, **kwargs):
        base.__init__(self, **kwargs)
        _register_heads(type(self))

    cls = type(f"Langbert{base.__name__}", (base,), {
        "model_type": PREFIX + base_type, "langbert_base": base, "__init__": __init__, "__module__": __name__,
        "__doc__": f"{base.__name__} of a folder whose head is langbert's (see langbert.tasks.hf_auto)."})
    AutoConfig.register(cls.model_type, cls, exist_ok=True)
    return cls


def register_saved(path: Any) -> None:
    """Register the langbert type a saved folder declares (any encoder family), before it is read."""
    import json
    from pathlib import Path

    file = Path(path) / "config.json"
    try:
        model_type = json.loads(file.read_text(encoding="utf-8")).get("model_type", "")
    except (OSError, ValueError, AttributeError):
        return  # not a local folder, or no config: whatever reads it next reports that
    if is_langbert_type(model_type):
        register_family(model_type)


def register_families(families: tuple[str, ...] = FAMILIES) -> None:
    """Register the langbert types of ``families`` that this transformers version knows."""
    from transformers import CONFIG_MAPPING

    for family in families:
        if family in CONFIG_MAPPING:
            register_family(family)


def as_langbert_type(config: Any, own_head: bool) -> Any:
    """``config`` under its langbert type where the model has a head of langbert's own (``own_head``),
    else under the encoder's type (a langbert folder fine-tuned again with an HF head)."""
    if is_langbert_type(config.model_type) == own_head:
        return config
    cls = register_family(config.model_type) if own_head else base_config_class(type(config))
    return cls(**{k: v for k, v in config.to_dict().items() if k != "model_type"})


@lru_cache(maxsize=None)
def _register_heads(config_class: type) -> None:
    import transformers

    # The heads were added when ``langbert.tasks`` imported the modules that define them, which any
    # import of this module does first.
    for auto_name, model_class_for_config in _HEADS:
        model_class = model_class_for_config(config_class)
        getattr(transformers, auto_name).register(config_class, model_class, exist_ok=True)
