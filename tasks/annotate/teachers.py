"""Teacher and solver backends, and the cached client every call of the annotate stage goes through.

A backend turns :class:`Call` objects into reply texts and reports each reply the moment it has it
(``run(calls, on_reply)``), so the :class:`CachedClient` commits replies as they arrive and a killed
run keeps every reply it received. Backends:

- :class:`OpenAIBackend` — any OpenAI-compatible ``/v1/chat/completions`` endpoint (``vllm serve``,
  a hosted model) over httpx: bounded concurrency, a wall-clock timeout per request, retries with
  exponential backoff on 429/5xx/timeouts (``Retry-After`` honoured), token accounting. The API key
  is read from the environment variable whose *name* the params give; it is never stored.
- :class:`InProcessBackend` — a model folder run by this project's generation engine
  (``tasks.lm.generate``: vLLM, or transformers).
- ``tasks.annotate.rationales.OfflineTeacher`` and ``tasks.annotate.rationales.EvidenceChecker`` — deterministic,
  knowledge-grounded; they have the same ``run`` method.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tasks.annotate.call_cache import CallCache, call_key

log = logging.getLogger(__name__)

RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Call:
    """One chat completion to make. ``context`` carries the structured problem for the offline
    backends; it is not part of the key because everything in it is already in ``messages``."""

    messages: list[dict[str, str]]
    sampling: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Reply:
    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # set when every attempt failed; such replies are never cached
    attempts: int = 1


OnReply = Callable[[Call, Reply], None]


class Backend(Protocol):
    endpoint: str
    model: str

    def run(self, calls: Sequence[Call], on_reply: OnReply) -> None: ...


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server, ``concurrency`` requests in flight."""

    def __init__(self, endpoint: str, model: str, api_key_env: str | None = None,
                 concurrency: int = 8, timeout_s: float = 60.0, max_retries: int = 4,
                 backoff_s: float = 1.0, backoff_cap_s: float = 30.0):
        self.endpoint, self.model = endpoint.rstrip("/"), model
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self.max_retries, self.backoff_s, self.backoff_cap_s = max_retries, backoff_s, backoff_cap_s
        self._headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ValueError(f"annotate.api_key_env: environment variable {api_key_env} is not set")
            self._headers["Authorization"] = f"Bearer {key}"

    def _url(self) -> str:
        base = self.endpoint if self.endpoint.endswith("/v1") else f"{self.endpoint}/v1"
        return f"{base}/chat/completions"

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.backoff_cap_s)
            except ValueError:
                pass  # an HTTP-date Retry-After: fall back to our own backoff
        # Full jitter keeps many clients from retrying in lockstep after a shared 429.
        return random.uniform(0, min(self.backoff_cap_s, self.backoff_s * 2 ** attempt))

    async def _one(self, client: Any, call: Call) -> Reply:
        import httpx

        body = {"model": self.model, "messages": call.messages,
                **{k: v for k, v in call.sampling.items() if k != "attempt"}}
        error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                response = await asyncio.wait_for(client.post(self._url(), json=body), self.timeout_s)
                if response.status_code == 200:
                    data = response.json()
                    usage = data.get("usage") or {}
                    return Reply(data["choices"][0]["message"]["content"] or "",
                                 int(usage.get("prompt_tokens") or 0),
                                 int(usage.get("completion_tokens") or 0), attempts=attempt + 1)
                error = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in RETRYABLE:
                    return Reply(None, error=error, attempts=attempt + 1)
                retry_after = response.headers.get("retry-after")
            except (asyncio.TimeoutError, httpx.TimeoutException):
                error = f"timeout after {self.timeout_s:g} s"
            except httpx.TransportError as err:
                error = f"{type(err).__name__}: {err}"
            except (KeyError, IndexError, ValueError) as err:
                return Reply(None, error=f"malformed response: {type(err).__name__}: {err}",
                             attempts=attempt + 1)
            if attempt < self.max_retries:
                delay = self._delay(attempt, retry_after)
                log.info("teacher call failed (%s); retry %d/%d in %.2f s", error, attempt + 1,
                         self.max_retries, delay)
                await asyncio.sleep(delay)
        return Reply(None, error=f"{error} (after {self.max_retries + 1} attempts)",
                     attempts=self.max_retries + 1)

    async def _run(self, calls: Sequence[Call], on_reply: OnReply) -> None:
        import httpx

        gate = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency)
        # httpx's own timeout catches a silent socket; wait_for above bounds a trickling one.
        async with httpx.AsyncClient(headers=self._headers, timeout=self.timeout_s, limits=limits) as client:
            async def guarded(call: Call) -> None:
                async with gate:
                    reply = await self._one(client, call)
                on_reply(call, reply)

            await asyncio.gather(*(guarded(c) for c in calls))

    def run(self, calls: Sequence[Call], on_reply: OnReply) -> None:
        asyncio.run(self._run(calls, on_reply))


