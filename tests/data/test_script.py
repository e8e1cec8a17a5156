"""Script conversion: in place, declared with the tokenizer, applied at training, prediction, serving, export."""

from __future__ import annotations

import json

import pytest

from langbert import Predictor, train
from langbert.data.rows import Row
from langbert.data.script import CONVERSION_KEY, convert, converted_rows, declare_conversion
from langbert.errors import ConfigError
from tests.conftest import SENTIMENT, served, tiny_train_config, write_jsonl


def _traditional(text: str) -> str:
    import opencc

    return opencc.OpenCC("s2t").convert(text)


def test_conversion_keeps_every_character_in_its_place():
    assert convert("這個軟體的品質很好，滑鼠不錯", "tw2sp") == "这个软件的品质很好，鼠标不错"  # Taiwan idioms too
    assert convert("iPhone 15 在臺北發布", "tw2sp") == "iPhone 15 在台北发布"
    rows = converted_rows([Row("我們在北京", pair="質量", label=[(3, 5, "LOC")])],
                          type("T", (), {"init_kwargs": {CONVERSION_KEY: "t2s"}})())
    assert rows[0].text == "我们在北京" and rows[0].pair == "质量" and rows[0].label == [(3, 5, "LOC")]


def test_a_phrase_that_changes_length_is_converted_character_by_character(monkeypatch):
    import langbert.data.script as script

    class Converter:  # a phrase rule that changes length, and one character that becomes two
        def convert(self, text):
            return {"ab": "x", "a": "A", "b": "bb"}.get(text, text)

    monkeypatch.setattr(script, "_converter", lambda name: Converter())
    assert convert("ab", "any") == "Ab"


def test_an_unknown_configuration_is_refused_by_name():
    tokenizer = type("T", (), {"init_kwargs": {}})()
    with pytest.raises(ConfigError, match="'s2klingon' is not an OpenCC configuration"):
        declare_conversion(tokenizer, "s2klingon")
    declare_conversion(tokenizer, "tw2sp")
    assert tokenizer.init_kwargs == {CONVERSION_KEY: "tw2sp"}


def test_a_model_trained_on_one_script_reads_the_other(tmp_path, tiny_model_dir):
    from langbert.inference.export import export_onnx

    texts = [t for t, _ in SENTIMENT]
    traditional = [_traditional(t) for t in texts]
    assert traditional != texts
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": l} for t, l in SENTIMENT])
    out = train(tiny_train_config(tmp_path, tiny_model_dir, path, script_conversion="tw2sp"))
    assert json.loads((out / "tokenizer_config.json").read_text())[CONVERSION_KEY] == "tw2sp"
    predictor = Predictor.load(out)
    assert predictor.predict(traditional) == predictor.predict(texts)
    assert served(out, traditional) == json.loads(json.dumps(predictor.predict(texts)))
    export_onnx(out, tmp_path / "onnx", texts=texts)
    assert [p["label"] for p in Predictor.load(tmp_path / "onnx").predict(traditional)] == [l for _, l in SENTIMENT]
    # The same folder without the declaration reads the Traditional characters as [UNK].
    declare_conversion(predictor.tokenizer, None)
    unknown = predictor.tokenizer(traditional)["input_ids"]
    assert sum(i == predictor.tokenizer.unk_token_id for ids in unknown for i in ids) >= 5


def test_spans_point_into_the_text_the_user_sent(tmp_path, tiny_model_dir):
    rows = [("我在北京发布了", [(2, 4, "LOC")]), ("他喜欢上海", [(3, 5, "LOC")]), ("中国人民很好", [(0, 2, "LOC")])]
    path = write_jsonl(tmp_path / "ner.jsonl", [{"text": t, "entities": [list(s) for s in e]} for t, e in rows])
    out = train(tiny_train_config(tmp_path, tiny_model_dir, path, task="token-classification", max_steps=150,
                                  eval_steps=75, dropout=0.0, learning_rate=5e-3, script_conversion="t2s"))
    sent = "我在北京發佈了"
    spans = Predictor.load(out).predict([sent])[0]["spans"]
    assert spans == [{"text": "北京", "type": "LOC", "start": 2, "end": 4}]
    # What a user reads back is cut from what they sent: 中國, not the 中国 the model read.
    assert Predictor.load(out).predict(["中國人民很好"])[0]["spans"] == [{"text": "中國", "type": "LOC", "start": 0,
                                                                          "end": 2}]
