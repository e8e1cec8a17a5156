"""Extractive question answering: the answer is a span of the context, found by a start and an end score
per token (HF's ``...ForQuestionAnswering`` head).

- Rows: ``text`` is the question, ``pair`` the context, ``label`` the answers as character spans of the
  context (``()`` where the context holds no answer, as in SQuAD 2.0). Files default to SQuAD's field
  names: ``question``, ``context``, ``answers``.
- A long context is read in overlapping windows (``stride`` tokens shared), the question repeated in
  each; a window that does not hold the answer is trained to point at [CLS]. The answer of a row is the
  best-scoring span of at most ``MAX_ANSWER_TOKENS`` tokens over all its windows, mapped back to the
  context's characters through the tokenizer's offsets.
- Unanswerable questions: when the training data has any, a row is answered "" when the [CLS] score of
  its windows beats its best span (HF's SQuAD 2.0 rule, without a tuned threshold).
- Scores are SQuAD's exact match and F1 per question, on characters (see ``answers``), during training
  too: the dev rows are bound to the task (``bind_eval``), so the best checkpoint is the best answerer.
  Without them (``compute_metrics`` on bare windows) the only metric is ``window_f1``, the overlap of
  predicted and gold token spans per window, [CLS] for none; it is never reported as ``f1``.
"""

from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.readers import Columns, read_rows
from ..data.rows import Row
from ..errors import DataError
from ..evaluation import Report
from .answers import SCORINGS, answer_f1, answer_spans, exact_match, scoring_for
from .base import Task, model_class_for, register_task
from .heads import checkpoint_output_names, from_pretrained_for_finetuning
from .options import QuestionAnsweringOptions
from .windows import PadCollator, check_windows_cover

MAX_ANSWER_TOKENS = 64
TOP_K = 20
"""Start and end candidates per window: the best span almost always pairs two of the top scores."""
TARGETS = ("start_positions", "end_positions")


