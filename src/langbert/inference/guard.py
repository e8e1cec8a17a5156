"""What stands between the network and the model: refusals decided from a request's headers before its
body is read, a bound on the bytes all connections may make the server hold, and connection-level
timeouts and limits (uvicorn has an idle timeout, but none for a client that never finishes its headers).

Order for each request: the ``Host`` header (where a list of allowed hosts is set: a page in a browser
reaching a loopback server through DNS rebinding sends its own host name), the path and method, the
bearer token, the content type, the declared length, the shared byte budget; only then is the body read,
each part within ``body_timeout_s``. A refusal of a request whose body is still to come closes the
connection, so nothing of that body is read or kept.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from typing import Any

from .batching import ServeLimits

# Bodies up to this size are what uvicorn buffers for a connection anyway; a refusal of a larger (or
# unknown) one closes the connection instead of letting the client keep sending into it.
DRAIN_BYTES = 65_536
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def token_matches(token: str | bytes, api_key: str) -> bool:
    """Constant-time comparison of the header's raw bytes with the UTF-8 key (``hmac.compare_digest``
    refuses str with non-ASCII characters: a TypeError, so a 500). A str token is a header value as
    Starlette decodes it, latin-1, so encoding it back gives the bytes that came in."""
    token = token.encode("latin-1") if isinstance(token, str) else token
    return hmac.compare_digest(token, api_key.encode("utf-8"))


async def send_json(send: Any, status: int, payload: Any, headers: list[tuple[bytes, bytes]] = (),
                    close: bool = False) -> None:
    """A JSON response as Starlette's ``JSONResponse`` renders it (UTF-8, no NaN), in two ASGI messages;
    ``close`` asks the server to close the connection after it."""
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    extra = [*headers, (b"connection", b"close")] if close else list(headers)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *extra]})
    await send({"type": "http.response.body", "body": body})


def allowed_hosts_for(bind: str, extra: list[str] | tuple[str, ...] = ()) -> list[str] | None:
    """Host names a server bound to ``bind`` answers to: its own address, the loopback names for a
    loopback bind, and ``extra``; None (any) for a wildcard bind without ``extra``, where the machine's
    own names are not known here."""
    if bind in ("0.0.0.0", "::", ""):
        return list(extra) or None
    names = [bind, *extra]
    try:
        if ipaddress.ip_address(bind).is_loopback:
            names += LOOPBACK_NAMES
    except ValueError:
        if bind == "localhost":
            names += LOOPBACK_NAMES
    return sorted(set(names))


def host_of(header: bytes) -> str:
    """The name in a ``Host`` header, without the port (``[::1]:8000`` -> ``::1``)."""
    host = header.decode("latin-1").strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class ByteBudget:
    """Request bytes held at once by all connections together."""

    def __init__(self, limit: int):
        self.limit, self.held = limit, 0

    def take(self, n: int) -> bool:
        if self.held + n > self.limit:
            return False
        self.held += n
        return True

    def give_back(self, n: int) -> None:
        self.held -= n


class Guard:
    """Pure ASGI middleware in front of everything (Starlette's ``BaseHTTPMiddleware`` would wrap every
    response in an extra task and stream)."""

    def __init__(self, app: Any, routes: dict[str, set[str]], limits: ServeLimits, api_key: str | None = None,
                 open_paths: frozenset[str] = frozenset({"/health"}), allowed_hosts: list[str] | None = None):
        self.app, self.routes, self.limits, self.api_key = app, routes, limits, api_key
        self.open_paths = open_paths
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts else None
        self.budget = ByteBudget(limits.max_buffered_bytes)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        length = int(declared) if declared.isdigit() else None
        body_follows = length is None and b"transfer-encoding" in headers or bool(length)
        close = body_follows and (length is None or length > DRAIN_BYTES)

        refused = self._refusal(scope, headers, length)
        if refused is not None:
            status, detail, extra = refused
            return await send_json(send, status, {"detail": detail}, extra, close=close)
        if scope["method"] != "POST" or not body_follows:
            return await self.app(scope, receive, send)

        held = 0
        try:
            if length is not None:
                if not self.budget.take(length):
                    return await self._busy(send)
                held = length
            chunks, size, more = [], 0, True
            while more:
                try:
                    message = await asyncio.wait_for(receive(), self.limits.body_timeout_s)
                except asyncio.TimeoutError:
                    return await send_json(send, 408, {"detail": f"no part of the body arrived within "
                                                                 f"{self.limits.body_timeout_s:g} s"}, close=True)
                if message["type"] == "http.disconnect":
                    return None
                part = message.get("body", b"")
                size += len(part)
                if size > self.limits.max_body_bytes:
                    return await send_json(send, 413, {"detail": f"body over {self.limits.max_body_bytes} bytes"},
                                           close=True)
                if size > held:  # no declared length, or more than it said: take what arrived
                    if not self.budget.take(size - held):
                        return await self._busy(send)
                    held = size
                chunks.append(part)
                more = message.get("more_body", False)
            body = b"".join(chunks)
            replayed = False

            async def replay() -> dict:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            return await self.app(scope, replay, send)
        finally:
            self.budget.give_back(held)

    @staticmethod
    async def _busy(send: Any) -> None:
        await send_json(send, 503, {"detail": "the server holds as many request bytes as it may: retry shortly"},
                        close=True)

    def _refusal(self, scope: dict, headers: dict, length: int | None) -> tuple[int, str, list] | None:
        if self.allowed_hosts is not None and host_of(headers.get(b"host", b"")) not in self.allowed_hosts:
            return 421, "this server does not answer to that Host (see --allowed-host)", []
        methods = self.routes.get(scope["path"])
        if methods is None:
            return 404, "Not Found", []
        if scope["method"] not in methods:
            return 405, "Method Not Allowed", [(b"allow", ", ".join(sorted(methods)).encode())]
        if self.api_key and scope["path"] not in self.open_paths and not self._authorised(headers):
            return 401, "missing or wrong bearer token", [(b"www-authenticate", b"Bearer")]
        if scope["method"] == "POST":
            kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind != b"application/json":
                return 415, "send the body as Content-Type: application/json", []
            if length is not None and length > self.limits.max_body_bytes:
                return 413, f"body over {self.limits.max_body_bytes} bytes", []
        return None

    def _authorised(self, headers: dict) -> bool:
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and token_matches(token.strip(), self.api_key)


def guarded_protocol(base: type, limits: ServeLimits) -> type:
    """``base`` (uvicorn's HTTP protocol class) that closes a connection which has not sent a request's
    headers within ``header_timeout_s`` of connecting or of its last response, and refuses connections
    beyond ``max_connections``."""

    class GuardedProtocol(base):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            if len(self.connections) >= limits.max_connections:
                transport.close()  # connection_lost follows and leaves the server's state as it was
                self.transport = transport
                return
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(limits.header_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            if not self.transport.is_closing():
                self.transport.close()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # The next request's headers are timed too (unless a pipelined one, already read, runs now).
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self.flow is None:  # refused in connection_made: never joined the server's state
                return
            super().connection_lost(exc)

    GuardedProtocol.__name__ = f"Guarded{base.__name__}"
    return GuardedProtocol
