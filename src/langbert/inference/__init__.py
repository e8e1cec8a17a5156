"""Using a trained model folder: batch prediction, ONNX export with a parity check, adapter merging and an
HTTP server, all through one ``Predictor``."""

from .predictor import Predictor

__all__ = ["Predictor"]
