"""Sequence classification over the *mean* of the token vectors, for encoders trained that way.

HF's ``*ForSequenceClassification`` classifies the pooler's tanh(W·h[CLS]). A sentence-transformers
encoder (the embedded all-MiniLM-L6-v2 among them) was trained to put the meaning of a text in the
masked mean of its token vectors; its [CLS] vector and pooler were never trained to. Fine-tuned through
[CLS] such a model starts from a nearly constant input to the classifier and needs many more steps
before it learns anything. Mean pooling gives the head the representation the encoder already makes.

The class is built per architecture on top of its own ``*PreTrainedModel`` (so loading a plain encoder
checkpoint, saving, peft and ONNX export work as for HF's heads). langbert reloads it from the task
state in ``langbert.json``; ``config.json`` says ``langbert_pooling: mean`` and the model type
``langbert-<encoder type>``, which ``AutoModelForSequenceClassification`` and ``pipeline`` map back to this
class once langbert is imported (HF's own head there would put a random pooler in its place; see
``hf_auto``).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .base import model_class_for
from .hf_auto import add_head, register_family

POOLING_KEY = "langbert_pooling"
POOLINGS = ("cls", "mean")
# sentence-transformers declares its pooling in this file next to the encoder.
SENTENCE_TRANSFORMERS_POOLING = "1_Pooling/config.json"


def declared_pooling(name_or_path: str) -> str:
    """``mean`` where the checkpoint says it was trained with mean pooling (sentence-transformers), else ``cls``."""
    path = Path(name_or_path) / SENTENCE_TRANSFORMERS_POOLING
    if not path.is_file():
        try:  # a hub name: only a file already in the local cache counts, nothing is downloaded for this
            from transformers.utils import cached_file

            found = cached_file(name_or_path, SENTENCE_TRANSFORMERS_POOLING, local_files_only=True,
                                _raise_exceptions_for_missing_entries=False)
        except Exception:
            found = None
        if not found:
            return "cls"
        path = Path(found)
    try:
        declared = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "cls"
    return "mean" if declared.get("pooling_mode_mean_tokens") else "cls"


def resolve_pooling(pooling: str, name_or_path: str) -> str:
    """``auto`` -> what the checkpoint declares; an explicit choice is kept (the task validates it)."""
    return declared_pooling(name_or_path) if pooling == "auto" else pooling


def classification_loss(config: Any, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The same losses HF's sequence-classification heads use, chosen by ``config.problem_type``."""
    if config.problem_type == "regression":
        return nn.functional.mse_loss(logits.squeeze(-1).float(), labels.float().view(-1))
    if config.problem_type == "multi_label_classification":
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
    return nn.functional.cross_entropy(logits.float().view(-1, config.num_labels), labels.view(-1))


@functools.lru_cache(maxsize=None)
def _mean_pooled_class(encoder_class: type) -> type:
    pretrained_class = next(c for c in encoder_class.__mro__[1:]
                            if issubclass(c, PreTrainedModel) and c is not PreTrainedModel)
    prefix = pretrained_class.base_model_prefix

    def __init__(self, config):
        pretrained_class.__init__(self, config)
        encoder = encoder_class(config)
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # unused: unused parameters would also break DDP's gradient reduction
        setattr(self, prefix, encoder)
        self.num_labels = config.num_labels
        drop = getattr(config, "classifier_dropout", None)
        self.dropout = nn.Dropout(drop if drop is not None else getattr(config, "hidden_dropout_prob", 0.1))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    # No **kwargs on purpose: HF Trainer would then hand over ``num_items_in_batch`` and stop scaling
    # the (mean) loss for gradient accumulation.
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                  "position_ids": position_ids, "inputs_embeds": inputs_embeds}
        out = getattr(self, prefix)(**{k: v for k, v in inputs.items() if v is not None},
                                    output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        hidden = out.last_hidden_state
        if attention_mask is None:
            pooled = hidden.mean(dim=1)
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        logits = self.classifier(self.dropout(pooled))
        loss = classification_loss(self.config, logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                        attentions=out.attentions)

    name = encoder_class.__name__.removesuffix("Model") + "MeanPoolingForSequenceClassification"
    # Saved under its langbert model type, which AutoModelForSequenceClassification maps back to this class.
    config_class = register_family(pretrained_class.config_class.model_type)
    return type(name, (pretrained_class,), {"__init__": __init__, "forward": forward, "__module__": __name__,
                                            "config_class": config_class})


def mean_pooled_class(config: Any) -> type:
    return _mean_pooled_class(model_class_for(AutoModel, config, "mean pooling: no encoder class"))


add_head("AutoModelForSequenceClassification",
         lambda config_class: _mean_pooled_class(AutoModel._model_mapping[config_class.langbert_base]))


def carry_pooling_declaration(source: str, out: str | Path) -> None:
    """Keep a source model's pooling declaration in a derived checkpoint (adapted, pretrained), so
    ``pooling: auto`` still finds it there."""
    if declared_pooling(source) == "mean":
        target = Path(out) / SENTENCE_TRANSFORMERS_POOLING
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"pooling_mode_mean_tokens": True}, indent=2) + "\n", encoding="utf-8")
