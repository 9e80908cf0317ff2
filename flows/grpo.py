"""Stage ``grpo``: reinforcement of the fine-tuned model with verifiers, online and offline.

``grpo.mode`` picks online GRPO (TRL's GRPOTrainer, rewards from the composed verifiers of
``params.verifiers``), BiomniGEM's offline multi-trace GRPO on the annotate stage's fixed-reward
variants, or offline first and online from its result. Training runs in a child process
(``tasks/train/grpo.py``) through the training harness (``tasks/train/harness.py``), on the layout
of ``base`` (``accelerate_config``, ``gpus``).

Online GRPO trains on the families where the start checkpoint's sampled answers to train problems
are neither all wrong nor all right (``grpo.room``, ``tasks/train/room.py``): elsewhere every group's
correctness is the same and carries no advantage. ``models/grpo/trained_families.json`` names the
families trained on, so evaluate can compare grpo with its start on them.

The soft verifiers are fitted here on the training split only; the stage refuses to go on if the
fitted folder names a test entity. Scratch (data, verifiers, checkpoints) lives in
``scratch/grpo/<key>/``, the key hashing every input: a killed run rerun with the same inputs
resumes from its last checkpoint; other inputs start afresh. ``models/grpo`` (the model, its
tokenizer and the fitted verifiers) appears whole or not at all.

Reports: ``reports/grpo/reward.csv`` (online reward curve: total, per verifier, KL, completion
length, clipping, zero-variance groups), ``offline_loss.csv``, ``heldout.csv`` (the checkpoint
against its start on a few test problems per family), ``room.csv`` (the family check), ``metrics.json``.
"""
from __future__ import annotations

import flows  # noqa: F401  (sets PREFECT_HOME before Prefect is imported)

import hashlib
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
from tasks.train import harness
from tasks.train.grpo import PHASES
from tasks.train.grpo_data import (assert_no_test_entities, cap_per_family, offline_curve, reward_curve,
                             reward_summary, rollout_prompts)
from tasks.train.heldout import heldout_check, per_family
from tasks.lm.modeling import TRAINED_FAMILIES, load_tokenizer
from tasks.train.multitrace import offline_groups
from tasks.train.room import ROOM_COLUMNS, families_with_room, sample_correctness
from tasks.common.params import Params, load_params
from tasks.common.prompts import load_prompts
from tasks.common.storage import atomic_path, read_table, write_csv, write_json
from tasks.common.tracking import stage_run
from tasks.verifiers.fitted import fit_verifiers, load_verifiers

PROBLEMS = Path("data/problems/problems.parquet")
TRACES = Path("data/annotate/traces.parquet")
CORPUS = Path("data/corpus")
MODEL = Path("models/grpo")
REPORTS = Path("reports/grpo")

fit = task(fit_verifiers, cache_policy=NO_CACHE)
sample = task(sample_correctness, cache_policy=NO_CACHE)
train_child = task(harness.run_child, cache_policy=NO_CACHE)
check = task(heldout_check, cache_policy=NO_CACHE)


def _check_params(params: Params) -> None:
    if params.grpo is None or params.verifiers is None:
        raise InputError("params.yaml", "grpo", "the grpo stage needs the grpo and verifiers sections")
    if not Path(params.grpo.init).is_dir():
        raise InputError(params.grpo.init, "folder", "start checkpoint (grpo.init) not found: "
                         "run the stage that writes it (dvc repro sft) or point grpo.init elsewhere")


def _digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(df.to_json(orient="records", default_handler=str).encode()).hexdigest()


