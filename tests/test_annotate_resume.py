"""Kill the annotation halfway with a real SIGKILL, rerun it, and count the calls on the rerun."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from annotate_fixtures import problems, write_corpus

from tasks.annotate.call_cache import CallCache

TESTS = Path(__file__).parent
PROJECT = TESTS.parent

WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from annotate_fixtures import problems
    from tasks.annotate.steps import select_problems, teach
    from tasks.annotate.call_cache import CallCache
    from tasks.annotate.evidence import Knowledge
    from tasks.common.params import Annotate
    from tasks.common.prompts import load_prompts
    from tasks.annotate.rationales import OfflineTeacher
    from tasks.annotate.teachers import CachedClient

    log, delay, corpus, cache = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]

    def counting_hook(call):
        with log.open("a") as fh:
            fh.write(call.context["id"] + "\\n")
        time.sleep(delay)  # the call is in flight: a kill now loses exactly this reply

    client = CachedClient(OfflineTeacher(Knowledge(corpus), on_call=counting_hook), CallCache(cache))
    todo = select_problems(problems().query("family != 'instruction_alignment'"), None)
    teach(todo, client, load_prompts(None), {{}}, Annotate())
    print("sent", client.stats.sent, "hits", client.stats.cache_hits)
""")


def _run(script: Path, log: Path, delay: float, corpus: Path, cache: Path) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(PROJECT)}
    return subprocess.Popen([sys.executable, str(script), str(log), str(delay), str(corpus), str(cache)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _ids(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_rerun_after_sigkill_sends_only_the_calls_that_never_completed(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(TESTS)))
    corpus, cache = write_corpus(tmp_path / "corpus"), tmp_path / "cache" / "calls.sqlite"
    train = problems().query("split == 'train' and family != 'instruction_alignment'")
    total = len(train)
    first_log, second_log, third_log = tmp_path / "run1.log", tmp_path / "run2.log", tmp_path / "run3.log"

    proc = _run(script, first_log, 0.4, corpus, cache)
    deadline = time.monotonic() + 60
    while len(_ids(first_log)) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    first = _ids(first_log)
    completed = len(CallCache(cache))
    assert 3 <= completed < total and len(first) - completed in (0, 1)

    proc = _run(script, second_log, 0.0, corpus, cache)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    second = _ids(second_log)
    assert len(second) == total - completed, out
    assert f"sent {total - completed} hits {completed}" in out
    # only a call that was in flight at the kill (logged, reply never stored) is sent again
    assert set(first) & set(second) <= set(first[completed:])
    assert set(first) | set(second) == set(train["id"])

    proc = _run(script, third_log, 0.0, corpus, cache)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and _ids(third_log) == [] and f"sent 0 hits {total}" in out
