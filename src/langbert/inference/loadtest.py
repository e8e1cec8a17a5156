"""A load test for ``langbert serve``: N concurrent keep-alive clients on raw asyncio sockets.

Why not httpx or aiohttp: on a 2-core machine the client shares the cores with the server, and a
general-purpose client spends more CPU per request than the server's HTTP layer does (measured: httpx
capped a no-op ``GET /health`` at ~150 req/s here). Like ``wrk``, this client does the least a client
can: one connection per client, a request built once, the response read by ``Content-Length`` (or
chunks). Each response is still checked: a non-200 status, a broken connection, a timeout or (for
``/predict``) a body without one prediction per text counts as an error.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass
class LoadResult:
    requests: int
    errors: int
    wall_seconds: float
    latencies_ms: list[float] = field(repr=False)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))

    def summary(self) -> dict:
        return {"requests": self.requests, "errors": self.errors, "requests_per_s": self.requests_per_s,
                "p50_ms": self.percentile(50), "p99_ms": self.percentile(99), "wall": self.wall_seconds}


def build_request(host: str, port: int, method: str, path: str, body: bytes = b"",
                  api_key: str | None = None) -> bytes:
    headers = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    if body:
        headers.append("Content-Type: application/json")
    if api_key:
        headers.append(f"Authorization: Bearer {api_key}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)  # the CRLF after each chunk
        await reader.readuntil(b"\r\n")  # no trailers: the blank line that ends the message
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() == "close"


async def _client(host: str, port: int, requests: Sequence[bytes], expected: Sequence[int | None],
                  timeout: float, latencies: list[float]) -> int:
    errors = 0
    reader = writer = None
    for request, wanted in zip(requests, expected):
        start = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            status, body, close = await asyncio.wait_for(_read_response(reader), timeout)
            ok = status == 200 and (wanted is None or len(json.loads(body)["predictions"]) == wanted)
            if close:
                writer.close()
                writer = None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, KeyError, TypeError):
            ok = False
            if writer is not None:
                writer.close()
            writer = None
        errors += not ok
        latencies.append((time.perf_counter() - start) * 1000)
    if writer is not None:
        writer.close()
    return errors


def run(host: str, port: int, payloads: Sequence[dict | None], clients: int, requests_per_client: int,
        path: str = "/predict", api_key: str | None = None, timeout: float = 60.0) -> LoadResult:
    """``clients`` concurrent connections each send ``requests_per_client`` requests back to back, taking
    payloads round-robin. A ``None`` payload is a GET (e.g. ``/health``); a dict is a JSON POST."""
    def request(k: int) -> tuple[bytes, int | None]:
        payload = payloads[k % len(payloads)]
        if payload is None:
            return build_request(host, port, "GET", path, api_key=api_key), None
        body = json.dumps(payload, ensure_ascii=False).encode()
        return build_request(host, port, "POST", path, body, api_key), len(payload.get("texts", []))

    plans = [[request(c * requests_per_client + i) for i in range(requests_per_client)] for c in range(clients)]
    latencies: list[float] = []

    async def main() -> tuple[int, float]:
        start = time.perf_counter()
        errors = await asyncio.gather(*[_client(host, port, [r for r, _ in plan], [n for _, n in plan], timeout,
                                                latencies) for plan in plans])
        return sum(errors), time.perf_counter() - start

    errors, wall = asyncio.run(main())
    return LoadResult(clients * requests_per_client, errors, wall, latencies)
