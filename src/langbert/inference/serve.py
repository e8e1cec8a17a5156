"""``langbert serve DIR``: a thin HTTP layer over ``Predictor`` (FastAPI), for every registered task.

Secure by default: binds 127.0.0.1, optional bearer token (``--api-key`` or ``LANGBERT_API_KEY``), the
request body is capped before it is parsed, and only safetensors/ONNX are loaded (no pickles, no
``trust_remote_code``). Concurrent requests are micro-batched: texts that arrive within ``batch_wait_ms``
run as one batch (sooner once it holds as many texts as the last one), and each caller gets its own
results, in order. ``POST /predict`` is plain ASGI in front of FastAPI (``PredictEndpoint``: under load
the event loop's time per request is time the model waits); ``/health``, ``/metadata`` and the OpenAPI
schema are FastAPI's.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ..errors import LangbertError
from .predictor import Predictor


class PredictRequest(BaseModel):
    texts: list[str] = Field(min_length=1)
    pairs: list[str] | None = None


@dataclass
class ServeLimits:
    max_texts: int = 64
    max_chars: int = 5000
    max_body_bytes: int = 1_000_000
    max_batch: int = 64
    batch_wait_ms: float = 5.0


class MicroBatcher:
    """Collects (texts, future) from concurrent requests and runs them as batches in a worker thread."""

    def __init__(self, predictor: Predictor, limits: ServeLimits):
        self.predictor, self.limits = predictor, limits
        # Texts in the last batch: under steady load the same clients come back, so once as many texts as
        # last time are here the batch goes without waiting out ``batch_wait_ms`` (the model would idle).
        self.last_size = limits.max_batch
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.worker: ThreadPoolExecutor | None = None

    def start(self) -> None:
        # The model runs on one dedicated thread: batches stay serial and on one OpenMP team whatever else
        # uses asyncio's shared default pool (each thread that runs torch ops gets its own team, and an
        # idle team spins for a while before it sleeps).
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="langbert-model")
        self.queue = asyncio.Queue()  # a queue belongs to the event loop that first uses it: one per start
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        if self.worker:
            self.worker.shutdown(wait=False, cancel_futures=True)

    async def predict(self, texts: list[str], pairs: list[str] | None) -> list[dict]:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, pairs, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            size = len(jobs[0][0])
            deadline = loop.time() + self.limits.batch_wait_ms / 1000
            while size < self.limits.max_batch:
                if not self.queue.empty():  # what is already here always goes
                    job = self.queue.get_nowait()
                else:
                    timeout = deadline - loop.time()
                    if size >= self.last_size or timeout <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self.queue.get(), timeout)
                    except asyncio.TimeoutError:
                        break
                jobs.append(job)
                size += len(job[0])
            self.last_size = size
            # Pairs and single texts cannot share a batch: group by kind.
            for with_pairs in (False, True):
                group = [j for j in jobs if (j[1] is not None) == with_pairs]
                if not group:
                    continue
                texts = [t for j in group for t in j[0]]
                pairs = [p for j in group for p in j[1]] if with_pairs else None
                try:
                    results = await loop.run_in_executor(self.worker, self.predictor.predict, texts, pairs)
                except Exception as exc:  # noqa: BLE001 - every waiting caller must hear about it
                    # One request's bad input (a QA question too long for max_length) must not fail the
                    # others it was batched with: each runs alone, and only its own failure reaches it.
                    await self._one_by_one(group, exc)
                    continue
                start = 0
                for job_texts, _, future in group:
                    if not future.done():
                        future.set_result(results[start:start + len(job_texts)])
                    start += len(job_texts)

    async def _one_by_one(self, group: list, batch_error: Exception) -> None:
        loop = asyncio.get_running_loop()
        for job_texts, job_pairs, future in group:
            if future.done():
                continue
            if len(group) == 1:
                future.set_exception(batch_error)
                continue
            try:
                result = await loop.run_in_executor(self.worker, self.predictor.predict, job_texts, job_pairs)
            except Exception as exc:  # noqa: BLE001
                future.set_exception(exc)
            else:
                future.set_result(result)


async def read_body(receive: Any, max_bytes: int | None = None) -> bytes | None:
    """The request body from ASGI messages; None if the client went away. Stops reading once it holds
    more than ``max_bytes`` (the caller refuses it)."""
    body, more = b"", True
    while more and (max_bytes is None or len(body) <= max_bytes):
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


class BodyCap:
    """Pure ASGI middleware: refuse a body over ``max_bytes`` by its declared length, then by what arrives,
    before anything parses it. (Starlette's ``BaseHTTPMiddleware`` did the same at several times the cost
    per request: it wraps every response in an extra task and stream.)"""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        body = await read_body(receive, self.max_bytes)
        if body is None:
            return None
        if len(body) > self.max_bytes:
            return await self._refuse(send)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _refuse(self, send: Any) -> None:
        await send_json(send, 413, {"detail": f"body over {self.max_bytes} bytes"})


class PredictEndpoint:
    """``POST /predict`` as plain ASGI, ahead of FastAPI's router; every other request passes through.

    Under load the event loop's time per request is time the model waits: 32 clients answered at once
    come back at once, and the next micro-batch cannot go until their requests are parsed. Routed through
    FastAPI (dependency solving, body field validation, its middleware stack) the endpoint cost ~300 us a
    request here, against ~60 us for this (a stub model on 2 cores: 3,100-5,400 against 12,000-17,600
    requests/s); the same checks run, in pydantic's compiled validator. Auth comes before the body is
    parsed; the body arrives already capped by ``BodyCap``."""

    def __init__(self, app: Any, batcher: MicroBatcher, limits: ServeLimits, api_key: str | None):
        self.app, self.batcher, self.limits, self.api_key = app, batcher, limits, api_key

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict":
            return await self.app(scope, receive, send)
        if scope["method"] != "POST":
            return await send_json(send, 405, {"detail": "Method Not Allowed"}, [(b"allow", b"POST")])
        if self.api_key and not self._authorised(scope):
            return await send_json(send, 401, {"detail": "missing or wrong bearer token"},
                                   [(b"www-authenticate", b"Bearer")])
        body = await read_body(receive)
        if body is None:
            return None
        try:
            request = PredictRequest.model_validate_json(body)
        except ValidationError as exc:
            return await send_json(send, 422, {"detail": body_errors(exc)})
        refused = self._refusal(request)
        if refused:
            return await send_json(send, *refused)
        try:
            predictions = await self.batcher.predict(request.texts, request.pairs)
        except LangbertError as exc:  # the input itself is wrong (DataError, ...): the caller's to fix
            return await send_json(send, 422, {"detail": str(exc)})
        return await send_json(send, 200, {"predictions": predictions})

    def _authorised(self, scope: dict) -> bool:
        scheme, _, token = dict(scope.get("headers") or []).get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and token_matches(token.strip(), self.api_key)

    def _refusal(self, request: PredictRequest) -> tuple[int, dict] | None:
        limits = self.limits
        if len(request.texts) > limits.max_texts:
            return 413, {"detail": f"{len(request.texts)} texts; at most {limits.max_texts} per request"}
        task = self.batcher.predictor.task
        if task.needs_pair and request.pairs is None:
            return 422, {"detail": f"task '{task.name}' needs 'pairs', one second text per text"}
        for field in ("texts", "pairs"):
            for i, text in enumerate(getattr(request, field) or ()):
                if len(text) > limits.max_chars:
                    return 422, {"detail": f"{field}[{i}] has {len(text)} characters; at most {limits.max_chars}"}
                if not text.strip():
                    return 422, {"detail": f"{field}[{i}] is empty"}
        if request.pairs is not None and len(request.pairs) != len(request.texts):
            return 422, {"detail": f"{len(request.texts)} texts but {len(request.pairs)} pairs"}
        return None


def token_matches(token: str | bytes, api_key: str) -> bool:
    """Constant-time comparison of the header's raw bytes with the UTF-8 key (``hmac.compare_digest``
    refuses str with non-ASCII characters: a TypeError, so a 500). A str token is a header value as
    Starlette decodes it, latin-1, so encoding it back gives the bytes that came in, as on ``/predict``."""
    token = token.encode("latin-1") if isinstance(token, str) else token
    return hmac.compare_digest(token, api_key.encode("utf-8"))


def body_errors(exc: ValidationError) -> list[dict]:
    """FastAPI's shape for a body that fails validation: each error located under ``body``."""
    errors = []
    for error in exc.errors(include_url=False):
        error = {**error, "loc": ["body", *error["loc"]]}
        if isinstance(error.get("input"), bytes):  # unparsable JSON: the raw body, not worth sending back
            del error["input"]
        if "ctx" in error:
            error["ctx"] = {k: str(v) for k, v in error["ctx"].items()}
        errors.append(error)
    return errors


