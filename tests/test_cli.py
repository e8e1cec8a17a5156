"""The CLI run in-process: train -> predict (file and stdin) -> eval, data info/check, bad input."""

from __future__ import annotations

import io
import json

import pytest

from langbert.cli import COMMANDS, main
from tests.conftest import SENTIMENT, write_csv


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("cli")
    train_csv = write_csv(tmp / "train.csv", ["review", "stars"], [[t, l] for t, l in SENTIMENT])
    out = tmp / "model"
    code = main(["train", "--model", tiny_model_dir, "--train", str(train_csv), "--dev", str(train_csv),
                 "--text-column", "review", "--label-column", "stars", "--output-dir", str(out),
                 "--max-steps", "60", "--eval-steps", "30", "--learning-rate", "3e-3", "--warmup-ratio", "0",
                 "--batch-size", "8", "--max-length", "32", "--no-bf16", "--no-progress", "--weight-decay", "0"])
    assert code == 0
    return tmp, out, train_csv


def test_train_writes_a_self_describing_folder(trained):
    _, out, _ = trained
    meta = json.loads((out / "langbert.json").read_text(encoding="utf-8"))
    assert meta["task"]["name"] == "text-classification" and meta["max_length"] == 32
    assert set(meta["data"]["fingerprints"]) == {"train", "dev"} and meta["metrics"]["dev"]["accuracy"] == 1.0
    assert meta["config"]["data"]["text_column"] == "review"


