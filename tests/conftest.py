"""Tiny random BERTs built in memory, and small data written by the tests themselves."""

from __future__ import annotations

import dataclasses
import json
import os
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CJK = "好差很不错坏棒烂喜欢讨厌快慢贵便宜质量服务满意失望我你他的是了在北京上海发布年月日中国人民"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *CJK, *"abcdefghijklmnopqrstuvwxyz0123456789",
         "iphone", "##s", "##ing", ".", ",", "!", "?", "like", "be", "fond", "of", "big", "large", "beijing"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A 2-layer, 32-wide random BERT with a small character vocabulary, saved like a hub checkpoint."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    # transformers 5 takes the vocabulary itself (a silently ignored ``vocab_file`` gives an all-[UNK] tokenizer)
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(dict.fromkeys(VOCAB))}, do_lower_case=True)
    assert tokenizer.convert_tokens_to_ids("好") != tokenizer.unk_token_id
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory, tiny_model_dir) -> str:
    """The tiny BERT's body and tokenizer with a (random) masked-LM head, as ``langbert pretrain`` leaves one."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-mlm")
    torch.manual_seed(0)
    BertForMaskedLM.from_pretrained(tiny_model_dir).save_pretrained(folder)
    BertTokenizerFast.from_pretrained(tiny_model_dir).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def sentence_encoder_dir(tmp_path_factory, tiny_model_dir) -> str:
    """The tiny BERT dressed as a sentence-transformers model: it declares mean pooling."""
    import shutil

    folder = tmp_path_factory.mktemp("st") / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": False,
                                                                   "pooling_mode_mean_tokens": True}))
    return str(folder)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    import csv

    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


SENTIMENT = [
    ("很好很喜欢", "pos"), ("质量好满意", "pos"), ("服务很棒", "pos"), ("便宜又好", "pos"),
    ("很差很失望", "neg"), ("质量差讨厌", "neg"), ("服务太烂", "neg"), ("贵又慢不好", "neg"),
]


def tiny_train_config(tmp_path: Path, model_dir: str, train: Path, dev: Path | None = None, **overrides):
    """Settings that make a tiny model memorise a handful of rows in a few seconds."""
    from langbert.config import DataConfig, TrainConfig

    data_keys = {"pair_column", "label_delimiter", "text_column", "label_column", "test"}
    data = DataConfig(train=str(train), dev=str(dev or train), **{k: overrides.pop(k) for k in list(overrides) if k in data_keys})
    settings = dict(task="text-classification", model=model_dir, output_dir=str(tmp_path / "out"), data=data,
                    max_length=32, max_steps=60, eval_steps=30, batch_size=8, learning_rate=3e-3, warmup_ratio=0.0,
                    weight_decay=0.0, logging_steps=10, progress=False, bf16=False, seed=0)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    options = {k: overrides.pop(k) for k in list(overrides) if k not in fields}  # the task's own options
    settings.update(overrides, options=options)
    return TrainConfig(**settings)


def train_sentiment(tmp_path: Path, model_dir: str, **overrides) -> Path:
    """The tiny model fine-tuned on ``SENTIMENT``: a trained classifier folder for export/serve/pooling tests."""
    from langbert import train

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    return train(tiny_train_config(tmp_path, model_dir, data, **overrides))


def watch_first_encoder_layer(model) -> tuple[list[tuple[int, ...]], object]:
    """The shapes the first encoder layer receives, appended at every forward, and the hook's handle."""
    import torch

    layer = next(m for m in model.modules() if isinstance(getattr(m, "layer", None), torch.nn.ModuleList)).layer[0]
    shapes: list[tuple[int, ...]] = []
    return shapes, layer.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape)))


@contextmanager
def transformers_warnings():
    """Warnings logged by transformers (its logger does not propagate to pytest's caplog)."""
    import logging

    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def served(model_dir, texts, pairs=None):
    """/predict of ``langbert serve`` on ``model_dir``, in-process."""
    from fastapi.testclient import TestClient

    from langbert.inference.serve import create_app

    with TestClient(create_app(str(model_dir))) as client:
        response = client.post("/predict", json={"texts": list(texts), "pairs": list(pairs) if pairs else None})
    assert response.status_code == 200, response.text
    return response.json()["predictions"]