async def send_json(send: Any, status: int, payload: Any, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """A JSON response as Starlette's ``JSONResponse`` renders it (UTF-8, no NaN), in two ASGI messages."""
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def load_off_main_thread(model_dir: str, **options: Any) -> Predictor:
    """``Predictor.load`` on a thread that exits once the model is loaded.

    Each thread that runs parallel torch ops gets its own OpenMP team, kept until the thread exits. Loaded
    on the event loop's thread, the model left a second team beside the model thread's: with more OpenMP
    threads than cores, libgomp cuts its spin-wait short, and the model thread's helpers slept and were
    woken between ops (measured on 2 cores: 1.58 instead of 1.95 cores busy during a forward, 8-15% fewer
    sentences/s)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="langbert-load") as loader:
        return loader.submit(Predictor.load, model_dir, **options).result()


def create_app(model_dir: str, api_key: str | None = None, limits: ServeLimits | None = None,
               predictor: Predictor | None = None, bf16: bool = False, unpadded: bool = True) -> Any:
    from contextlib import asynccontextmanager

    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    limits = limits or ServeLimits()
    predictor = predictor or load_off_main_thread(model_dir, bf16=bf16, unpadded=unpadded)
    api_key = api_key if api_key is not None else os.environ.get("LANGBERT_API_KEY") or None
    batcher = MicroBatcher(predictor, limits)

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="langbert", lifespan=lifespan)
    bearer = HTTPBearer(auto_error=False)

    # async: FastAPI runs a plain ``def`` dependency on a worker thread, a thread handoff per request.
    async def authorised(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if credentials is None or not token_matches(credentials.credentials, api_key):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    guarded = [Depends(authorised)] if api_key else []

    # Added first, so it runs inside BodyCap (the last added is the outermost).
    app.add_middleware(PredictEndpoint, batcher=batcher, limits=limits, api_key=api_key)
    app.add_middleware(BodyCap, max_bytes=limits.max_body_bytes)
    document_predict(app, secured=bool(api_key))

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/metadata", dependencies=guarded)
    async def metadata() -> dict:
        meta = predictor.metadata
        return {"task": meta.get("task"), "max_length": meta.get("max_length"), "base_model": meta.get("base_model"),
                "metrics": meta.get("metrics"), "format": meta.get("format", {"name": "safetensors"}),
                "limits": limits.__dict__}

    return app


def document_predict(app: Any, secured: bool) -> None:
    """Put ``POST /predict`` (served by ``PredictEndpoint``, not a FastAPI route) in the OpenAPI schema."""
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {}).setdefault("schemas", {})["PredictRequest"] = \
            PredictRequest.model_json_schema()
        operation = {
            "summary": "Predict",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PredictRequest"}}}},
            "responses": {"200": {"description": "one prediction per text, in order"},
                          "413": {"description": "too many texts, or a body over the size cap"},
                          "422": {"description": "malformed body, an empty or too long text"}},
        }
        if secured:
            operation["responses"]["401"] = {"description": "missing or wrong bearer token"}
            operation["security"] = [{"HTTPBearer": []}]
        schema["paths"]["/predict"] = {"post": operation}
        return schema

    app.openapi = openapi


def serve(model_dir: str, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          limits: ServeLimits | None = None, bf16: bool = False, unpadded: bool = True) -> None:
    import uvicorn

    uvicorn.run(create_app(model_dir, api_key, limits, bf16=bf16, unpadded=unpadded), host=host, port=port,
                log_level="info")
