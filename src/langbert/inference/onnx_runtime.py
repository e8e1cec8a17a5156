"""An exported ONNX model behind the interface ``forward_batches`` drives, so prediction, evaluation and
serving run it as they run the torch model."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

ONNX_FILE = "model.onnx"


class OnnxModel:
    """Quacks like the HF model ``forward_batches`` drives, running ONNX Runtime underneath."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.inputs = {i.name: np.float32 if "float" in i.type else np.int64 for i in self.session.get_inputs()}
        self.training = False
        self._device = torch.zeros(0)

    def parameters(self):
        yield self._device

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def __call__(self, **batch: torch.Tensor) -> SimpleNamespace:
        feeds = {}
        for name, dtype in self.inputs.items():
            value = batch.get(name)
            if value is None:  # models without segment ids still take the input
                value = torch.zeros_like(batch["input_ids"])
            feeds[name] = value.cpu().numpy().astype(dtype)
        values = self.session.run(self.outputs, feeds)
        return SimpleNamespace(**{name: torch.from_numpy(v) for name, v in zip(self.outputs, values)})
