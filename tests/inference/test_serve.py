"""The HTTP server: endpoints, limits (413/422, never 500), auth, and micro-batching order."""

from __future__ import annotations

import asyncio
import threading

import pytest

from langbert import Predictor
from langbert.inference.serve import ServeLimits, create_app
from tests.conftest import SENTIMENT, train_sentiment

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_model_dir):
    return str(train_sentiment(tmp_path_factory.mktemp("serve"), tiny_model_dir))


@pytest.fixture(scope="module")
def client(model_dir):
    app = create_app(model_dir, api_key="", limits=ServeLimits(max_texts=4, max_chars=20, max_body_bytes=2000))
    with TestClient(app) as c:
        yield c


def test_health_metadata_predict(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["backlog"] == {"requests": 0, "texts": 0, "oldest_wait_s": 0.0}
    assert client.head("/health").status_code == 200
    meta = client.get("/metadata").json()
    assert meta["task"]["name"] == "text-classification" and meta["limits"]["max_texts"] == 4
    r = client.post("/predict", json={"texts": ["很好很喜欢", "很差很失望"]})
    assert r.status_code == 200 and [p["label"] for p in r.json()["predictions"]] == ["pos", "neg"]


@pytest.mark.parametrize("body,status", [
    ({"texts": ["好"] * 5}, 413),                       # too many texts
    ({"texts": ["好" * 21]}, 422),                      # text too long
    ({"texts": []}, 422),                               # nothing to predict
    ({"texts": "好"}, 422),                             # wrong type
    ({"text": ["好"]}, 422),                            # wrong field
    ({"texts": ["  "]}, 422),                           # empty text
])
def test_limits_and_bad_bodies_are_4xx_json(client, body, status):
    r = client.post("/predict", json=body)
    assert r.status_code == status and "detail" in r.json()


def test_malformed_and_oversized_bodies(client):
    r = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    assert "input" not in r.json()["detail"][0]  # the raw body is not echoed back
    r = client.post("/predict", content=b"x" * 5000, headers={"content-type": "application/json"})
    assert r.status_code == 413

    def chunks():  # streamed, no content-length: the cap must count what arrives
        for _ in range(10):
            yield b"x" * 500

    r = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "body over" in r.json()["detail"]


def test_predict_errors_read_like_fastapis_and_the_endpoint_is_documented(client):
    r = client.post("/predict", json={"text": ["好"]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "texts"]
    r = client.get("/predict")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    schema = client.get("/openapi.json").json()
    assert schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/PredictRequest"}
    assert "texts" in schema["components"]["schemas"]["PredictRequest"]["properties"]
    assert {"/health", "/metadata"} <= set(schema["paths"])


def test_bearer_token_required_when_set(model_dir):
    with TestClient(create_app(model_dir, api_key="s3cret", docs=True)) as c:
        assert c.post("/predict", json={"texts": ["好"]}).status_code == 401
        refused = c.post("/predict", content=b"{not json", headers={"Authorization": "Bearer s3cre"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"  # before parsing
        assert c.post("/predict", json={"texts": ["好"]}, headers={"Authorization": "Basic s3cret"}).status_code == 401
        assert c.get("/openapi.json").status_code == 401  # with a key, the documents need it too
        schema = c.get("/openapi.json", headers={"Authorization": "Bearer s3cret"}).json()
        assert schema["paths"]["/predict"]["post"]["security"] == [{"HTTPBearer": []}]
        odd = {"Authorization": "Bearer sécret".encode("latin-1")}  # not ASCII: a 401, not a 500
        assert c.post("/predict", json={"texts": ["好"]}, headers=odd).status_code == 401
        assert c.get("/metadata", headers=odd).status_code == 401
        assert c.get("/metadata", headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = c.post("/predict", json={"texts": ["好"]}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert c.get("/health").status_code == 200
    with TestClient(create_app(model_dir, api_key="sécret")) as c:  # a non-ASCII key, sent as UTF-8
        right = {"Authorization": "Bearer sécret".encode("utf-8")}
        assert c.post("/predict", json={"texts": ["好"]}, headers=right).status_code == 200
        assert c.get("/metadata", headers=right).status_code == 200
        wrong = {"Authorization": "Bearer sécrèt".encode("utf-8")}
        assert c.post("/predict", json={"texts": ["好"]}, headers=wrong).status_code == 401
        assert c.get("/metadata", headers=wrong).status_code == 401


def test_micro_batching_returns_each_caller_its_own_results(model_dir):
    import httpx

    predictor = Predictor.load(model_dir)
    calls = []
    original = predictor.predict

    threads = set()

    def counting(texts, pairs=None, batch_size=64):
        calls.append(len(texts))
        threads.add(threading.get_ident())
        return original(texts, pairs, batch_size)

    predictor.predict = counting
    app = create_app(model_dir, predictor=predictor, limits=ServeLimits(batch_wait_ms=50))
    requests = [[t] * (i % 3 + 1) for i, (t, _) in enumerate(SENTIMENT)]
    expected = [[p["label"] for p in original(texts)] for texts in requests]

    async def run():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                responses = await asyncio.gather(*[c.post("/predict", json={"texts": t}) for t in requests])
        return [[p["label"] for p in r.json()["predictions"]] for r in responses]

    assert asyncio.run(run()) == expected
    assert len(calls) < len(requests), "concurrent requests were not batched together"
    assert len(threads) == 1 and threading.get_ident() not in threads, "one model thread, not the event loop's"


def test_a_steady_load_is_batched_without_waiting_out_the_window():
    """Once as many texts as in the last batch are queued, the batch goes: the same clients coming back
    must not leave the model idle for ``batch_wait_ms`` (here a minute: waiting it out fails the test)."""
    from langbert.inference.serve import MicroBatcher

    class Echo:
        def predict(self, texts, pairs=None):
            calls.append(list(texts))
            return [{"label": t} for t in texts]

    calls: list[list[str]] = []
    limits = ServeLimits(batch_wait_ms=50)
    batcher = MicroBatcher(Echo(), limits)

    async def round_of(texts):
        return await asyncio.gather(*[batcher.predict([t], None) for t in texts])

    async def run():
        batcher.start()
        try:
            first = await round_of(["a", "b", "c"])  # no history yet: the 50 ms window closes it
            limits.batch_wait_ms = 60_000
            second = await asyncio.wait_for(round_of(["d", "e", "f"]), timeout=20)
        finally:
            await batcher.stop()
        return first, second

    first, second = asyncio.run(run())
    assert first == [[{"label": "a"}], [{"label": "b"}], [{"label": "c"}]]
    assert second == [[{"label": "d"}], [{"label": "e"}], [{"label": "f"}]]
    assert calls == [["a", "b", "c"], ["d", "e", "f"]]


def test_load_test_client_against_a_real_server(model_dir):
    """langbert.inference.loadtest over real sockets: every request answered, errors counted when they are errors."""
    import socket
    import threading
    import time

    import uvicorn

    from langbert.inference import loadtest

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(model_dir, api_key="secret", limits=ServeLimits(max_texts=4, max_chars=20))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        payloads = [{"texts": [t for t, _ in SENTIMENT[:2]]}, {"texts": ["很好"]}]
        ok = loadtest.run("127.0.0.1", port, payloads, clients=4, requests_per_client=5, api_key="secret")
        assert (ok.requests, ok.errors, len(ok.latencies_ms)) == (20, 0, 20)
        assert ok.requests_per_s > 0 and ok.percentile(99) >= ok.percentile(50)
        assert loadtest.run("127.0.0.1", port, payloads, 2, 3).errors == 6  # no bearer token: 401s
        too_long = loadtest.run("127.0.0.1", port, [{"texts": ["好" * 30]}], 1, 2, api_key="secret")
        assert too_long.errors == 2
        assert loadtest.run("127.0.0.1", port, [None], 2, 3, path="/health").errors == 0
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_app_serves_again_after_a_restart(model_dir):
    app = create_app(model_dir, predictor=Predictor.load(model_dir))
    for _ in range(2):  # lifespan twice: the model thread is made at each start, shut at each stop
        with TestClient(app) as c:
            r = c.post("/predict", json={"texts": ["很好很喜欢"]})
            assert r.status_code == 200 and r.json()["predictions"][0]["label"] == "pos"


def test_the_model_is_loaded_on_a_thread_that_is_gone_before_serving(model_dir, monkeypatch):
    # A thread that ran torch keeps its OpenMP team: loaded on the event loop's thread, the model left a
    # second team beside the model thread's, and libgomp then throttles both (see load_off_main_thread).
    loaders = []
    real_load = Predictor.load.__func__

    def load(cls, *args, **kwargs):
        loaders.append(threading.current_thread())
        return real_load(cls, *args, **kwargs)

    monkeypatch.setattr(Predictor, "load", classmethod(load))
    app = create_app(model_dir)
    assert len(loaders) == 1 and loaders[0] is not threading.main_thread() and not loaders[0].is_alive()
    with TestClient(app) as c:
        assert c.post("/predict", json={"texts": ["很好很喜欢"]}).json()["predictions"][0]["label"] == "pos"


def test_one_bad_request_fails_alone_not_the_batch_it_shared():
    from langbert.errors import DataError
    from langbert.inference.serve import MicroBatcher

    class Picky:
        def predict(self, texts, pairs=None):
            calls.append(list(texts))
            if "bad" in texts:
                raise DataError("the question is too long")
            return [{"label": t} for t in texts]

    calls: list[list[str]] = []
    batcher = MicroBatcher(Picky(), ServeLimits(batch_wait_ms=200))

    async def run():
        batcher.start()
        try:
            return await asyncio.gather(*[batcher.predict([t], None) for t in ("a", "bad", "c")],
                                        return_exceptions=True)
        finally:
            await batcher.stop()

    good_a, bad, good_c = asyncio.run(run())
    assert good_a == [{"label": "a"}] and good_c == [{"label": "c"}]
    assert isinstance(bad, DataError)
    assert calls[0] == ["a", "bad", "c"] and sorted(map(tuple, calls[1:])) == [("a",), ("bad",), ("c",)]


def test_a_question_answering_server_needs_pairs_and_says_what_is_wrong(tmp_path, tiny_model_dir):
    from langbert import train
    from tests.conftest import tiny_train_config, write_jsonl

    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "我在哪", "context": "我在北京", "answers": "北京"}])
    out = train(tiny_train_config(tmp_path, tiny_model_dir, path, task="question-answering", max_steps=2,
                                  eval_steps=2))
    with TestClient(create_app(str(out), limits=ServeLimits(max_chars=50))) as client:
        missing = client.post("/predict", json={"texts": ["我在哪"]})
        assert missing.status_code == 422 and "needs 'pairs'" in missing.json()["detail"]
        long_pair = client.post("/predict", json={"texts": ["我在哪"], "pairs": ["我" * 51]})
        assert long_pair.status_code == 422 and "pairs[0] has 51 characters" in long_pair.json()["detail"]
        long_question = client.post("/predict", json={"texts": ["我在哪" * 10], "pairs": ["我在北京"]})
        assert long_question.status_code == 422 and "more than half of max_length" in long_question.json()["detail"]
        ok = client.post("/predict", json={"texts": ["我在哪"], "pairs": ["我在北京"]})
        assert ok.status_code == 200 and set(ok.json()["predictions"][0]) == {"answer", "start", "end", "score"}