class InProcessBackend:
    """A model folder run by ``tasks.lm.generate`` in this pipeline (vLLM by default).

    ``tasks.lm.generate`` starts a vLLM engine per call (a child process, ~40-50 s on CPU), so calls
    are grouped by sampling params and sent ``chunk`` prompts at a time: replies of a finished
    chunk are stored, and a kill loses at most the chunk in flight.
    """

    def __init__(self, model_dir: str, settings: Any = None, engine: str = "vllm", chunk: int = 512):
        self.endpoint, self.model = f"inprocess-{engine}", str(model_dir)
        self.settings, self.engine, self.chunk = settings, engine, chunk

    def run(self, calls: Sequence[Call], on_reply: OnReply) -> None:
        from tasks.lm.generate import generate

        groups: dict[str, list[Call]] = {}
        for call in calls:
            groups.setdefault(repr(sorted(call.sampling.items())), []).append(call)
        for group in groups.values():
            sampling = group[0].sampling
            for start in range(0, len(group), self.chunk):
                batch = group[start:start + self.chunk]
                texts = generate(self.model, [c.messages for c in batch],
                                 max_new_tokens=int(sampling.get("max_tokens", 512)),
                                 temperature=float(sampling.get("temperature", 0.0)),
                                 seed=int(sampling.get("seed", 0)) + int(sampling.get("attempt", 0)),
                                 engine=self.engine, settings=self.settings)
                for call, completions in zip(batch, texts):
                    on_reply(call, Reply(completions[0]))


@dataclass
class CallStats:
    requested: int = 0
    cache_hits: int = 0
    sent: int = 0
    failed: int = 0
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


class CachedClient:
    """Looks every call up in the store, sends only the misses, commits each reply on arrival."""

    def __init__(self, backend: Backend, cache: CallCache):
        self.backend, self.cache = backend, cache
        self.stats = CallStats()

    def key(self, call: Call) -> str:
        return call_key(self.backend.endpoint, self.backend.model, call.messages, call.sampling)

    def complete(self, calls: Sequence[Call]) -> list[Reply]:
        """Replies in the order of ``calls``; duplicates are sent once."""
        started = time.perf_counter()
        keys = [self.key(c) for c in calls]
        replies: dict[str, Reply] = {}
        todo: dict[str, Call] = {}
        for key, call in zip(keys, calls):
            if key in replies or key in todo:
                continue
            hit = self.cache.get(key)
            if hit is not None:
                replies[key] = Reply(hit.text, hit.prompt_tokens, hit.completion_tokens, attempts=0)
                self.stats.cache_hits += 1
            else:
                todo[key] = call
        self.stats.requested += len(calls)

        def on_reply(call: Call, reply: Reply) -> None:
            key = self.key(call)
            replies[key] = reply
            self.stats.sent += 1
            self.stats.attempts += reply.attempts
            if reply.error is not None:
                self.stats.failed += 1
                return
            self.stats.prompt_tokens += reply.prompt_tokens
            self.stats.completion_tokens += reply.completion_tokens
            self.cache.put(key, reply.text, reply.prompt_tokens, reply.completion_tokens)

        if todo:
            self.backend.run(list(todo.values()), on_reply)
        self.stats.seconds += time.perf_counter() - started
        return [replies.get(k, Reply(None, error="backend returned no reply")) for k in keys]
