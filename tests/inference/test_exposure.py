"""The server exposed: refusals from the headers before a body is read, the bytes all connections may hold,
slow and silent connections closed, a connection cap, fair turns for long requests, and what a page in a
browser could send (other Host names, text/plain bodies). Real sockets on loopback, bounded in count and time."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from contextlib import contextmanager

import pytest

from langbert.inference.batching import MicroBatcher, ServeLimits
from langbert.inference.guard import allowed_hosts_for, host_of
from langbert.inference.serve import create_app, server_config
from tests.conftest import train_sentiment

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_model_dir):
    return str(train_sentiment(tmp_path_factory.mktemp("exposure"), tiny_model_dir))


@contextmanager
def running(app, limits):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, limits, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def request_head(port: int, length: int, auth: str | None = None, path: str = "/predict") -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
             f"Content-Length: {length}"]
    if auth:
        lines.append(f"Authorization: Bearer {auth}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]) if data else 0


def closed(sock: socket.socket, within: float) -> bool:
    """True once the server has closed ``sock`` (within ``within`` seconds), reading what it sends."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
        return True
    except (socket.timeout, TimeoutError):
        return False
    except OSError:
        return True


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_an_unauthenticated_body_is_refused_from_its_headers_and_never_held(model_dir):
    limits = ServeLimits(max_body_bytes=1_000_000)
    app = create_app(model_dir, api_key="secret", limits=limits)
    with running(app, limits) as port:
        # headers and a first kilobyte of a 999,000-byte body: the 401 comes without the rest
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(request_head(port, 999_000) + b"x" * 1000)
            assert status_of(s) == 401
            assert closed(s, within=5)  # and the connection goes: nothing more of that body is read
        before = rss_bytes()
        holders = []
        for _ in range(40):  # 40 clients each pushing 600 kB: 24 MB if the server kept what it was sent
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                s.sendall(request_head(port, 999_000) + b"x" * 600_000)
            except OSError:
                pass  # the server closed it mid-send: what a refusal should do
            holders.append(s)
        grown = rss_bytes() - before
        for s in holders:
            s.close()
    assert grown < 12_000_000, f"the server grew by {grown / 1e6:.1f} MB for bodies it refused"


def test_the_bytes_all_connections_hold_are_bounded(model_dir):
    limits = ServeLimits(max_buffered_bytes=300_000, max_body_bytes=250_000, body_timeout_s=5)
    app = create_app(model_dir, limits=limits)
    with running(app, limits) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as first, \
                socket.create_connection(("127.0.0.1", port), timeout=5) as second:
            first.sendall(request_head(port, 200_000) + b" " * 1000)  # holds 200 kB of the budget
            time.sleep(0.3)
            second.sendall(request_head(port, 200_000))
            assert status_of(second) == 503
            first.sendall(b" " * 199_000)
            assert status_of(first) == 422  # spaces are no JSON: the request went through, then was refused


def test_slow_silent_and_surplus_connections_are_closed(model_dir):
    limits = ServeLimits(header_timeout_s=0.5, body_timeout_s=0.5, max_connections=3)
    app = create_app(model_dir, limits=limits)
    with running(app, limits) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            slow.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
            assert closed(slow, within=5)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as silent:
            assert closed(silent, within=5)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as short:
            short.sendall(request_head(port, 100) + b'{"texts"')  # a body shorter than it said
            assert status_of(short) == 408
        kept = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
        try:
            time.sleep(0.1)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as surplus:
                assert closed(surplus, within=0.4)  # closed at once, before any header timeout
        finally:
            for s in kept:
                s.close()