def test_predict_from_file_and_stdin(trained, capsys, monkeypatch):
    tmp, out, _ = trained
    texts = tmp / "texts.txt"
    texts.write_text("很好很喜欢\n\n很差很失望\n", encoding="utf-8")
    assert main(["predict", str(out), str(texts), "--out", str(tmp / "p.jsonl")]) == 0
    preds = [json.loads(l) for l in (tmp / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    # one output line per input line: the blank one says it was skipped
    assert [(p["line"], p["text"], p.get("label", p.get("skipped"))) for p in preds] == \
        [(1, "很好很喜欢", "pos"), (2, "", "empty line"), (3, "很差很失望", "neg")]
    monkeypatch.setattr("sys.stdin", io.StringIO("服务很棒\n"))
    capsys.readouterr()
    assert main(["predict", str(out)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["label"] == "pos"
    assert main(["predict", str(out), str(texts), "--padded", "--out", str(tmp / "padded.jsonl")]) == 0
    padded = [json.loads(l) for l in (tmp / "padded.jsonl").read_text(encoding="utf-8").splitlines()]
    # The same model on padded batches: the same answers, scores equal up to float rounding.
    assert [(p["text"], p.get("label")) for p in padded] == [(p["text"], p.get("label")) for p in preds]
    assert [p.get("score", 0) for p in padded] == pytest.approx([p.get("score", 0) for p in preds], abs=1e-6)


def test_eval_writes_reports(trained, capsys):
    tmp, out, train_csv = trained
    report_dir = tmp / "report"
    assert main(["eval", str(out), "--data", str(train_csv), "--text-column", "review", "--label-column", "stars",
                 "--out", str(report_dir)]) == 0
    result = json.loads((report_dir / "eval.json").read_text())
    assert result["train"]["metrics"]["accuracy"] == 1.0
    assert (report_dir / "confusion_train.png").stat().st_size > 1000
    assert "| pos |" in (report_dir / "eval.md").read_text()


def test_eval_rejects_unseen_labels_with_location(trained, capsys):
    tmp, out, _ = trained
    dev = write_csv(tmp / "dev.csv", ["review", "stars"], [["很好", "pos"], ["一般", "meh"]])
    assert main(["eval", str(out), "--data", str(dev), "--text-column", "review", "--label-column", "stars"]) == 2
    err = capsys.readouterr().err
    assert f"{dev}:3: field 'label'" in err and "meh" in err and "Traceback" not in err


def test_data_check_summary_and_errors(tmp_path, tiny_model_dir, capsys):
    good = write_csv(tmp_path / "g.csv", ["text", "label"], [["很好", "pos"], ["很好", "pos"], ["很差", "neg"]])
    assert main(["data", "check", str(good), "--task", "text-classification", "--model", tiny_model_dir]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 3 and summary["duplicate_rows"] == 1 and summary["labels"] == {"pos": 2, "neg": 1}
    assert summary["unk_rate"] == 0 and "hint" not in summary
    foreign = write_csv(tmp_path / "f.csv", ["text", "label"], [["很好", "pos"], ["Ünïcødé ☃☃", "neg"]])
    assert main(["data", "check", str(foreign), "--task", "text-classification", "--model", tiny_model_dir]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["unk_rate"] > 0.05 and "langbert adapt" in summary["hint"]
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"text": "好", "label": "pos"}\n{"text": ""}\n', encoding="utf-8")
    assert main(["data", "check", str(bad), "--task", "text-classification", "--model", tiny_model_dir]) == 2
    assert f"{bad}:2: field 'text': empty text" in capsys.readouterr().err


def test_data_info_and_existing_checkpoints_guard(trained, capsys):
    assert main(["data", "info", "zh-sentiment"]) == 0
    assert "conflicting_texts        47" in capsys.readouterr().out
    _, out, train_csv = trained
    assert main(["train", "--train", str(train_csv), "--output-dir", str(out), "--text-column", "review",
                 "--label-column", "stars"]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command.split(), "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and f"usage: langbert {command}" in out and COMMANDS[command][0] in out


def test_peft_choices_come_from_the_registry(capsys):
    from langbert.training.peft import peft_method_names

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--peft {" + ",".join(peft_method_names()) + "}" in out


def test_adapt_then_pretrain_then_train_from_the_cli(tmp_path, tiny_model_dir, capsys):
    from tests.language.test_adapt import CORPUS

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"{line}{i}" for i, line in enumerate(CORPUS * 20)) + "\n", encoding="utf-8")
    adapted, pretrained = tmp_path / "adapted", tmp_path / "pretrained"
    assert main(["adapt", "--model", tiny_model_dir, "--corpus", str(corpus), "--output-dir", str(adapted),
                 "--init", "mean", "--vocab-size", "300", "--min-frequency", "1"]) == 0
    assert "[UNK] rate" in capsys.readouterr().out
    assert main(["pretrain", "--model", str(adapted), "--corpus", str(corpus), "--output-dir", str(pretrained),
                 "--block-size", "16", "--batch-size", "4", "--max-steps", "4", "--eval-steps", "2", "--workers", "1",
                 "--no-bf16", "--no-progress"]) == 0
    assert "perplexity" in capsys.readouterr().out
    train_csv = write_csv(tmp_path / "t.csv", ["text", "label"], [[t, l] for t, l in SENTIMENT])
    assert main(["train", "--model", str(pretrained), "--train", str(train_csv), "--output-dir", str(tmp_path / "m"),
                 "--max-steps", "2", "--eval-steps", "2", "--no-bf16", "--no-progress", "--max-length", "16"]) == 0


def test_adapt_reports_a_missing_corpus(tmp_path, tiny_model_dir, capsys):
    assert main(["adapt", "--model", tiny_model_dir, "--corpus", str(tmp_path / "nope.txt"),
                 "--output-dir", str(tmp_path / "a")]) == 2
    assert "nope.txt: corpus file not found" in capsys.readouterr().err


def test_question_answering_from_squad_style_jsonl(tmp_path, tiny_model_dir, capsys):
    from tests.conftest import write_jsonl

    rows = [("我在哪", "我在北京", "北京"), ("他在哪", "他在上海", "上海"), ("你在哪", "你在中国", None)]
    qa = write_jsonl(tmp_path / "qa.jsonl", [
        {"question": q, "context": c, "answers": {"text": [a] if a else [], "answer_start": [c.index(a)] if a else []}}
        for q, c, a in rows])
    assert main(["data", "check", str(qa), "--task", "question-answering", "--model", tiny_model_dir]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["answered"] == 2 and summary["unanswerable"] == 1 and summary["answer_chars"]["max"] == 2
    out = tmp_path / "qa-model"
    assert main(["train", "--task", "question-answering", "--model", tiny_model_dir, "--train", str(qa),
                 "--dev", str(qa), "--output-dir", str(out), "--max-steps", "2", "--eval-steps", "2",
                 "--max-length", "32", "--no-bf16", "--no-progress"]) == 0
    assert "model written" in capsys.readouterr().out
    metrics = json.loads((out / "langbert.json").read_text(encoding="utf-8"))["metrics"]
    assert {"exact_match", "f1", "answerable_f1", "unanswerable_accuracy"} <= set(metrics["dev"])
    assert main(["predict", str(out), str(qa)]) == 0
    predictions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["text"] for p in predictions] == [q for q, _, _ in rows]
    assert all({"answer", "start", "end", "score"} <= set(p) for p in predictions)


def test_serve_flags_reach_the_limits_and_absent_ones_keep_the_defaults(monkeypatch):
    from langbert.inference import serve as serve_module
    from langbert.inference.batching import ServeLimits

    seen = {}
    monkeypatch.setattr(serve_module, "serve", lambda model_dir, host, port, api_key, limits, **kw: seen.update(
        limits=limits, **kw))
    assert main(["serve", "some-dir", "--max-connections", "7", "--header-timeout-s", "0.5",
                 "--allowed-host", "api.example"]) == 0
    assert seen["limits"] == ServeLimits(max_connections=7, header_timeout_s=0.5)
    assert seen["allowed_hosts"] == ["api.example"] and seen["docs"] is None