@register_task
class QuestionAnswering(Task):
    name = "question-answering"
    description = "extractive QA: the answer span in a context (SQuAD format; unanswerable questions allowed)"
    default_metric = "f1"
    needs_pair = True
    windowed = True

    Options = QuestionAnsweringOptions

    def __init__(self, options: QuestionAnsweringOptions | None = None, labels: Sequence[str] | None = None,
                 unanswerable: bool = False):
        super().__init__(options, ["start", "end"])
        self.unanswerable = unanswerable

    def state(self) -> dict[str, Any]:
        return {**super().state(), "unanswerable": self.unanswerable}

    @property
    def stride(self) -> int:
        return self.options.stride

    # -- data -----------------------------------------------------------------------------------------
    def parse_label(self, raw: Any) -> Any:
        return raw  # answers are checked against their context in ``read``

    def read(self, path: str | Path, columns: Columns = Columns(), label_required: bool = True) -> list[Row]:
        """SQuAD field names unless the columns name others."""
        columns = Columns(text="question" if columns.text == "text" else columns.text,
                          pair=columns.pair or "context",
                          label="answers" if columns.label == "label" else columns.label)
        rows = read_rows(path, columns, None, label_required=label_required)
        return [self._with_spans(r, columns.label) for r in rows]

    @staticmethod
    def _with_spans(row: Row, field: str | None) -> Row:
        if row.label is None:
            return row
        try:
            spans = answer_spans(row.label, row.pair)
        except ValueError as exc:
            raise DataError(str(exc), row.source, row.line, field) from None
        return Row(row.text, spans, row.pair, row.source, row.line)

    def label_summary(self, rows: Sequence[Row]) -> dict[str, Any]:
        from ..data.check import quantiles

        labelled = [r for r in rows if r.label is not None]
        return {"answered": sum(bool(r.label) for r in labelled),
                "unanswerable": sum(r.label == () for r in labelled),
                "answer_chars": quantiles([e - s for r in labelled for s, e in r.label[:1]]),
                "context_chars": quantiles([len(r.pair) for r in rows])}

    def fit(self, rows: Sequence[Row]) -> None:
        self.unanswerable = any(r.label == () for r in rows)
        if self.options.scoring == "auto":  # decided once, by the training data; saved as decided
            self.options = dataclasses.replace(self.options, scoring=scoring_for([r.pair or "" for r in rows[:2000]]))

    # -- model ----------------------------------------------------------------------------------------
    def build_model(self, name_or_path: str, dropout: float | None = None) -> Any:
        from transformers import AutoConfig, AutoModelForQuestionAnswering

        overrides = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout} if dropout is not None else {}
        # Two outputs are always a start and an end score: a QA head in the checkpoint (one of ours, or a
        # hub model's, named LABEL_0/LABEL_1 there) carries on, whatever its outputs are called.
        saved = checkpoint_output_names(name_or_path)
        names = saved if len(saved) == 2 else self.labels
        config = AutoConfig.from_pretrained(name_or_path, id2label=dict(enumerate(names)),
                                            label2id={t: i for i, t in enumerate(names)}, **overrides)
        model_class = model_class_for(AutoModelForQuestionAnswering, config, "question answering: no model class")
        return from_pretrained_for_finetuning(model_class, name_or_path, config, self.head_modules())[0]

    def load_trained(self, path: str) -> Any:
        from transformers import AutoModelForQuestionAnswering

        return AutoModelForQuestionAnswering.from_pretrained(path, use_safetensors=True)

    def head_modules(self) -> list[str]:
        return ["qa_outputs"]

    # -- features -------------------------------------------------------------------------------------
    def encode(self, rows: Sequence[Row], tokenizer: Any, max_length: int, with_labels: bool = True) -> list[dict]:
        self.check_rows_have_pairs(rows)
        questions = [r.text.strip() for r in rows]
        question_tokens = tokenizer(questions, add_special_tokens=False, verbose=False)["input_ids"]
        room = max_length - 3  # [CLS] question [SEP] context [SEP]
        for row, tokens in zip(rows, question_tokens):
            if len(tokens) > room // 2:
                raise DataError(f"the question has {len(tokens)} tokens, more than half of max_length={max_length}: "
                                "too little room is left for the context", row.source, row.line, "question")
        longest = max((len(t) for t in question_tokens), default=0)
        stride = max(0, min(self.stride, (room - longest) // 2))
        enc = tokenizer(questions, [r.pair for r in rows], truncation="only_second", max_length=max_length,
                        stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True)
        # Once per window: the coverage check asks per token, and each call builds the window's whole list.
        sequence_ids = [enc.sequence_ids(w) for w in range(len(enc["input_ids"]))]
        check_windows_cover(rows, [r.pair for r in rows], enc, tokenizer, max_length,
                            lambda w, i: sequence_ids[w][i] == 1)
        features = []
        for w, row_index in enumerate(enc["overflow_to_sample_mapping"]):
            row = rows[row_index]
            in_context = [i for i, s in enumerate(sequence_ids[w]) if s == 1]
            offsets = [tuple(o) for o in enc["offset_mapping"][w]]
            item = {k: enc[k][w] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
            item["_row"], item["_offsets"] = row_index, offsets
            item["_context"] = (in_context[0], in_context[-1]) if in_context else (0, -1)
            if with_labels and row.label is not None:
                item["start_positions"], item["end_positions"] = _answer_tokens(row.label, offsets, item["_context"])
            features.append(item)
        return features

    def collator(self, tokenizer: Any) -> Any:
        return PadCollator(tokenizer.pad_token_id or 0, TARGETS)

    # -- outputs --------------------------------------------------------------------------------------
    def unbatch(self, model: Any, outputs: Any, batch: dict) -> list[Any]:
        lengths = batch["attention_mask"].sum(-1).tolist()
        starts, ends = outputs.start_logits.float().cpu().numpy(), outputs.end_logits.float().cpu().numpy()
        return [(s[:n], e[:n]) for s, e, n in zip(starts, ends, lengths)]

    def gather(self, results: list[Any], features: list[dict], rows: Sequence[Row]) -> list[list[dict]]:
        """Per row, its windows: start and end scores, character offsets and the context's token range."""
        windows: list[list[dict]] = [[] for _ in rows]
        for (start, end), feature in zip(results, features):
            windows[feature["_row"]].append({"start": start, "end": end, "offsets": feature["_offsets"],
                                             "context": feature["_context"]})
        return windows

    def decode(self, outputs: Any, rows: Sequence[Row]) -> list[dict[str, Any]]:
        results = []
        for windows, row in zip(outputs, rows):
            best = _best_span(windows)
            null = min((float(w["start"][0] + w["end"][0]) for w in windows), default=float("inf"))
            if best is None or (self.unanswerable and null > best[0]):
                results.append({"answer": "", "start": None, "end": None, "score": _null_probability(windows)})
            else:
                _, start, end, probability = best
                results.append({"answer": row.pair[start:end], "start": start, "end": end, "score": probability})
        return results

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        (start_logits, end_logits), (gold_start, gold_end) = eval_pred.predictions, eval_pred.label_ids
        if self._eval is not None and len(self._eval[1]) == len(start_logits):
            rows, features = self._eval
            # The Trainer pads every batch's scores to the longest window seen; each window keeps its own.
            results = [(s[:len(f["input_ids"])], e[:len(f["input_ids"])])
                       for s, e, f in zip(start_logits, end_logits, features)]
            metrics = self.evaluate(self.gather(results, features, rows), rows).metrics
            return {k: v for k, v in metrics.items() if k not in ("questions", "unanswerable")}
        scores = []
        for s, e, gs, ge in zip(start_logits, end_logits, gold_start, gold_end):
            ps, pe = _best_window_span(s, e)
            shared = max(0, min(pe, ge) - max(ps, gs) + 1)
            if (ps, pe) == (gs, ge):
                scores.append(1.0)
            elif shared == 0:
                scores.append(0.0)
            else:
                precision, recall = shared / (pe - ps + 1), shared / (ge - gs + 1)
                scores.append(2 * precision * recall / (precision + recall))
        return {"window_f1": float(np.mean(scores)) if scores else 0.0}

    def evaluate(self, outputs: Any, rows: Sequence[Row]) -> Report:
        """``exact_match`` and ``f1`` by the task's ``scoring`` (``scoring_cmrc2018`` is 1 where it is
        CMRC 2018's), and both definitions apart as ``*_squad`` and ``*_cmrc2018``."""
        predicted = self.decode(outputs, rows)
        scoring = self.options.scoring if self.options.scoring != "auto" else \
            scoring_for([r.pair or "" for r in rows])
        scores: dict[str, list[float]] = {f"{m}_{s}": [] for s in SCORINGS for m in ("exact_match", "f1")}
        answered_f1, unanswered_right = [], []
        for row, prediction in zip(rows, predicted):
            golds = [row.pair[s:e] for s, e in row.label or ()] or [""]
            for name in SCORINGS:
                scores[f"exact_match_{name}"].append(exact_match(prediction["answer"], golds, name))
                scores[f"f1_{name}"].append(answer_f1(prediction["answer"], golds, name))
            (answered_f1 if row.label else unanswered_right).append(scores[f"f1_{scoring}"][-1])
        means = {k: float(np.mean(v)) if v else 0.0 for k, v in scores.items()}
        metrics: dict[str, Any] = {"exact_match": means[f"exact_match_{scoring}"], "f1": means[f"f1_{scoring}"],
                                   "scoring_cmrc2018": float(scoring == "cmrc2018"), **means, "questions": len(rows)}
        if unanswered_right:  # SQuAD 2.0 reports both halves: a model answering nothing scores well on one
            metrics["answerable_f1"] = float(np.mean(answered_f1)) if answered_f1 else 0.0
            metrics["unanswerable_accuracy"] = float(np.mean(unanswered_right))
            metrics["unanswerable"] = len(unanswered_right)
        return Report(metrics)

    def parity(self, a: Any, b: Any, rows: Sequence[Row]) -> tuple[float, float]:
        diffs = [float(np.abs(np.concatenate([x["start"] - y["start"], x["end"] - y["end"]])).max())
                 for wa, wb in zip(a, b) for x, y in zip(wa, wb)]
        answers = [x["answer"] == y["answer"] for x, y in zip(self.decode(a, rows), self.decode(b, rows))]
        return max(diffs, default=0.0), float(np.mean(answers)) if answers else 1.0

    def sample_rows(self, texts: Sequence[str] | None = None) -> list[Row]:
        contexts = ["小明住在北京，他在一家书店工作。", "The delivery arrived on Monday, two days late.",
                    "2024年iPhone在北京发布，价格是六千元。"]
        questions = ["小明住在哪里？", "When did the delivery arrive?", "iPhone在哪里发布？"]
        if texts:  # the user's texts as contexts, each asked one question
            return [Row(text=questions[0], pair=t) for t in texts]
        return [Row(text=q, pair=c) for q, c in zip(questions, contexts)]


def _answer_tokens(spans: tuple, offsets: list[tuple[int, int]], context: tuple[int, int]) -> tuple[int, int]:
    """First and last token of the first answer where the window holds all of it, else [CLS] (0, 0)."""
    first, last = context
    if not spans or last < first:
        return 0, 0
    start, end = spans[0]
    if not (offsets[first][0] <= start and offsets[last][1] >= end):
        return 0, 0
    token_start = next(i for i in range(first, last + 1) if offsets[i][1] > start)
    token_end = next(i for i in range(last, first - 1, -1) if offsets[i][0] < end)
    return token_start, max(token_start, token_end)


def _best_window_span(start: np.ndarray, end: np.ndarray) -> tuple[int, int]:
    """The best (start, end) token pair of a window, [CLS] (0, 0) included, without offsets (dev metric)."""
    best, best_score = (0, 0), float(start[0] + end[0])
    for s in np.argsort(start)[-TOP_K:]:
        for e in np.argsort(end)[-TOP_K:]:
            if 0 < s <= e < s + MAX_ANSWER_TOKENS and start[s] + end[e] > best_score:
                best, best_score = (int(s), int(e)), float(start[s] + end[e])
    return best


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _best_span(windows: list[dict]) -> tuple[float, int, int, float] | None:
    """(score, start char, end char, probability) of the best context span over the windows."""
    best = None
    for w in windows:
        first, last = w["context"]
        if last < first:
            continue
        start, end, offsets = w["start"], w["end"], w["offsets"]
        # Probabilities over the context and [CLS], as HF's QA pipeline reports them.
        keep = np.r_[0, first:last + 1]
        p_start, p_end = np.zeros_like(start), np.zeros_like(end)
        p_start[keep], p_end[keep] = _softmax(start[keep]), _softmax(end[keep])
        candidates_s = first + np.argsort(start[first:last + 1])[-TOP_K:]
        candidates_e = first + np.argsort(end[first:last + 1])[-TOP_K:]
        for s in candidates_s:
            for e in candidates_e:
                if s <= e < s + MAX_ANSWER_TOKENS:
                    score = float(start[s] + end[e])
                    if best is None or score > best[0]:
                        best = (score, offsets[s][0], offsets[e][1], float(p_start[s] * p_end[e]))
    return best


def _null_probability(windows: list[dict]) -> float:
    return max((float(_softmax(w["start"])[0] * _softmax(w["end"])[0]) for w in windows), default=1.0)
