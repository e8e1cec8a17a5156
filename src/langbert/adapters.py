"""Parameter-efficient fine-tuning through ``peft``: LoRA, AdaLoRA, IA3.

The task head (and a CRF) is trained and saved with the adapter (``modules_to_save``), so a reload
restores both — the pitfall of peft issues #577 and #1070. ``merge`` folds the adapter into an ordinary
checkpoint that export and serving take like any other.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .errors import ConfigError

ADAPTER_CONFIG = "adapter_config.json"
# BERT-family module names; other architectures pass --target-modules. LoRA also adapts the word
# embeddings (a low-rank update, r x (vocab + hidden) parameters): after a vocabulary swap they are the
# least trained part of the model: on an adapted checkpoint LoRA reached 57.5% sentiment accuracy on
# query/value alone and 78.6% with the embeddings too (full fine-tuning 78.9%; benchmarks/peft.notes.md).
# AdaLoRA's SVD layers take only Linear modules.
DEFAULT_TARGETS = {"lora": ["query", "value", "word_embeddings"], "adalora": ["query", "value"],
                   "ia3": ["key", "value", "output.dense"]}


def is_adapter(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def wrap(model: Any, method: str, head: list[str], r: int = 8, alpha: int = 16, dropout: float = 0.1,
         targets: list[str] | None = None, total_steps: int | None = None) -> Any:
    try:
        from peft import AdaLoraConfig, IA3Config, LoraConfig, get_peft_model
    except ImportError as exc:
        raise ConfigError("--peft needs the 'peft' package (pip install peft)") from exc
    targets = targets or DEFAULT_TARGETS[method]
    if method == "lora":
        config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, modules_to_save=head)
    elif method == "adalora":
        total = max(total_steps or 100, 10)
        # Budget schedule: full rank for the first 10% of steps, prune towards r until 70%, then fixed.
        config = AdaLoraConfig(init_r=2 * r, target_r=r, lora_alpha=alpha, lora_dropout=dropout,
                               target_modules=targets, modules_to_save=head, total_step=total,
                               tinit=math.ceil(0.1 * total), tfinal=math.ceil(0.3 * total), deltaT=max(1, total // 50))
    elif method == "ia3":
        config = IA3Config(target_modules=targets, feedforward_modules=[t for t in targets if "dense" in t],
                           modules_to_save=head)
    else:
        raise ConfigError(f"unknown peft method '{method}'")
    return get_peft_model(model, config)


class AdaLoraBudget(TrainerCallback):
    """AdaLoRA reallocates ranks after each optimizer step, before gradients are cleared."""

    def __init__(self, model: Any):
        self.model = model

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.model.base_model.update_and_allocate(state.global_step)


def load_adapter(base: Any, path: str | Path) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(path))


def base_model_of(path: str | Path) -> str:
    return json.loads((Path(path) / ADAPTER_CONFIG).read_text(encoding="utf-8"))["base_model_name_or_path"]


def trainable_report(model: Any) -> dict[str, float]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_parameters": trainable, "total_parameters": total, "trainable_percent": 100 * trainable / total}


def merge(model_dir: str | Path, out_dir: str | Path) -> Path:
    """Adapter + base -> one ordinary checkpoint (same predictions, no peft needed to load it)."""
    from .artifacts import read_metadata, write_metadata
    from .predict import Predictor

    predictor = Predictor.load(model_dir, device="cpu", unpadded=False)  # the model as saved, no hooks
    if not hasattr(predictor.model, "merge_and_unload"):
        raise ConfigError(f"{model_dir} holds no adapter to merge")
    merged = predictor.model.merge_and_unload()
    predictor.task.bind(merged)
    out = Path(out_dir)
    merged.save_pretrained(out)
    predictor.tokenizer.save_pretrained(out)
    predictor.task.save_extra(merged, out)
    metadata = read_metadata(model_dir)
    metadata.pop("versions", None)
    metadata["merged_from"] = str(model_dir)
    metadata["config"]["peft"] = "none"
    write_metadata(out, metadata)
    return out