def _plot(curve: pd.DataFrame, columns: list[str], title: str, ylabel: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for col in columns:
        ax.plot(curve["step"], curve[col], marker="o", markersize=3, label=col)
    ax.set(xlabel="step", ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


@flow(name="grpo")
def grpo_flow() -> None:
    params = load_params(require=("grpo",))
    _check_params(params)
    p, v, seed = params.grpo, params.verifiers, params.base.seed
    phases = PHASES[p.mode]
    prompts = load_prompts(params.annotate.prompts_dir if params.annotate else None)
    with stage_run("grpo", params) as run:
        run.log_params({"verifiers": v.model_dump(mode="json")})
        problems = read_table(PROBLEMS, schemas.Problems)
        tokenizer = load_tokenizer(p.init)
        # the offline phase builds its own prompts from the traces; the style is the online phase's
        eligible, too_long = rollout_prompts(problems, prompts, v.answer_tag, tokenizer,
                                             p.exclude_families, p.max_prompt_tokens, style=p.online.prompt)
        online = cap_per_family(eligible, p.problems_per_family)
        room = pd.DataFrame(columns=ROOM_COLUMNS)
        if "online" in phases and p.room.problems_per_family and not online.empty:
            judged = sample(p.init, cap_per_family(online, p.room.problems_per_family), p.room.samples,
                            p.online.max_completion_length, p.online.temperature, p.online.top_p,
                            v.answer_tag, params.generation, seed)
            room = families_with_room(judged, p.room.min_accuracy, p.room.max_accuracy)
            run.log_table(judged, "room_completions", rows=min(len(judged), 40))
            kept = set(room.loc[room["kept"], "family"])
            if not kept:
                accuracy = ", ".join(f"{r.family} {r.accuracy:.2f}" for r in room.itertuples())
                raise InputError(PROBLEMS, "train split", "no family has room for online GRPO: the start "
                                 f"checkpoint's sampled accuracy is outside ({p.room.min_accuracy}, "
                                 f"{p.room.max_accuracy}) on every family ({accuracy}; grpo.room)")
            online = online[online["family"].isin(kept)].reset_index(drop=True)
        if "online" in phases and online.empty:
            raise InputError(PROBLEMS, "train split", f"no problem left for online GRPO (families "
                             f"excluded: {p.exclude_families}; too long: {too_long})")
        offline = pd.DataFrame()
        if "offline" in phases:
            traces = read_table(TRACES, schemas.Traces)
            offline = offline_groups(traces, problems, eligible, prompts, v.answer_tag, p.problems_per_family,
                                     p.offline.alpha, p.offline.eps)
            if offline.empty:
                raise InputError(TRACES, "table", "no verified or derived trace with a reward")

        trained_families = sorted(set(online["family"] if "online" in phases else [])
                                  | set(offline["family"] if "offline" in phases else []))
        # the key: the params, the start checkpoint, what the verifiers are fitted on, the data
        work = harness.prepare("grpo", params, [p.init, PROBLEMS, CORPUS],
                               extra={"verifiers": v.model_dump(mode="json"), "online": _digest(online),
                                      "offline": _digest(offline)})
        fitted = work / "verifiers"
        shutil.rmtree(fitted, ignore_errors=True)
        manifest = fit(problems, CORPUS, fitted, v, seed)
        entities_checked = assert_no_test_entities(manifest, problems, str(fitted))
        online.to_parquet(work / "online.parquet", index=False)
        offline.to_parquet(work / "offline.parquet", index=False)

        with atomic_path(MODEL) as out:
            trained = train_child("grpo", work, {
                "params": p.model_dump(mode="json"), "verifiers": v.model_dump(mode="json"),
                "tensor_parallel_size": params.base.tensor_parallel_size, "init_dir": p.init,
                "verifiers_dir": str(fitted), "online_data": str(work / "online.parquet"),
                "offline_data": str(work / "offline.parquet"), "output_dir": str(out)},
                params.base, run.run_id)
            shutil.copytree(fitted, out / "verifiers")
            write_json({"families": trained_families, "room": room.to_dict("records")},
                       out / TRAINED_FAMILIES)

        REPORTS.mkdir(parents=True, exist_ok=True)
        metrics: dict = {"mode": p.mode, "init": p.init, "online_prompt": p.online.prompt,
                         "verifier_training_entities_checked": entities_checked,
                         "online_prompts": len(online), "prompts_too_long": too_long,
                         "trained_families": trained_families,
                         "room": room.set_index("family").to_dict("index"),
                         "online_prompts_per_family": online["family"].value_counts().sort_index().to_dict()}
        write_csv(room, REPORTS / "room.csv")
        curve = reward_curve(trained.get("online", {}).get("history", []))
        write_csv(curve, REPORTS / "reward.csv")
        loss = offline_curve(trained.get("offline", {}).get("history", []))
        write_csv(loss, REPORTS / "offline_loss.csv")
        for phase, result in trained.items():
            metrics[phase] = {k: v for k, v in result.items() if k != "history"}
        if "online" in trained:
            metrics["online"].update(reward_summary(trained["online"]["history"]))
            completions = work / "online" / "checkpoints" / "completions"
            if completions.is_dir():
                run.log_artifact(completions, "completions/parquet")
            if not curve.empty:
                means = [c for c in curve if c.startswith("rewards/")]
                fig = _plot(curve, ["reward"] + means, "online GRPO reward", "reward")
                run.log_figure(fig, "grpo_reward.png")
                plt.close(fig)
        if "offline" in trained:
            metrics["offline"]["traces_per_variant"] = offline["variant"].value_counts().sort_index().to_dict()
            run.log_table(offline[["group", "family", "variant", "reward", "weight"]], "offline_weights", rows=30)
            if not loss.empty:
                fig = _plot(loss, [c for c in ("weighted_nll", "gold_nll", "variant_nll", "kl") if c in loss],
                            "offline multi-trace GRPO", "loss part")
                run.log_figure(fig, "grpo_offline_loss.png")
                plt.close(fig)

        if p.heldout.problems_per_family:
            test, _ = rollout_prompts(problems, prompts, v.answer_tag, tokenizer, p.exclude_families,
                                      p.max_prompt_tokens, split="test", style=p.online.prompt)
            test = cap_per_family(test, p.heldout.problems_per_family)
            bundle = load_verifiers(MODEL / "verifiers", v)
            scored = check({"start": p.init, "grpo": str(MODEL)}, test, bundle, v,
                           p.heldout.max_new_tokens, params.generation, seed)
            table = per_family(scored)
            write_csv(table, REPORTS / "heldout.csv")
            metrics["heldout"] = {f"{r.model}/{r.family}": {"problems": int(r.problems), "accuracy": r.accuracy,
                                                            "reward": r.reward, "format": r.format}
                                  for r in table.itertuples(index=False)}
            run.log_table(table, "heldout_per_family", rows=len(table))
            run.log_table(scored, "heldout_completions", rows=min(len(scored), 40))

        write_json(metrics, REPORTS / "metrics.json")
        summary = {k: round(val, 4) for k, val in (
            ("train_loss", metrics.get("offline", {}).get("train_loss")),
            ("reward", metrics.get("online", {}).get("reward_mean"))) if val is not None}
        write_json(summary, REPORTS / "summary.json")
        run.log_metrics({k: val for k, val in metrics.items() if k not in ("prompts_too_long",)})
        run.publish(summary)
        run.log_artifact(REPORTS / "reward.csv", "reports")
        shutil.rmtree(work)


if __name__ == "__main__":
    run_stage(grpo_flow)