def test_a_long_request_runs_in_slices_and_a_short_one_goes_between():
    started, release = threading.Event(), threading.Event()
    calls: list[list[str]] = []

    class Stub:
        def predict(self, texts, pairs=None):
            calls.append(list(texts))
            if len(calls) == 1:
                started.set()
                release.wait(10)
            return [{"label": t[:1]} for t in texts]

    batcher = MicroBatcher(Stub(), ServeLimits(batch_chars=2500, batch_wait_ms=1))
    long_texts = [chr(ord("a") + i) * 1000 for i in range(10)]
    done: list[str] = []

    async def run():
        batcher.start()
        try:
            async def call(name, texts):
                result = await batcher.predict(texts, None)
                done.append(name)
                return result

            long = asyncio.ensure_future(call("long", long_texts))
            await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
            short = asyncio.ensure_future(call("short", ["好"]))
            await asyncio.sleep(0.05)
            assert batcher.backlog()["requests"] == 2
            release.set()
            return await long, await short
        finally:
            await batcher.stop()

    long_result, short_result = asyncio.run(run())
    assert [r["label"] for r in long_result] == [t[0] for t in long_texts] and short_result == [{"label": "好"}]
    assert calls[0] == long_texts[:2]  # 2,000 characters: a third would pass the 2,500 of a batch
    assert calls[1] == ["好", *long_texts[2:4]] or calls[1] == ["好"]  # the short request's turn comes next
    assert done == ["short", "long"]
    assert all(sum(map(len, c)) <= 2500 for c in calls)


def test_inputs_a_task_cannot_use_and_work_over_the_request_limit(model_dir):
    with TestClient(create_app(model_dir, limits=ServeLimits(max_chars=50, max_request_chars=60))) as c:
        pairs = c.post("/predict", json={"texts": ["很好"], "pairs": ["很好"]})
        assert pairs.status_code == 422 and pairs.json()["detail"].startswith("pairs:")
        for invisible in ("\u200b\u200b", "\u0000\u0001", "\ufeff "):
            r = c.post("/predict", json={"texts": ["很好", invisible]})
            assert r.status_code == 422 and "texts[1]" in r.json()["detail"]
        r = c.post("/predict", json={"texts": ["好" * 40, "好" * 40]})
        assert r.status_code == 413 and "80 characters" in r.json()["detail"]
        assert c.post("/predict", json={"texts": ["很好"]}).status_code == 200


def test_what_a_web_page_could_send_is_refused(model_dir):
    app = create_app(model_dir, allowed_hosts=allowed_hosts_for("127.0.0.1"))
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.post("/predict", json={"texts": ["很好"]}).status_code == 200
        assert c.post("/predict", json={"texts": ["很好"]}, headers={"host": "localhost:8000"}).status_code == 200
        rebound = c.post("/predict", json={"texts": ["很好"]}, headers={"host": "attacker.example"})
        assert rebound.status_code == 421
        plain = c.post("/predict", content='{"texts": ["很好"]}'.encode(), headers={"content-type": "text/plain"})
        assert plain.status_code == 415
        assert c.get("/nowhere").status_code == 404
        assert c.head("/health").status_code == 200
        assert c.get("/docs").status_code == 200  # no key: the documents are on


def test_the_documents_are_off_with_a_key_unless_asked_for(model_dir):
    with TestClient(create_app(model_dir, api_key="k")) as c:
        assert c.get("/docs").status_code == 404 and c.get("/openapi.json").status_code == 404
        assert c.get("/health").status_code == 200  # open, for a load balancer's checks
    with TestClient(create_app(model_dir, api_key="k", docs=True)) as c:
        assert c.get("/docs").status_code == 401
        assert c.get("/docs", headers={"Authorization": "Bearer k"}).status_code == 200


def test_host_names_a_bind_answers_to():
    assert set(allowed_hosts_for("127.0.0.1")) == {"127.0.0.1", "localhost", "::1"}
    assert allowed_hosts_for("0.0.0.0") is None
    assert allowed_hosts_for("0.0.0.0", ["api.example"]) == ["api.example"]
    assert "api.example" in allowed_hosts_for("10.1.2.3", ["api.example"])
    assert [host_of(h) for h in (b"localhost:8000", b"[::1]:8000", b"Example.COM", b"::1")] == \
        ["localhost", "::1", "example.com", "::1"]


@pytest.mark.parametrize("bad", [{"max_connections": 0}, {"header_timeout_s": -1.0},
                                 {"max_chars": 6000, "max_request_chars": 5000}])
def test_limits_that_cannot_work_are_refused(bad):
    from langbert.errors import ConfigError

    with pytest.raises(ConfigError, match=next(iter(bad))):
        ServeLimits(**bad)
