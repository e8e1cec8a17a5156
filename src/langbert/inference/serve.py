"""``langbert serve DIR``: a thin HTTP layer over ``Predictor`` (FastAPI), for every registered task.

Secure by default: binds 127.0.0.1 and answers only to the host names it is bound under, optional bearer
token (``--api-key`` or ``LANGBERT_API_KEY``) checked before any body is read, bodies and the bytes all
connections hold bounded, slow or silent connections closed (``guard``), and only safetensors/ONNX loaded
(no pickles, no ``trust_remote_code``). Concurrent requests are micro-batched, a long one in slices so short
ones interleave (``batching``); ``/health`` shows the backlog. ``POST /predict`` is plain ASGI in front of
FastAPI (``PredictEndpoint``: under load the event loop's time per request is time the model waits);
``/health``, ``/metadata`` and the OpenAPI documents are FastAPI's.
"""

from __future__ import annotations

import os
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ..errors import LangbertError
from .batching import MicroBatcher, ServeLimits
from .guard import Guard, allowed_hosts_for, guarded_protocol, send_json, token_matches
from .predictor import Predictor

__all__ = ["MicroBatcher", "ServeLimits", "create_app", "serve", "token_matches"]

DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
# Characters that print nothing: a text of only these carries nothing to predict on.
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"}


def is_blank(text: str) -> bool:
    return all(ch.isspace() or unicodedata.category(ch) in INVISIBLE for ch in text)


class PredictRequest(BaseModel):
    texts: list[str] = Field(min_length=1)
    pairs: list[str] | None = None


class PredictEndpoint:
    """``POST /predict`` as plain ASGI, ahead of FastAPI's router; every other request passes through.

    Under load the event loop's time per request is time the model waits: 32 clients answered at once
    come back at once, and the next micro-batch cannot go until their requests are parsed. Routed through
    FastAPI (dependency solving, body field validation, its middleware stack) the endpoint cost ~300 us a
    request here, against ~60 us for this (a stub model on 2 cores: 3,100-5,400 against 12,000-17,600
    requests/s); the same checks run, in pydantic's compiled validator. Auth comes before the body is
    parsed: the body arrives already authorised, capped and read by ``Guard``."""

    def __init__(self, app: Any, batcher: MicroBatcher, limits: ServeLimits):
        self.app, self.batcher, self.limits = app, batcher, limits

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict":
            return await self.app(scope, receive, send)
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body = message.get("body", b"")
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

    def _refusal(self, request: PredictRequest) -> tuple[int, dict] | None:
        limits = self.limits
        if len(request.texts) > limits.max_texts:
            return 413, {"detail": f"{len(request.texts)} texts; at most {limits.max_texts} per request"}
        task = self.batcher.predictor.task
        if task.needs_pair and request.pairs is None:
            return 422, {"detail": f"task '{task.name}' needs 'pairs', one second text per text"}
        total = sum(map(len, request.texts)) + sum(map(len, request.pairs or ()))
        if total > limits.max_request_chars:
            return 413, {"detail": f"{total} characters in the request; at most {limits.max_request_chars}: "
                                   "split it into several requests"}
        for field in ("texts", "pairs"):
            for i, text in enumerate(getattr(request, field) or ()):
                if len(text) > limits.max_chars:
                    return 422, {"detail": f"{field}[{i}] has {len(text)} characters; at most {limits.max_chars}"}
                if is_blank(text):
                    return 422, {"detail": f"{field}[{i}] is empty (or only invisible characters)"}
        if request.pairs is not None and len(request.pairs) != len(request.texts):
            return 422, {"detail": f"{len(request.texts)} texts but {len(request.pairs)} pairs"}
        return None


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
               predictor: Predictor | None = None, bf16: bool = False, unpadded: bool = True,
               allowed_hosts: list[str] | None = None, docs: bool | None = None) -> Any:
    """The ASGI app. ``allowed_hosts``: the ``Host`` names it answers to (None: any; ``serve`` derives
    them from the address it binds). ``docs``: ``/docs``, ``/redoc`` and ``/openapi.json``; by default on
    without a key and off with one (on with a key, they need it too)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    limits = limits or ServeLimits()
    predictor = predictor or load_off_main_thread(model_dir, bf16=bf16, unpadded=unpadded)
    api_key = api_key if api_key is not None else os.environ.get("LANGBERT_API_KEY") or None
    docs = not api_key if docs is None else docs
    batcher = MicroBatcher(predictor, limits)

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="langbert", lifespan=lifespan, docs_url="/docs" if docs else None,
                  redoc_url="/redoc" if docs else None, openapi_url="/openapi.json" if docs else None)
    routes = {"/predict": {"POST"}, "/health": {"GET", "HEAD"}, "/metadata": {"GET"},
              **({path: {"GET"} for path in DOCS_PATHS} if docs else {})}

    # Added first, so it runs inside Guard (the last added is the outermost).
    app.add_middleware(PredictEndpoint, batcher=batcher, limits=limits)
    app.add_middleware(Guard, routes=routes, limits=limits, api_key=api_key, allowed_hosts=allowed_hosts)
    document_predict(app, secured=bool(api_key))

    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health() -> dict:
        """Alive, and what waits for the model: requests, texts, and the oldest request's wait."""
        return {"status": "ok", "backlog": batcher.backlog()}

    @app.get("/metadata")
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
          limits: ServeLimits | None = None, bf16: bool = False, unpadded: bool = True,
          allowed_hosts: list[str] | None = None, docs: bool | None = None) -> None:
    import uvicorn

    limits = limits or ServeLimits()
    app = create_app(model_dir, api_key, limits, bf16=bf16, unpadded=unpadded,
                     allowed_hosts=allowed_hosts_for(host, allowed_hosts or []), docs=docs)
    uvicorn.Server(server_config(app, host, port, limits)).run()


def server_config(app: Any, host: str, port: int, limits: ServeLimits, log_level: str = "info") -> Any:
    """uvicorn's config with the connection limits: header timeout and connection cap on its httptools
    protocol, its own idle timeout for keep-alive connections."""
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    return uvicorn.Config(app, host=host, port=port, log_level=log_level,
                          http=guarded_protocol(HttpToolsProtocol, limits), timeout_keep_alive=limits.idle_timeout_s)
