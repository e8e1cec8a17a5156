"""Parameter-efficient fine-tuning through ``peft``: a registry of methods, each a name, a default set of
modules to wrap, and a builder of its ``peft`` config.

The task head (and a CRF) is trained and saved with the adapter (``modules_to_save``), so a reload restores
both (peft issues #577 and #1070). ``langbert merge`` folds the adapter into an ordinary checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from transformers import TrainerCallback

from ..errors import ConfigError


@dataclass(frozen=True)
class AdapterSettings:
    """What a method's config builder gets: the shared ``TrainConfig`` fields, resolved."""

    r: int
    alpha: int
    dropout: float
    targets: list[str]
    head: list[str]
    total_steps: int


@dataclass(frozen=True)
class PeftMethod:
    name: str
    default_targets: tuple[str, ...]
    """BERT-family module names; other architectures pass ``target_modules``."""
    build_config: Callable[[AdapterSettings], Any]
    callbacks: Callable[[Any], list[TrainerCallback]] = lambda model: []
    """Trainer callbacks the method needs while training (AdaLoRA's rank budget)."""
    adapts_embeddings: bool = False
    """Its adapter can wrap an ``nn.Embedding`` (LoRA's can; AdaLoRA's SVD layers and IA3's scalings take
    only Linear modules)."""


_METHODS: dict[str, PeftMethod] = {}


def register_peft_method(method: PeftMethod) -> PeftMethod:
    if method.name in _METHODS or method.name == "none":
        raise ValueError(f"peft method '{method.name}' is already registered")
    _METHODS[method.name] = method
    return method


def peft_method_names() -> list[str]:
    """``none`` (train the whole model) and every registered method: the choices of ``--peft``."""
    return ["none", *sorted(_METHODS)]


def get_peft_method(name: str) -> PeftMethod:
    if name not in _METHODS:
        raise ConfigError(f"unknown peft method '{name}'; known: {peft_method_names()}")
    return _METHODS[name]


EMBEDDINGS = "word_embeddings"


def embeddings_mode(method: str, requested: str, new_vocabulary: bool) -> str:
    """How ``method`` treats the word embeddings (see ``TrainConfig.peft_embeddings``). After a vocabulary
    swap the embeddings are the least trained part of the model: a method that leaves them frozen stays far
    below full fine-tuning there (AdaLoRA in benchmarks/peft.notes.md)."""
    spec = get_peft_method(method)
    if requested == "auto":
        return "adapter" if spec.adapts_embeddings else "full" if new_vocabulary else "frozen"
    if requested == "adapter" and not spec.adapts_embeddings:
        raise ConfigError(f"peft_embeddings: adapter: {method} has no adapter for an embedding layer (only "
                          f"Linear modules); use 'full' (trained in full, saved with the adapter) or 'frozen'")
    return requested


def wrap(model: Any, method: str, head: list[str], r: int = 8, alpha: int = 16, dropout: float = 0.1,
         targets: list[str] | None = None, total_steps: int | None = None,
         embeddings: str = "frozen") -> tuple[Any, list[TrainerCallback]]:
    """``model`` wrapped by ``method``'s adapter, and the callbacks its training needs. ``embeddings``: a
    resolved ``embeddings_mode``."""
    spec = get_peft_method(method)
    try:
        from peft import get_peft_model
    except ImportError as exc:
        raise ConfigError("--peft needs the 'peft' package (pip install peft)") from exc
    targets = [t for t in (targets or spec.default_targets) if t != EMBEDDINGS or embeddings == "adapter"]
    if embeddings == "adapter" and EMBEDDINGS not in targets:
        targets.append(EMBEDDINGS)
    head = [*head, EMBEDDINGS] if embeddings == "full" else list(head)
    settings = AdapterSettings(r, alpha, dropout, targets, head, max(total_steps or 100, 10))
    wrapped = get_peft_model(model, spec.build_config(settings))
    return wrapped, spec.callbacks(wrapped)


def trainable_report(model: Any) -> dict[str, float]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_parameters": trainable, "total_parameters": total, "trainable_percent": 100 * trainable / total}


# -- the methods ---------------------------------------------------------------------------------------

def _lora(s: AdapterSettings) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=s.r, lora_alpha=s.alpha, lora_dropout=s.dropout, target_modules=s.targets,
                      modules_to_save=s.head)


def _adalora(s: AdapterSettings) -> Any:
    from peft import AdaLoraConfig

    # Budget schedule: full rank for the first 10% of steps, prune towards r until 70%, then fixed.
    total = s.total_steps
    return AdaLoraConfig(init_r=2 * s.r, target_r=s.r, lora_alpha=s.alpha, lora_dropout=s.dropout,
                         target_modules=s.targets, modules_to_save=s.head, total_step=total,
                         tinit=math.ceil(0.1 * total), tfinal=math.ceil(0.3 * total), deltaT=max(1, total // 50))


def _ia3(s: AdapterSettings) -> Any:
    from peft import IA3Config

    return IA3Config(target_modules=s.targets, feedforward_modules=[t for t in s.targets if "dense" in t],
                     modules_to_save=s.head)


class AdaLoraBudget(TrainerCallback):
    """AdaLoRA reallocates ranks after each optimizer step, before gradients are cleared."""

    def __init__(self, model: Any):
        self.model = model

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.model.base_model.update_and_allocate(state.global_step)


# The word embeddings come on top of these, as embeddings_mode says: LoRA puts a low-rank update on them
# (r x (vocab + hidden) parameters); on an adapted checkpoint LoRA on query/value alone stayed far below
# full fine-tuning (benchmarks/peft.notes.md).
register_peft_method(PeftMethod("lora", ("query", "value"), _lora, adapts_embeddings=True))
register_peft_method(PeftMethod("adalora", ("query", "value"), _adalora, lambda model: [AdaLoraBudget(model)]))
register_peft_method(PeftMethod("ia3", ("key", "value", "output.dense"), _ia3))
