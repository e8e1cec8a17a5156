"""``langbert merge``: fold a parameter-efficient adapter into an ordinary checkpoint that export and serving
take like any other, with the same predictions and no ``peft`` needed to load it."""

from __future__ import annotations

from pathlib import Path

from ..artifacts import read_metadata, write_metadata
from ..errors import ConfigError
from .predictor import Predictor


def merge(model_dir: str | Path, out_dir: str | Path) -> Path:
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
