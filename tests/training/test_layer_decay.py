"""Layer-wise learning-rate decay: which rate each part of the model learns at, and how it composes with
the word embeddings' and the CRF's own multiples."""

from __future__ import annotations

import pytest
from transformers import AutoModelForTokenClassification

from langbert.errors import ConfigError
from langbert.training.layer_decay import layer_scales, transformer_layers


def test_scales_go_down_the_stack(tiny_model_dir):
    model = AutoModelForTokenClassification.from_pretrained(tiny_model_dir, num_labels=3)
    scales = layer_scales(model, 0.5)
    embeddings, first, second = scales
    assert len(transformer_layers(model)) == 2
    assert first[1] == 0.25 and second[1] == 0.5 and embeddings[1] == 0.125
    assert model.bert.embeddings.word_embeddings.weight in embeddings[0]
    named = {id(p) for params, _ in scales for p in params}
    assert id(model.classifier.weight) not in named  # the head at the full rate
    assert layer_scales(model, 1.0) == []


def test_refused_where_it_has_no_meaning():
    from langbert.config import TrainConfig

    for bad in (dict(layer_lr_decay=0.0), dict(layer_lr_decay=1.5), dict(layer_lr_decay=0.8, peft="lora"),
                dict(layer_lr_decay=0.8, method="setfit")):
        with pytest.raises(ConfigError, match="layer_lr_decay"):
            TrainConfig(**bad)


def test_optimizer_groups_compose_the_multiples(tmp_path, tiny_model_dir):
    """Through training's own optimizer: the word embeddings at decay^3 x their scale, the CRF at its scale,
    each layer at its depth's rate, the head at the base rate."""
    from langbert.training.finetune import prepare_task, training_arguments
    from langbert.training.run import open_run
    from langbert.training.trainer import LangbertTrainer
    from tests.conftest import tiny_train_config, write_jsonl

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": "我在北京", "entities": [[2, 4, "LOC"]]}] * 4)
    config = tiny_train_config(tmp_path, tiny_model_dir, data, task="token-classification", crf=True,
                               learning_rate=1e-3, layer_lr_decay=0.5, embedding_lr_scale=10.0, crf_lr_scale=100.0)
    task, _ = prepare_task(config)
    model = task.build_model(tiny_model_dir)
    args = training_arguments(config, task, open_run(config.output_dir, False), 4)
    trainer = LangbertTrainer(model=model, args=args, eval_dataset=[{}])
    trainer.lr_scales = [*layer_scales(model, 0.5), ([model.get_input_embeddings().weight], 10.0),
                         *task.lr_scaled_parameters()]
    optimizer = trainer.create_optimizer()
    rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert all(g["params"] for g in optimizer.param_groups)
    assert rate[id(model.get_input_embeddings().weight)] == pytest.approx(1e-3 * 0.125 * 10)
    assert rate[id(model.bert.embeddings.position_embeddings.weight)] == pytest.approx(1e-3 * 0.125)
    assert rate[id(model.bert.encoder.layer[0].attention.self.query.weight)] == pytest.approx(1e-3 * 0.25)
    assert rate[id(model.bert.encoder.layer[1].output.dense.bias)] == pytest.approx(1e-3 * 0.5)
    assert rate[id(model.classifier.weight)] == pytest.approx(1e-3)
    assert all(rate[id(p)] == pytest.approx(1e-3 * 100) for p in task.lr_scaled_parameters()[0][0])
