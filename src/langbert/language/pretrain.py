"""``langbert pretrain``: continued masked-LM on unlabelled text, for any language.

Read top to bottom: pack the corpus (held-out 1% apart) -> a fixed, pre-masked held-out set for
perplexity -> BertForMaskedLM with its head tied to the embeddings -> HF Trainer with whole-word masking,
an optional embeddings-only first phase and a wall-time budget -> checkpoint + perplexity before/after.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from transformers import AutoModelForMaskedLM, AutoTokenizer, TrainerCallback

from ..config import PretrainConfig, resolve_model
from ..errors import ConfigError
from ..tasks.load_report import load_for_training
from ..tasks.pooling import carry_pooling_declaration
from ..training.run import RunFolder, finish, open_run, prepare_model, save_model, shared_arguments, train_from
from ..training.trainer import LangbertTrainer, MetricsJsonl
from .adapt import heldout_texts, training_texts
from .masked_only_head import MaskedOnlyHead
from .masking import WholeWordMaskCollator
from .packing import PackedBlocks, pack
from .time_budget import TimeBudget, agree, seconds_per_step, steps_within

logger = logging.getLogger(__name__)


class EmbeddingsFirst(TrainerCallback):
    """Phase 1 trains only the word embeddings and the MLM head: new rows settle in before the body moves.

    The optimizer holds every parameter from the start; frozen ones get no gradient, so AdamW skips them.
    """

    def __init__(self, model: Any, steps: int):
        self.model, self.steps = model, steps

    def set_body_trainable(self, trainable: bool) -> None:
        embeddings = self.model.get_input_embeddings().weight
        head = self.model.get_output_embeddings()
        keep = {id(embeddings), *(id(p) for p in self._head_params(head))}
        for p in self.model.parameters():
            if id(p) not in keep:
                p.requires_grad_(trainable)

    def _head_params(self, head: Any) -> list:
        owner = getattr(self.model, "cls", None)  # BERT's MLM head (transform + bias)
        return list(owner.parameters()) if owner is not None else list(head.parameters())

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step < self.steps:
            logger.info("phase 1: embeddings and MLM head only, until step %d", self.steps)
            self.set_body_trainable(False)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.steps:
            logger.info("phase 2: the full model from step %d", self.steps)
            self.set_body_trainable(True)


class MaskedLMTrainer(LangbertTrainer):
    """Sets, for each batch, which positions the vocabulary head computes (see ``masked_only_head``)."""

    def __init__(self, *args: Any, masked_only: MaskedOnlyHead, **kwargs: Any):
        super().__init__(*args, compute_loss_func=masked_only.loss, **kwargs)
        self.masked_only = masked_only

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with self.masked_only.selecting(inputs["labels"]):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def pretrain(cfg: PretrainConfig) -> Path:
    started = time.perf_counter()
    run = open_run(cfg.output_dir, cfg.resume)
    model_path = resolve_model(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train_set, held = _packed_corpus(cfg, tokenizer, run.out / "data")
    collator, eval_set = _masking(cfg, tokenizer, held)

    torch.manual_seed(cfg.seed)
    model = _masked_lm(cfg, model_path, tokenizer)
    masked_only = MaskedOnlyHead(model)
    args = shared_arguments(
        cfg, run, max_steps=cfg.max_steps, per_device_eval_batch_size=cfg.batch_size,
        eval_strategy="steps" if eval_set else "no", eval_steps=cfg.eval_steps, save_strategy="steps",
        save_steps=cfg.eval_steps,
        prediction_loss_only=True,  # evaluation needs the loss; gathering vocabulary logits costs GBs
    )
    prepare_model(model, args)
    phase = EmbeddingsFirst(model, cfg.embeddings_only_steps) if cfg.embeddings_only_steps else None
    # After TrainingArguments: it sets up the process group, through which the ranks agree on the plan.
    args.max_steps = max_steps = _planned_steps(cfg, model, masked_only, phase, train_set, collator, args.bf16,
                                                run.resume_from, len(eval_set), args.device)
    callbacks = [MetricsJsonl(run.out / "metrics.jsonl"), *([phase] if phase else []),
                 *([TimeBudget(cfg.max_minutes)] if cfg.max_minutes else [])]
    trainer = MaskedLMTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set or None,
                              data_collator=collator, processing_class=tokenizer, callbacks=callbacks,
                              masked_only=masked_only)
    trainer.keep_checkpoints = 1
    before = _perplexity_before(trainer, run, eval_set)
    train_from(trainer, run)
    after = _perplexity(trainer) if eval_set else None

    if not trainer.is_world_process_zero():
        return run.out
    save_model(trainer, tokenizer, run.out)
    carry_pooling_declaration(model_path, run.out)
    logger.info("held-out MLM perplexity: %s -> %s", before, after)
    return finish(run.out, "loss", "masked-LM loss, training and held-out", {
        "stage": "pretrain", "source_model": cfg.model, "config": cfg.to_dict(),
        "steps": trainer.state.global_step, "planned_steps": max_steps, "train_blocks": len(train_set),
        "heldout_blocks": len(eval_set),
        "tokens_seen": trainer.state.global_step * cfg.batch_size * cfg.block_size,
        "heldout_perplexity": {"before": before, "after": after},
        "wall_seconds": round(time.perf_counter() - started, 1),  # this invocation's, from corpus packing on
    })


def _packed_corpus(cfg: PretrainConfig, tokenizer: Any, cache: Path) -> tuple[PackedBlocks, PackedBlocks]:
    """Training and held-out blocks, packed once into ``cache``; a resumed run reuses them."""
    segmenter = cfg.segmenter if cfg.whole_word_masking else None
    # Under torchrun rank 0 packs while the others wait, then they find its files (accelerate's barrier,
    # the state HF's TrainingArguments later reuses).
    with PartialState(cpu=not torch.cuda.is_available()).main_process_first():
        if not (cache / "train.json").exists():
            tokenizer.save_pretrained(cache / "tokenizer")
            pack(training_texts(cfg.corpus), str(cache / "tokenizer"), cache / "train", segmenter, cfg.workers)
            pack(heldout_texts(cfg.corpus), str(cache / "tokenizer"), cache / "heldout", segmenter, 1)
    train_set = PackedBlocks(cache / "train", cfg.block_size, tokenizer.cls_token_id, tokenizer.sep_token_id)
    held = PackedBlocks(cache / "heldout", cfg.block_size, tokenizer.cls_token_id, tokenizer.sep_token_id)
    if len(train_set) == 0:
        raise ConfigError(f"corpus {cfg.corpus} gives no full block of {cfg.block_size} tokens")
    return train_set, held


def _masking(cfg: PretrainConfig, tokenizer: Any, held: PackedBlocks) -> tuple[WholeWordMaskCollator, list[dict]]:
    """The training collator, and the held-out set masked once with a fixed seed, so that perplexities
    are comparable across evaluations."""
    special = tuple(sorted(set(tokenizer.all_special_ids)))

    def collator(generator: torch.Generator | None = None) -> WholeWordMaskCollator:
        return WholeWordMaskCollator(tokenizer.mask_token_id, len(tokenizer), special, cfg.mlm_probability,
                                     cfg.whole_word_masking, generator)

    fixed = collator(torch.Generator().manual_seed(1234))
    eval_set = [{k: v[0] for k, v in fixed([held[i]]).items()} for i in range(min(len(held), cfg.eval_blocks))]
    return collator(), eval_set


def _masked_lm(cfg: PretrainConfig, model_path: str, tokenizer: Any) -> Any:
    model, _ = load_for_training(AutoModelForMaskedLM, model_path, ["cls"], "a masked-LM head, tied to the embeddings")
    if len(tokenizer) > model.config.vocab_size:
        raise ConfigError(f"{cfg.model}: tokenizer has {len(tokenizer)} tokens, the model {model.config.vocab_size}")
    model.tie_weights()
    return model


def _perplexity_before(trainer: LangbertTrainer, run: RunFolder, eval_set: list[dict]) -> float | None:
    """Measured once, before any step, and kept beside the checkpoints: a resumed run reports it too."""
    before_file = run.checkpoints / "perplexity_before.json"
    if not eval_set:
        return None
    if run.resume_from is not None:
        return json.loads(before_file.read_text()) if before_file.is_file() else None
    before = _perplexity(trainer)
    if trainer.is_world_process_zero():
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        before_file.write_text(json.dumps(before))
    return before


def _planned_steps(cfg: PretrainConfig, model: Any, loss_of: Any, phase: EmbeddingsFirst | None,
                   train_set: PackedBlocks, collator: Any, bf16: bool, resume_from: Path | None, eval_blocks: int,
                   device: torch.device) -> int:
    """max_steps, or the steps that fit in max_minutes; a resumed run keeps the plan (and so the schedule) it had."""
    if resume_from is not None:
        return int(json.loads((resume_from / "trainer_state.json").read_text())["max_steps"])
    if not cfg.max_minutes:
        return cfg.max_steps
    model.to(device)
    n = len(train_set)

    def batch(i: int) -> dict:
        return collator([train_set[(i * cfg.batch_size + j) % n] for j in range(cfg.batch_size)])

    step_seconds = seconds_per_step(model, batch, bf16, loss_of)
    first_seconds = None
    if phase is not None:
        phase.set_body_trainable(False)
        first_seconds = seconds_per_step(model, batch, bf16, loss_of)
        phase.set_body_trainable(True)
    planned = steps_within(cfg.max_minutes, step_seconds, cfg.max_steps, cfg.eval_steps,
                           math.ceil(eval_blocks / cfg.batch_size), cfg.embeddings_only_steps, first_seconds)
    logger.info("%.2f s per step (%s s embeddings-only): %d of max_steps %d fit in %.1f minutes; the schedule "
                "is laid out over them", step_seconds, f"{first_seconds:.2f}" if first_seconds else "-", planned,
                cfg.max_steps, cfg.max_minutes)
    # Every rank must run the same number of steps (or the gradient all-reduce hangs): the slowest wins.
    planned = agree(planned, "min", device)
    if planned <= cfg.embeddings_only_steps:
        logger.warning("only %d steps fit in %.1f minutes: the whole run stays in the embeddings-only phase "
                       "(embeddings_only_steps %d)", planned, cfg.max_minutes, cfg.embeddings_only_steps)
    return planned


def _perplexity(trainer: LangbertTrainer) -> float:
    loss = trainer.evaluate()["eval_loss"]
    return float(math.exp(min(loss, 50.0)))
