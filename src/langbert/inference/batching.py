"""Micro-batching with fair turns: concurrent requests share a model's batches, and a long request is run
in slices so that short ones sent meanwhile do not wait for all of it.

Each batch takes, in turn, the next slice of every waiting request (at most ``batch_chars`` characters in
all, and at least one text of the request first in line), so a request of 64 long texts shares the model
with a one-sentence request sent while it runs instead of holding it for its whole length. A request
that is not finished goes to the back of the line, behind those that arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import ConfigError


@dataclass
class ServeLimits:
    """What one request, one connection and the whole server may hold. Every limit is a flag of
    ``langbert serve``."""

    max_texts: int = 64
    """Texts in one request (413 beyond)."""
    max_chars: int = 5000
    """Characters in one text or pair (422 beyond)."""
    max_request_chars: int = 50_000
    """Characters in one request, texts and pairs together (413 beyond): the work one caller may ask for."""
    max_body_bytes: int = 1_000_000
    """Bytes in one request body (413 beyond, refused by its declared length before it is read)."""
    max_buffered_bytes: int = 32_000_000
    """Request bytes held at once across all connections (503 beyond): what a crowd of clients can make
    the server hold."""
    max_batch: int = 64
    """Texts in one micro-batch."""
    batch_chars: int = 8_000
    """Characters in one micro-batch: a long request runs in slices of about this size."""
    batch_wait_ms: float = 5.0
    """How long a micro-batch waits for more requests."""
    max_connections: int = 256
    """Open connections; one more is closed as it arrives."""
    header_timeout_s: float = 10.0
    """Time a connection has to send a request's headers (from connecting, or from the last response)."""
    body_timeout_s: float = 10.0
    """Time the body may go without a byte arriving (408 beyond)."""
    idle_timeout_s: float = 5.0
    """Time an idle keep-alive connection stays open between requests."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0 or (value == 0 and f.name != "batch_wait_ms"):
                raise ConfigError(f"serve limit {f.name} must be > 0, got {value}")
        if self.max_chars > self.max_request_chars:
            raise ConfigError(f"max_chars ({self.max_chars}) is over max_request_chars ({self.max_request_chars}): "
                              "no request could hold one text of the longest length")


@dataclass
class _Job:
    texts: list[str]
    pairs: list[str] | None
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)
    done: int = 0
    """Texts already predicted."""
    results: list[dict] = field(default_factory=list)

    def chars(self, i: int) -> int:
        return len(self.texts[i]) + (len(self.pairs[i]) if self.pairs is not None else 0)

    def next_slice(self, n: int) -> tuple[list[str], list[str] | None]:
        """The next ``n`` texts (and their pairs) still to predict."""
        end = self.done + n
        return self.texts[self.done:end], self.pairs[self.done:end] if self.pairs is not None else None


class MicroBatcher:
    """Collects requests from the event loop and runs them as batches on one model thread."""

    def __init__(self, predictor: Any, limits: ServeLimits):
        self.predictor, self.limits = predictor, limits
        # Texts in the last batch: under steady load the same clients come back, so once as many texts as
        # last time are here the batch goes without waiting out ``batch_wait_ms`` (the model would idle).
        self.last_size = limits.max_batch
        self.waiting: deque[_Job] = deque()
        self.running: list[_Job] = []
        """Requests whose slices are in the batch the model runs now."""
        self.arrived: asyncio.Event | None = None
        self.task: asyncio.Task | None = None
        self.worker: ThreadPoolExecutor | None = None

    def start(self) -> None:
        # The model runs on one dedicated thread: batches stay serial and on one OpenMP team whatever else
        # uses asyncio's shared default pool (each thread that runs torch ops gets its own team).
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="langbert-model")
        self.arrived = asyncio.Event()  # belongs to the event loop that first uses it: one per start
        self.waiting.clear()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        if self.worker:
            self.worker.shutdown(wait=False, cancel_futures=True)

    async def predict(self, texts: list[str], pairs: list[str] | None) -> list[dict]:
        job = _Job(list(texts), list(pairs) if pairs is not None else None,
                   asyncio.get_running_loop().create_future())
        self.waiting.append(job)
        self.arrived.set()
        return await job.future

    def backlog(self) -> dict[str, Any]:
        """Requests waiting or part-done, their texts still to run, and how long the oldest has waited."""
        jobs = [j for j in (*self.running, *self.waiting) if not j.future.done()]
        oldest = min((j.arrived for j in jobs), default=None)
        return {"requests": len(jobs), "texts": sum(len(j.texts) - j.done for j in jobs),
                "oldest_wait_s": round(time.monotonic() - oldest, 3) if oldest is not None else 0.0}

    # -- the loop ---------------------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._gather(loop)
            turn = self._take_turn()
            self.running = [job for job, _ in turn]
            self.last_size = sum(n for _, n in turn)
            for with_pairs in (False, True):  # pairs and single texts cannot share a batch
                group = [(job, n) for job, n in turn if (job.pairs is not None) == with_pairs]
                if group:
                    await self._run_group(loop, group)
            for job, _ in turn:  # unfinished: to the back of the line, behind those that came meanwhile
                if not job.future.done() and job.done < len(job.texts):
                    self.waiting.append(job)
            self.running = []

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait for a first request, then up to ``batch_wait_ms`` for more, or until as many texts as the
        last batch held are here."""
        while not self.waiting:
            self.arrived.clear()
            await self.arrived.wait()
        deadline = loop.time() + self.limits.batch_wait_ms / 1000
        while True:
            queued = sum(len(j.texts) - j.done for j in self.waiting)
            timeout = deadline - loop.time()
            if queued >= min(self.last_size, self.limits.max_batch) or timeout <= 0:
                return
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout)
            except asyncio.TimeoutError:
                return

    def _take_turn(self) -> list[tuple[_Job, int]]:
        """The next slice of each waiting request, in line, within the batch's text and character budget."""
        turn: list[tuple[_Job, int]] = []
        texts, chars = 0, 0
        while self.waiting and texts < self.limits.max_batch:
            job = self.waiting[0]
            if job.future.done():  # its caller went away
                self.waiting.popleft()
                continue
            n = 0
            while job.done + n < len(job.texts) and texts + n < self.limits.max_batch:
                size = job.chars(job.done + n)
                if (turn or n) and chars + size > self.limits.batch_chars:
                    break
                chars += size
                n += 1
            if n == 0:
                break
            self.waiting.popleft()
            turn.append((job, n))
            texts += n
        return turn

    async def _run_group(self, loop: asyncio.AbstractEventLoop, group: list[tuple[_Job, int]]) -> None:
        slices = [job.next_slice(n) for job, n in group]
        texts = [t for job_texts, _ in slices for t in job_texts]
        pairs = [p for _, job_pairs in slices for p in job_pairs] if group[0][0].pairs is not None else None
        try:
            results = await loop.run_in_executor(self.worker, self.predictor.predict, texts, pairs)
        except Exception as exc:  # noqa: BLE001 - every waiting caller must hear about it
            # One request's bad input (a QA question too long for max_length) must not fail the others
            # it was batched with: each runs alone, and only its own failure reaches it.
            await self._one_by_one(loop, group, exc)
            return
        start = 0
        for job, n in group:
            self._advance(job, results[start:start + n])
            start += n

    async def _one_by_one(self, loop: asyncio.AbstractEventLoop, group: list[tuple[_Job, int]],
                          batch_error: Exception) -> None:
        for job, n in group:
            if job.future.done():
                continue
            if len(group) == 1:
                job.future.set_exception(batch_error)
                continue
            try:
                result = await loop.run_in_executor(self.worker, self.predictor.predict, *job.next_slice(n))
            except Exception as exc:  # noqa: BLE001
                job.future.set_exception(exc)
            else:
                self._advance(job, result)

    @staticmethod
    def _advance(job: _Job, results: list[dict]) -> None:
        job.results.extend(results)
        job.done += len(results)
        if job.done == len(job.texts) and not job.future.done():
            job.future.set_result(job.results)
