"""Batch prediction from a langbert output folder: ``Predictor.load(dir).predict(texts)``."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch

from ..artifacts import read_metadata
from ..data.rows import Row
from ..data.script import converted_rows
from ..errors import LangbertError
from ..evaluation import Report
from ..kernels.unpadded import install as install_unpadded
from ..tasks import Task, task_from_state
from ..tasks.forward import forward_batches
from .onnx_runtime import ONNX_FILE, OnnxModel

logger = logging.getLogger(__name__)


def _device(device: str | None) -> str:
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


class Predictor:
    """A trained model plus everything needed to use it; loads only safetensors."""

    def __init__(self, task: Task, model: Any, tokenizer: Any, max_length: int, metadata: dict[str, Any],
                 bf16: bool = False, unpadded: bool = True):
        """``bf16``: see ``load``. ``unpadded``: run the encoder on real tokens only where the architecture
        allows (``langbert.kernels.unpadded``; same outputs, less compute on mixed-length batches). Both change
        ``model`` in place (bf16 Linear weights; encoder hooks and the attention function)."""
        self.task, self.model, self.tokenizer = task, model, tokenizer
        self.max_length = max_length
        self.metadata = metadata
        self.bf16 = bf16 and isinstance(model, torch.nn.Module)
        if self.bf16:
            _linears_to_bf16(model)
        self.unpadded = unpadded and isinstance(model, torch.nn.Module) and install_unpadded(model)

    @classmethod
    def load(cls, model_dir: str | Path, device: str | None = None, bf16: bool = False,
             unpadded: bool = True) -> "Predictor":
        """``bf16``: autocast a torch model's forward to bfloat16, its Linear weights stored in bf16 (opt-in:
        fast where the hardware runs it natively, and its outputs differ from fp32 in the last digits; ONNX
        models ignore it)."""
        from transformers import AutoTokenizer

        metadata = read_metadata(model_dir)
        if "task" not in metadata:
            raise LangbertError(f"{model_dir} is a '{metadata.get('stage')}' checkpoint, not a task model: "
                                f"fine-tune it with 'langbert train --model {model_dir}'")
        task = task_from_state(metadata["task"])
        if metadata.get("format", {}).get("name") == "onnx":
            model = OnnxModel(Path(model_dir) / ONNX_FILE)
            task.attach_exported(model, str(model_dir))
        else:
            model = task.load_model(str(model_dir))
            model.to(_device(device)).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        return cls(task, model, tokenizer, int(metadata["max_length"]), metadata, bf16, unpadded)

    @classmethod
    def zero_shot(cls, checkpoint: str, task: Task, max_length: int = 128, device: str | None = None,
                  bf16: bool = False, unpadded: bool = True) -> "Predictor":
        """A predictor over a checkpoint's own head, with no training step: a task whose head the checkpoint
        holds (``Task.head_in_checkpoint``, e.g. ``cloze-classification`` on a masked LM)."""
        from transformers import AutoTokenizer

        from ..config import resolve_model

        if not task.head_in_checkpoint:
            raise LangbertError(f"task '{task.name}' needs a trained head: train it with 'langbert train' first")
        path = resolve_model(checkpoint)
        model = task.build_model(path)
        model.to(_device(device)).eval()
        metadata = {"task": task.state(), "base_model": checkpoint, "max_length": max_length}
        return cls(task, model, AutoTokenizer.from_pretrained(path), max_length, metadata, bf16, unpadded)

    @property
    def takes_pairs(self) -> bool:
        """Whether the model reads a second text: its task needs one, or it was trained on pairs."""
        data = (self.metadata or {}).get("config", {}).get("data", {})
        return bool(self.task.needs_pair or data.get("pair_column"))

    def predict_rows(self, rows: Sequence[Row], batch_size: int = 64) -> list[dict[str, Any]]:
        if not rows:
            return []
        if not self.takes_pairs and any(r.pair is not None for r in rows):
            raise LangbertError(f"pairs: this {self.task.name} model was trained on single texts; send the texts "
                                "alone")
        features = self.task.encode(converted_rows(rows, self.tokenizer), self.tokenizer, self.max_length,
                                    with_labels=False)
        self._warn_truncation(rows, features)
        outputs = forward_batches(self.task, self.model, self.tokenizer, rows, self.max_length, batch_size, self.bf16,
                                  self.unpadded, features)
        return self.task.decode(outputs, rows)

    def predict(self, texts: Sequence[str] | str, pairs: Sequence[str] | None = None,
                batch_size: int = 64) -> list[dict[str, Any]]:
        if isinstance(texts, str):
            texts = [texts]
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
        rows = [Row(text=t, pair=pairs[i] if pairs is not None else None) for i, t in enumerate(texts)]
        return self.predict_rows(rows, batch_size)

    def evaluate(self, rows: Sequence[Row], batch_size: int = 64) -> Report:
        outputs = forward_batches(self.task, self.model, self.tokenizer, rows, self.max_length, batch_size, self.bf16,
                                  self.unpadded)
        return self.task.evaluate(outputs, rows)

    def _warn_truncation(self, rows: Sequence[Row], features: list[dict]) -> None:
        if self.task.windowed:  # windows cover the whole text
            return
        # Only a feature that fills max_length can have lost tokens: re-tokenise just those, untruncated
        # (tokenising every text twice cost ~3% of the server's throughput).
        full = [rows[i] for i, f in enumerate(features) if len(f["input_ids"]) >= self.max_length]
        if not full:
            return
        # verbose=False: transformers' own "will result in indexing errors" is wrong here (the model gets
        # the truncated features); the warning below says what does happen.
        lengths = self.tokenizer([r.text for r in full], [r.pair for r in full] if full[0].pair else None,
                                 truncation=False, add_special_tokens=True, return_length=True,
                                 verbose=False)["length"]
        over = sum(n > self.max_length for n in lengths)
        if over:
            warnings.warn(f"{over} of {len(rows)} texts exceed max_length={self.max_length} tokens and are "
                          "truncated; their predictions see only the beginning", stacklevel=3)


def _linears_to_bf16(model: Any) -> None:
    """Store Linear weights in bf16 once. Autocast would cast them to bf16 at every call anyway (same
    values, so the same outputs) and that cast was a third of a single-sentence prediction's time; layer
    norms and softmax stay in fp32 under autocast as before."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)
