import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest

from fault_server import FaultServer  # noqa: E402
from tasks.annotate.call_cache import CallCache
from tasks.annotate.teachers import CachedClient, Call, InProcessBackend, OpenAIBackend


def _calls(n: int) -> list[Call]:
    return [Call([{"role": "user", "content": f"question {i}"}], {"temperature": 0.0, "max_tokens": 16})
            for i in range(n)]


def _backend(url: str, **kw) -> OpenAIBackend:
    args = dict(model="tiny", concurrency=2, timeout_s=0.5, max_retries=4, backoff_s=0.01)
    return OpenAIBackend(url, **(args | kw))


def test_retries_through_429_500_and_a_stall_then_succeeds(tmp_path):
    script = [("status", 429, {"Retry-After": "0"}), ("status", 500), ("stall", 1.5), ("ok", "done")]
    with FaultServer(script) as server:
        client = CachedClient(_backend(server.url), CallCache(tmp_path / "c.sqlite"))
        [reply] = client.complete(_calls(1))
    assert reply.text == "done" and reply.error is None and reply.attempts == 4
    assert len(server.requests) == 4 and server.requests[0]["path"] == "/v1/chat/completions"
    assert client.stats.prompt_tokens == 11 and client.stats.completion_tokens == 7
    assert client.stats.attempts == 4 and client.stats.failed == 0


def test_retries_are_bounded_and_failures_not_cached(tmp_path):
    with FaultServer([("status", 503)] * 10) as server:
        client = CachedClient(_backend(server.url, max_retries=2), CallCache(tmp_path / "c.sqlite"))
        [reply] = client.complete(_calls(1))
        assert reply.text is None and "HTTP 503" in reply.error and "after 3 attempts" in reply.error
        assert len(server.requests) == 3 and client.stats.failed == 1
        [again] = client.complete(_calls(1))  # not cached: tried again, now past the faults
    assert again.text is None and len(server.requests) == 6


def test_timeout_is_reported_after_bounded_stalls(tmp_path):
    with FaultServer([("stall", 1.0)] * 2) as server:
        client = CachedClient(_backend(server.url, max_retries=1, timeout_s=0.3), CallCache(tmp_path / "c.sqlite"))
        [reply] = client.complete(_calls(1))
    assert "timeout after 0.3 s" in reply.error and len(server.requests) == 2


def test_client_errors_are_not_retried(tmp_path):
    with FaultServer([("status", 400)]) as server:
        [reply] = CachedClient(_backend(server.url), CallCache(tmp_path / "c.sqlite")).complete(_calls(1))
    assert "HTTP 400" in reply.error and len(server.requests) == 1


def test_replies_are_cached_and_concurrency_serves_all(tmp_path):
    with FaultServer() as server:
        client = CachedClient(_backend(server.url, concurrency=4), CallCache(tmp_path / "c.sqlite"))
        first = client.complete(_calls(10) + _calls(2))  # duplicates are sent once
        assert len(server.requests) == 10 and client.stats.sent == 10
        second = client.complete(_calls(10))
        assert len(server.requests) == 10 and client.stats.cache_hits == 10
    assert [r.text for r in second] == [r.text for r in first[:10]]


def test_api_key_comes_from_the_named_variable_and_is_never_logged(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OMICSFORGE_TEST_KEY", "sk-secret-123")
    caplog.set_level(logging.DEBUG)
    with FaultServer([("status", 500)]) as server:
        backend = _backend(server.url, api_key_env="OMICSFORGE_TEST_KEY")
        CachedClient(backend, CallCache(tmp_path / "c.sqlite")).complete(_calls(1))
    assert all(r["headers"]["Authorization"] == "Bearer sk-secret-123" for r in server.requests)
    assert "sk-secret-123" not in caplog.text and "sk-secret-123" not in repr(vars(backend)).replace(
        backend._headers["Authorization"], "")
    assert "sk-secret" not in (tmp_path / "c.sqlite").read_bytes().decode("latin-1")


def test_missing_key_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OMICSFORGE_NO_SUCH_KEY", raising=False)
    with pytest.raises(ValueError, match="OMICSFORGE_NO_SUCH_KEY is not set"):
        OpenAIBackend("http://127.0.0.1:1/v1", "m", api_key_env="OMICSFORGE_NO_SUCH_KEY")


def test_in_process_backend_generates_through_the_shared_engine(tiny_base, tmp_path):
    backend = InProcessBackend(str(tiny_base[0]), engine="transformers", chunk=2)
    client = CachedClient(backend, CallCache(tmp_path / "c.sqlite"))
    replies = client.complete([Call([{"role": "user", "content": f"cell {i}"}],
                                    {"temperature": 0.0, "max_tokens": 4, "attempt": 0}) for i in range(3)])
    assert all(isinstance(r.text, str) and r.error is None for r in replies)
    assert client.stats.sent == 3 and len(client.cache) == 3
