"""The OpenAI-compatible teacher against a real vLLM server (CPU build) of the tiny Qwen3 that
``tasks.lm.modeling`` builds (the ``tiny_base`` fixture), on loopback."""
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tasks.annotate.steps import teach
from tasks.annotate.call_cache import CallCache
from tasks.common.params import Annotate
from tasks.common.prompts import load_prompts
from tasks.annotate.teachers import CachedClient, Call, OpenAIBackend

pytestmark = pytest.mark.slow

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tiny_base):
    folder = tiny_base[0]
    port = _free_port()
    log = open(folder.parent / "server.log", "w")
    env = os.environ | {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
                             "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
                             "--dtype", "float32", "--max-model-len", "512", "--enforce-eager"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited: {(folder.parent / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail("vLLM server did not come up in 300 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_chat_completions_with_token_accounting_and_cache(vllm_server, tmp_path):
    backend = OpenAIBackend(vllm_server, "tiny", concurrency=2, timeout_s=60, max_retries=1)
    client = CachedClient(backend, CallCache(tmp_path / "calls.sqlite"))
    calls = [Call([{"role": "user", "content": f"Which cell type is cell {i}?"}],
                  {"temperature": 0.0, "max_tokens": 8, "seed": 0}) for i in range(3)]
    replies = client.complete(calls)
    assert all(r.error is None and isinstance(r.text, str) for r in replies)
    assert client.stats.prompt_tokens > 0 and 0 < client.stats.completion_tokens <= 24
    again = client.complete(calls)
    assert client.stats.sent == 3 and client.stats.cache_hits == 3
    assert [r.text for r in again] == [r.text for r in replies]


def test_untrained_teacher_output_is_retried_then_rejected(vllm_server, tmp_path):
    import json

    import pandas as pd

    # short prompts (a user override folder) so the 512-token context holds them
    prompts_dir = tmp_path / "prompts"
    prompts_dir.mkdir()
    (prompts_dir / "teacher_system.txt").write_text("Reply with JSON steps.")
    (prompts_dir / "teacher_user.txt").write_text("{question} {answer} {evidence}{passages}{focus}{length}")
    (prompts_dir / "teacher_cell.txt").write_text("")
    row = {"id": "short", "family": "perturb_de", "category": "cell", "task_kind": "annotation",
           "modality": "cell", "prompt": "Does A change B?", "answer": "yes", "answer_type": "yes_no",
           "choices": [], "evidence": json.dumps({"pert": "A"}), "split": "train", "source_ids": [],
           "entity": "e"}
    long = row | {"id": "long", "prompt": "Does A change B? " + " ".join(f"G{i}" for i in range(600))}
    p = Annotate(teacher="openai", endpoint=vllm_server, model="tiny", max_tokens=16, max_parse_retries=1,
                 timeout_s=60)
    client = CachedClient(OpenAIBackend(vllm_server, "tiny", concurrency=2, timeout_s=60, max_retries=2),
                          CallCache(tmp_path / "c.sqlite"))
    taught = teach(pd.DataFrame([row, long]), client, load_prompts(prompts_dir), {}, p)
    # a random 2-layer model writes no JSON: asked twice (one re-ask), then rejected with its reason
    assert taught["short"]["trace"] is None and taught["short"]["reason"] == "bad_json"
    assert taught["short"]["tries"] == 2
    # a prompt over the server's context is a client error: reported at once, never retried
    assert taught["long"]["reason"].startswith("teacher_error: HTTP 400")
    assert client.stats.sent == 3 and client.stats.failed == 1 and client.stats.attempts == 3
