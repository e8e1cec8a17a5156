"""One line instead of transformers' load report when a model is loaded for training.

Building a task head on a pretrained body, or a masked-LM head on an encoder that had none, makes
transformers print a table of MISSING and UNEXPECTED keys (and, for a tied head both sides of which are
absent, "This checkpoint seem corrupted"): the expected event, reported as a fault. ``load_for_training``
keeps those records back, and says in one line what starts new and what goes unused, and why; weights
missing outside the parts expected to be new are a real fault and stay a warning.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

logger = logging.getLogger(__name__)

_REPORTS = ("LOAD REPORT", "This checkpoint seem corrupted")


@contextmanager
def _held_reports() -> Iterator[list[logging.LogRecord]]:
    source = logging.getLogger("transformers.modeling_utils")
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        if any(marker in record.getMessage() for marker in _REPORTS):
            held.append(record)
            return False
        return True

    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" for a few MB is noise in a training log
    source.addFilter(hold)
    try:
        yield held
    finally:
        source.removeFilter(hold)
        if bar:
            hf_logging.enable_progress_bar()


def _parts(keys: Sequence[str], body: str) -> str:
    """Top-level modules of ``keys``; inside the body (``bert``, ``roberta``, ...) one level deeper."""
    parts = sorted({".".join(k.split(".")[:2 if k.split(".")[0] == body else 1]) for k in keys})
    return ", ".join(parts[:6]) + (f" and {len(parts) - 6} more" if len(parts) > 6 else "")


def load_for_training(model_class: Any, path: str, new: Sequence[str], why: str, **kwargs: Any) -> tuple[Any, dict]:
    """``model_class.from_pretrained(path, **kwargs)`` and its loading info. ``new``: top-level module
    names expected to start without weights (the heads); ``why``: a few words on why they are new."""
    with _held_reports():
        model, info = model_class.from_pretrained(path, output_loading_info=True, **kwargs)
    missing = list(info.get("missing_keys") or [])
    unused = list(info.get("unexpected_keys") or [])
    surprising = [k for k in missing if k.split(".")[0] not in new and not _tied(model, k)]
    body = getattr(model, "base_model_prefix", "")
    if surprising:
        logger.warning("%s: %d weights the model needs are not in the checkpoint and start random: %s",
                       path, len(surprising), _parts(surprising, body))
    expected = [k for k in missing if k not in surprising]
    if expected or unused:
        logger.info("%s: %s%s", path, f"new {_parts(expected, body)} ({why})" if expected else "nothing new",
                    f"; not used: {_parts(unused, body)}" if unused else "")
    return model, info


def _tied(model: Any, key: str) -> bool:
    """A weight tied to another (an MLM decoder to the input embeddings) is never missing in earnest."""
    tied = getattr(model, "_tied_weights_keys", None) or {}
    return key in tied
