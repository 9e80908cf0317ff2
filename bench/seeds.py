"""Seed spread: the whole chain for several seeds with ``dvc exp run``, each metric's mean and spread.

    PYTHONPATH=$PWD python bench/seeds.py [--seeds 0 1 2] [--profile default] [--keep] [--force]

Each seed is one DVC experiment (``dvc exp run -S base.seed=N -S base.profile=P``), run one after
the other in the workspace (every stage whose params depend on the seed reruns: the splits, the
traces, every training run). A seed whose stages ``dvc.lock`` already holds (the committed run)
costs nothing: DVC finds them up to date; ``--force`` reruns every stage of every seed. Afterwards
the headline numbers are read from each experiment's commit (``git show <rev>:reports/...``, the
detailed reports are tracked by git) and printed as one JSON line: per metric the values, mean,
standard deviation and range, and per seed the paired sft - pretrain and grpo - sft differences on
the mean (with their 95% intervals) and the families whose sft interval lies above chance.
The experiments are removed afterwards unless ``--keep`` (``dvc exp apply`` one to inspect it).
It refuses to start in a workspace with uncommitted changes to tracked files (an experiment would
sweep them into every seed's run) and leaves the workspace as HEAD has it at the end (params, lock,
reports and DVC outputs), however it ends.
Cost: one full ``dvc repro`` per seed that is not the committed one (about 22 minutes each on 2
CPU cores for the default profile, a few minutes for smoke).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys

import numpy as np

from tasks.evaluate.stats import MEAN

# metrics file -> the paths inside it that are compared across seeds
HEADLINES = {
    "reports/evaluate/metrics.json": [
        ("loglik", ckpt, "mean_accuracy") for ckpt in ("pretrain", "sft", "grpo")]
    + [("loglik", "sft", "families", family, "acc") for family in ("cell_type", "protein_family")]
    + [("checkpoints", ckpt, "format_rate") for ckpt in ("sft", "grpo")],
    "reports/annotate/metrics.json": [("accept_rate",)],
}


def dig(data: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def paired_mean(metrics: dict, comparison: str) -> dict | None:
    """The paired difference on the mean over families: diff, low, high, p."""
    rows = dig(metrics, ("paired", comparison)) or []
    mean = next((r for r in rows if r["family"] == MEAN), None)
    return None if mean is None else {k: mean[k] for k in ("diff", "low", "high", "p_value")}


def families_above_chance(metrics: dict, checkpoint: str = "sft") -> list[str]:
    """Families whose 95% interval of log-likelihood accuracy lies wholly above chance."""
    families = dig(metrics, ("loglik", checkpoint, "families")) or {}
    return sorted(f for f, r in families.items() if r.get("scorable") and r["low"] > r["chance"])


def run(cmd: list[str]) -> str:
    """``cmd``'s stdout; it runs in a process group of its own, killed whole if this script is
    stopped (``dvc exp run``'s stage commands would go on writing outputs otherwise)."""
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, out, err)
    return out


def restore_head(branch: str) -> None:
    """The workspace as HEAD has it: ``dvc exp run`` leaves the last experiment's params, dvc.lock,
    reports and outputs in place (and staged), and one killed halfway leaves HEAD detached."""
    run(["git", "reset", "-q"])
    run(["git", "checkout", "--", "."])
    if branch:
        run(["git", "checkout", "-q", branch])
    try:
        # --force: a seed killed halfway leaves outputs of its own in the workspace, which a plain
        # checkout refuses to overwrite (they are the experiment's, not HEAD's)
        run(["dvc", "checkout", "--force", "--quiet"])
    except subprocess.CalledProcessError as err:
        # a workspace whose cache lacks HEAD's outputs (a fresh clone that never ran the committed
        # chain): the experiments are done and kept in git, so their numbers are still read below
        print(f"bench/seeds.py: dvc checkout could not restore HEAD's outputs (missing from the "
              f"cache; `dvc repro` rebuilds them): {err.stderr.strip()[-500:]}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--keep", action="store_true", help="keep the experiments afterwards")
    parser.add_argument("--force", action="store_true", help="rerun stages DVC finds up to date")
    args = parser.parse_args()
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"]).rstrip()
    if dirty:
        sys.exit(f"bench/seeds.py: uncommitted changes to tracked files; commit or stash them "
                 f"first (every experiment would run with them):\n{dirty}")
    branch = subprocess.run(["git", "symbolic-ref", "--short", "-q", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    # a kill (SIGTERM) unwinds through the finally below, so the workspace is restored then too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    names = {}
    try:
        for seed in args.seeds:
            name = f"seed-{seed}-{args.profile}"
            run(["dvc", "exp", "run", "--name", name, *(["--force"] if args.force else []),
                 "-S", f"base.seed={seed}", "-S", f"base.profile={args.profile}"])
            names[seed] = name
    finally:
        restore_head(branch)
    shown = json.loads(run(["dvc", "exp", "show", "--json"]))
    per_exp = {}
    for entry in shown:
        for exp in entry.get("experiments") or []:
            rev = (exp.get("revs") or [{}])[0].get("rev")
            if exp.get("name") in names.values() and rev:
                per_exp[exp["name"]] = {path: json.loads(run(["git", "show", f"{rev}:{path}"]))
                                        for path in HEADLINES}
    out = {"profile": args.profile, "seeds": args.seeds, "metrics": {}, "per_seed": {}}
    for path, keys in HEADLINES.items():
        for key in keys:
            values = [dig(per_exp.get(names[s], {}).get(path, {}), key) for s in args.seeds]
            found = [v for v in values if isinstance(v, (int, float))]
            label = "/".join(key)
            out["metrics"][label] = {"values": values}
            if found:
                out["metrics"][label].update(mean=round(float(np.mean(found)), 4),
                                             std=round(float(np.std(found, ddof=1)), 4) if len(found) > 1 else None,
                                             range=[min(found), max(found)])
    for s in args.seeds:
        metrics = per_exp.get(names[s], {}).get("reports/evaluate/metrics.json", {})
        sft_pretrain = paired_mean(metrics, "sft - pretrain")
        out["per_seed"][s] = {"sft - pretrain": sft_pretrain, "grpo - sft": paired_mean(metrics, "grpo - sft"),
                              "sft_beats_pretrain": None if sft_pretrain is None else sft_pretrain["low"] > 0,
                              "sft_families_above_chance": families_above_chance(metrics)}
    if not args.keep:
        run(["dvc", "exp", "remove", *names.values()])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
