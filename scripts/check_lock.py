"""Fail when dvc.lock is older than the code or params it records: committed results must come
from the committed code.

Run on a clean checkout (CI clones one): outputs absent from the clone ("deleted", "not in cache")
are expected; a dependency or param that is "modified" (or "new") means someone changed a stage's
code or params without running ``dvc repro`` and committing ``dvc.lock`` and ``reports/``.

    python scripts/check_lock.py        # exit 0: dvc.lock matches; 1: stale stages listed
"""
from __future__ import annotations

import json
import subprocess
import sys

STALE = {"modified", "new"}


def stale_deps(status: dict) -> dict[str, list[str]]:
    """Stage -> the deps/params whose recorded hash no longer matches, from ``dvc status --json``.

    >>> stale_deps({"sft": [{"changed deps": {"tasks/train": "modified", "models/pretrain": "deleted",
    ...                      "params.yaml": {"sft.max_length": "modified"}}},
    ...                     {"changed outs": {"models/sft": "not in cache"}}],
    ...             "limit": [{"changed outs": {"data/limit": "deleted"}}]})
    {'sft': ['tasks/train', 'params.yaml:sft.max_length']}
    >>> stale_deps({"grpo": ["changed command"]})
    {'grpo': ['changed command']}
    """
    out: dict[str, list[str]] = {}
    for stage, entries in status.items():
        found = []
        for entry in entries:
            if isinstance(entry, str):  # "changed command", "always changed"
                found.append(entry)
                continue
            for path, state in entry.get("changed deps", {}).items():
                if isinstance(state, dict):  # a params file: key -> state
                    found += [f"{path}:{key}" for key, s in state.items() if s in STALE]
                elif state in STALE:
                    found.append(path)
        if found:
            out[stage] = found
    return out


def main() -> int:
    done = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"check-lock: dvc status failed: {done.stderr.strip()}", file=sys.stderr)
        return 2
    stale = stale_deps(json.loads(done.stdout or "{}"))
    for stage, deps in stale.items():
        print(f"check-lock: stage {stage}: dvc.lock is older than {', '.join(deps)}", file=sys.stderr)
    if stale:
        print("check-lock: run `dvc repro` and commit dvc.lock and reports/ with the change",
              file=sys.stderr)
        return 1
    print("check-lock: dvc.lock matches the code and params of every stage")
    return 0


if __name__ == "__main__":
    sys.exit(main())
