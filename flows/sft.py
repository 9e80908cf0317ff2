"""Stage ``sft``: instruction-alignment SFT, answer-only SFT, then cold-start SFT on gold traces, from ``models/pretrain``.

Training runs in a child process (``tasks/train/sft.py``) through the training harness
(``tasks/train/harness.py``) on the layout of ``base`` (``accelerate_config``, ``gpus``), so one CPU
process, two CPU processes (``configs/accelerate/cpu_ddp.yaml``) or GPUs/nodes with DeepSpeed or
FSDP run the same code. Checkpoints live in ``scratch/sft/<key>/`` (outside DVC outputs), where the
key hashes the params, the layout, the data and the starting model: a killed run rerun with the
same inputs resumes from its last checkpoint; any change starts afresh. The work folder is deleted
once ``models/sft`` (HF layout, LoRA merged) has been written atomically.
"""
from __future__ import annotations

import flows  # noqa: F401  (sets PREFECT_HOME before Prefect is imported)

import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from tasks.common import schemas
from tasks.common.errors import InputError, run_stage
from tasks.common.params import load_params
from tasks.train import harness
from tasks.train.sft import DONE, phases
from tasks.common.storage import atomic_path, read_table, write_csv, write_json
from tasks.common.tracking import stage_run

START = Path("models/pretrain")
MODEL = Path("models/sft")
REPORTS = Path("reports/sft")

train_child = task(harness.run_child, cache_policy=NO_CACHE)


def check_inputs(params) -> None:
    if not (START / "config.json").is_file() and not (START / "base_model.json").is_file():
        raise InputError(START, "folder", "no model (config.json): run the pretrain stage first")
    for name, phase in phases(params.sft).items():
        for path in phase.data:
            if read_table(path, schemas.SftChats).empty:
                raise InputError(path, "table", f"no chats for sft phase {name!r}")


def loss_curve(work: Path, names: list[str]) -> pd.DataFrame:
    rows = []
    for name in names:
        history = json.loads((work / name / "history.json").read_text())
        rows += [{"phase": name, "step": h["step"], "train_loss": h["loss"]} for h in history if "loss" in h]
    curve = pd.DataFrame(rows, columns=["phase", "step", "train_loss"])
    # one x axis across phases, so the DVC plot shows each phase after the one before
    offsets = curve.groupby("phase", sort=False)["step"].max().cumsum().shift(fill_value=0)
    curve["global_step"] = curve["step"] + curve["phase"].map(offsets)
    return curve


@flow(name="sft")
def sft_flow() -> None:
    params = load_params(require=("sft",))
    p = params.sft
    check_inputs(params)
    with stage_run("sft", params) as run:
        inputs = [START] + [Path(d) for phase in phases(p).values() for d in phase.data]
        work = harness.prepare("sft", params, inputs)
        trained = train_child("sft", work, {"params": p.model_dump(mode="json"), "start_dir": str(START)},
                              params.base, run.run_id)
        final = Path(trained["final_model"])

        with atomic_path(MODEL) as out:
            shutil.copytree(final, out)
            (out / DONE).unlink(missing_ok=True)
        curve = loss_curve(work, list(trained["phases"]))
        shutil.rmtree(work)

        done = trained["phases"]
        metrics = {
            "processes": trained["processes"],
            "phases": {n: {k: v for k, v in ph.items() if k not in ("phase", "first_trained_text")}
                       for n, ph in done.items()},
            "final_train_loss": done[list(done)[-1]]["train_loss"],
            "steps": sum(ph["steps"] for ph in done.values()),
        }
        write_csv(curve, REPORTS / "loss.csv")
        write_json(metrics, REPORTS / "metrics.json")
        summary = {"train_loss": round(metrics["final_train_loss"], 4),
                   "dropped": sum(ph.get("dropped_overlength", 0) for ph in done.values())}
        write_json(summary, REPORTS / "summary.json")
        # the child logged each phase's losses and runtime at its steps; add what it trained on
        run.log_metrics({"phases": {n: {k: v for k, v in ph.items() if not k.startswith("train_")
                                        and not isinstance(v, dict)} for n, ph in metrics["phases"].items()}})
        run.publish(summary)
        run.log_text("\n\n".join(f"{n}: {ph['first_trained_text']!r}" for n, ph in done.items()),
                     "samples/sft_trained_tokens.txt")

        fig, ax = plt.subplots(figsize=(7, 3.5))
        for name, part in curve.groupby("phase", sort=False):
            ax.plot(part["global_step"], part["train_loss"], label=name)
        ax.set(xlabel="step (all phases)", ylabel="train loss (assistant tokens)", title="sft loss")
        ax.legend()
        fig.tight_layout()
        run.log_figure(fig, "sft_loss.png")
        plt.close(fig)


if __name__ == "__main__":
    run_stage(sft_flow)
