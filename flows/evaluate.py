"""Stage ``evaluate``: every checkpoint on each family's test split, beside the baselines.

For each checkpoint of ``evaluate.checkpoints`` (name -> model folder), first the primary measure:
log-likelihood scoring of every closed-answer problem of the whole test split
(``tasks/evaluate/loglik.py``), with Wilson intervals, a paired bootstrap against the previous
checkpoint and the baselines fitted on the train split (``tasks/evaluate/comparison.py``); then
greedy completions of the (capped) test problems in the SFT prompt format (``tasks/lm/generate.py``, engine from ``generation``), answers
read from the answer tag and scored by ``tasks/verifiers``; PerturbQA pairs also get P(yes)/P(up)
right after the answer tag opens, scored by per-gene AUROC. Outputs: ``data/evaluate/
predictions.parquet``, ``biomni_predictions.parquet`` and ``loglik.parquet``;
``reports/evaluate/metrics.json`` (everything measured), ``table.md``, ``accuracy.csv`` (the headline
accuracy of every checkpoint beside chance and majority: DVC's comparison plot, a PNG in MLflow) and
``summary.json`` (DVC's metric).

A checkpoint whose folder names the families it was trained on (``trained_families.json``, written
by grpo) is also compared with the checkpoint before it on those families alone, by log-likelihood
and by generation accuracy (``metrics.json`` ``trained_families``, a section of ``table.md``).

The final checkpoint (the first of ``registry.final_checkpoints`` evaluated here that is not
significantly below a later one, ``registry.choose_final``) is logged to MLflow as a pyfunc,
registered as ``registry.model_name`` with git/DVC/evaluation tags and the ``challenger`` alias
(``tasks/evaluate/registry.py``); ``flows/promote.py`` decides about ``champion``. ``summary.json``
shows the registered checkpoint, or the last one when none is registered.
"""
from __future__ import annotations

import flows  # noqa: F401  (sets PREFECT_HOME before Prefect is imported)

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from tasks.evaluate import biomni_eval, comparison, loglik, registry

from tasks.common import schemas
from tasks.evaluate import scoring as ev
from tasks.common.errors import InputError, run_stage
from tasks.evaluate.report import (comparison_figure, comparison_frame, report_markdown, subset_baselines,
                                   tracked_metrics)
from tasks.lm.generate import generate, next_token_probs, renormalise
from tasks.lm.modeling import load_tokenizer, render_chat, trained_families
from tasks.common.params import Annotate, Verifiers, load_params
from tasks.common.prompts import load_prompts, problem_messages
from tasks.common.storage import atomic_path, read_table, write_csv, write_json, write_table
from tasks.common.tracking import stage_run
from tasks.common.answers import ANSWER_LEAD

PROBLEMS = Path("data/problems/problems.parquet")
BASELINES = Path("reports/problems/baselines.json")
OUT = Path("data/evaluate")
REPORTS = Path("reports/evaluate")


def final_candidates(params) -> list[str]:
    """The checkpoints the registry may receive, in preference order (``registry.final_checkpoints``
    that are evaluated; :func:`registry.choose_final` picks one), or none when nothing is registered."""
    e, r = params.evaluate, params.registry
    if not e.register_model or r is None:
        return []
    candidates = [c for c in r.final_checkpoints if c in e.checkpoints]
    if not candidates:
        raise InputError("params.yaml", "registry.final_checkpoints",
                         f"{r.final_checkpoints}: none is in evaluate.checkpoints {list(e.checkpoints)}")
    return candidates


def check_inputs(checkpoints: dict[str, str], generated: list[str], candidates: list[str]) -> None:
    if unknown := [c for c in generated if c not in checkpoints]:
        raise InputError("params.yaml", "evaluate.generate", f"{unknown} not in evaluate.checkpoints "
                         f"{list(checkpoints)}")
    if missing := [c for c in candidates if c not in generated]:  # registry tags carry generation metrics
        raise InputError("params.yaml", "evaluate.generate", f"{generated} lacks {missing}, checkpoints "
                         f"the registry may receive (registry.final_checkpoints)")
    for name, folder in checkpoints.items():
        if not any((Path(folder) / f).is_file() for f in ("config.json", "base_model.json")):
            raise InputError(folder, f"checkpoint {name!r}", "no model (config.json or base_model.json)")
    if not BASELINES.is_file():
        raise InputError(BASELINES, "file", "missing: run the problems stage first")


def evaluate_checkpoint(name: str, folder: str, test: pd.DataFrame, chats: list, params) -> pd.DataFrame:
    """Completions, scores and (PerturbQA) P(yes)/P(up) of one checkpoint on the test problems."""
    e, tag = params.evaluate, Verifiers.answer_tag_of(params)
    tokenizer = load_tokenizer(folder)
    # a prompt without room for the whole completion budget in generation.max_model_len is not
    # generated (counted as not_generated), rather than given a shorter budget
    room = [len(tokenizer(render_chat(tokenizer, c), add_special_tokens=False)["input_ids"])
            + e.max_new_tokens <= params.generation.max_model_len for c in chats]
    fitting = [c for c, ok in zip(chats, room) if ok]
    generated = iter([c[0] for c in generate(folder, fitting, max_new_tokens=e.max_new_tokens,
                                             temperature=0.0, seed=params.base.seed,
                                             settings=params.generation)] if fitting else [])
    completions = [next(generated) if ok else "" for ok in room]
    lengths = [len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in completions]
    scored = ev.score_completions(test, completions, lengths, tag)
    scored.insert(0, "checkpoint", name)
    scored["generated"] = room
    scored["p_positive"] = np.nan
    scored["answer_forced"] = False
    for family, candidates in ev.PERTURB.items():
        rows = np.flatnonzero(test["family"].to_numpy() == family)
        if not len(rows):
            continue
        prompts = [render_chat(tokenizer, chats[i]) for i in rows]
        prefixes, forced = ev.answer_prefixes(prompts, [completions[i] for i in rows], tag)
        said = [ANSWER_LEAD + c for c in candidates]  # as the answer follows its tag in training
        probs = next_token_probs(folder, prefixes, said, settings=params.generation)
        scored.loc[rows, "p_positive"] = [renormalise(p)[said[0]] for p in probs]
        scored.loc[rows, "answer_forced"] = forced
    return scored


def checkpoint_metrics(scored: pd.DataFrame, test: pd.DataFrame) -> dict:
    families = ev.family_metrics(scored)
    metrics = {"mean_accuracy": round(float(np.mean([f["accuracy"] for f in families.values()])), 4),
               "format_rate": round(float(scored["format_ok"].mean()), 4),
               "mean_completion_tokens": round(float(scored["completion_tokens"].mean()), 1),
               "families": families, "perturbqa": {}}
    for family in ev.PERTURB:
        mask = (scored["family"] == family).to_numpy()
        if mask.any():
            metrics["perturbqa"][family] = ev.perturb_auroc(test.loc[mask, "evidence"],
                                                            scored.loc[mask, "p_positive"])
            metrics["perturbqa"][family]["answer_forced_rate"] = round(
                float(scored.loc[mask, "answer_forced"].mean()), 4)
    return metrics


def trained_family_comparisons(checkpoints: dict[str, str], generated: list[str], headline_rows: pd.DataFrame,
                               predictions: pd.DataFrame, seed: int) -> dict[str, dict]:
    """``"later - earlier"`` -> the paired difference on the families ``later`` was trained on
    (``trained_families.json`` in its folder): log-likelihood (headline mode), and generation
    accuracy when both were generated."""
    order, out = list(checkpoints), {}
    for earlier, later in zip(order, order[1:]):
        if (families := trained_families(checkpoints[later])) is None:
            continue
        entry = {"loglik": comparison.paired_on_families(headline_rows, later, earlier, families, seed)}
        if later in generated and earlier in generated:
            entry["generation"] = comparison.paired_on_families(predictions.assign(scorable=True), later,
                                                                earlier, families, seed)
        out[f"{later} - {earlier}"] = entry
    return out


def register_final(params, metrics: dict, headline_rows: pd.DataFrame, predictions: pd.DataFrame,
                   commit: str) -> dict | None:
    """Register the final checkpoint (:func:`registry.choose_final`: the first candidate not below a
    later one on the paired headline metric, nor on format compliance where both were generated) as
    challenger, with its gate evidence (registry.gate_tags). ``headline_rows``: the scored options of
    the headline mode (``evaluate.loglik_mode``); ``predictions``: the generated replies, scored."""
    e, r = params.evaluate, params.registry
    if not (candidates := final_candidates(params)):
        return None

    def paired(later: str, earlier: str) -> dict:  # consecutive pairs are in the table already
        rows = metrics["paired"].get(f"{later} - {earlier}")
        return rows[-1] if rows else comparison.paired_mean(headline_rows, later, earlier, seed=params.base.seed)

    formats = predictions.assign(scorable=True, correct=predictions["format_ok"].astype(bool))
    generated = set(formats["checkpoint"])

    def paired_format(later: str, earlier: str) -> dict | None:
        if not {later, earlier} <= generated:
            return None
        return comparison.paired_mean(formats, later, earlier, seed=params.base.seed)

    final, passed_over = registry.choose_final(candidates, paired, paired_format)
    summary, headline = metrics["checkpoints"][final], metrics["loglik"][final]
    families = [f for f, v in headline["families"].items() if v["scorable"]]
    majority = metrics["fitted_baselines"].get("majority", {})
    gate = registry.gate_tags(headline_rows[headline_rows["checkpoint"] == final], e.loglik_mode,
                              chance=headline["mean_chance"],
                              majority=float(np.mean([majority[f]["accuracy"] for f in families
                                                      if f in majority] or [np.nan])),
                              seed=params.base.seed)
    folder = e.checkpoints[final]
    tags = {"checkpoint": final, "model_dir": folder, "git_commit": commit,
            "dvc_md5": registry.dvc_md5(folder), "profile": params.base.profile,
            **{f"eval.{k}": str(v) for k, v in summary.items() if not isinstance(v, dict)},
            "eval_summary": json.dumps({f: v["accuracy"] for f, v in summary["families"].items()}),
            **gate}
    version = registry.register(folder, r.model_name, tags)
    return {"name": r.model_name, "version": version, "checkpoint": final, "alias": registry.CHALLENGER,
            "dvc_md5": tags["dvc_md5"], "passed_over": passed_over,
            "gate": {k.removeprefix("gate."): v for k, v in gate.items() if k != "gate.correct"}}


@flow(name="evaluate")
def evaluate_flow() -> None:
    params = load_params(require=("evaluate",))
    e, seed = params.evaluate, params.base.seed
    annotate, tag = params.annotate or Annotate(), Verifiers.answer_tag_of(params)
    generated = list(e.checkpoints) if e.generate is None else e.generate
    check_inputs(e.checkpoints, generated, final_candidates(params))
    problems = read_table(PROBLEMS, schemas.Problems)
    test = ev.select_test(problems, e.max_problems_per_family, seed)
    prompts = load_prompts(annotate.prompts_dir)
    chats = [problem_messages(r, prompts, tag) for r in test.to_dict("records")]
    direct_chats = [problem_messages(r, prompts, tag, think=False) for r in test.to_dict("records")]
    labels = loglik.label_sets(problems)
    with stage_run("evaluate", params) as run:
        predictions, options, metrics = [], [], {
            "profile": params.base.profile, "max_new_tokens": e.max_new_tokens,
            "answer_tag": tag, "problems": test["family"].value_counts().sort_index().to_dict(),
            "loglik_mode": e.loglik_mode, "checkpoints": {},
            "not_generated": [c for c in e.checkpoints if c not in generated]}
        for name, folder in e.checkpoints.items():
            if name not in generated:  # direct log-likelihood only
                options.append(task(loglik.score_checkpoint, name=f"loglik-{name}", cache_policy=NO_CACHE)(
                    name, folder, test, {"direct": direct_chats}, None, labels, tag))
                continue
            scored = task(evaluate_checkpoint, name=f"evaluate-{name}", cache_policy=NO_CACHE)(
                name, folder, test, chats, params)
            scored_options = task(loglik.score_checkpoint, name=f"loglik-{name}", cache_policy=NO_CACHE)(
                name, folder, test, {"reasoned": chats, "direct": direct_chats},
                scored["completion"].tolist(), labels, tag)
            metrics["checkpoints"][name] = checkpoint_metrics(scored, test)
            metrics["checkpoints"][name].update(
                completions_at_limit=int((scored["completion_tokens"] >= e.max_new_tokens).sum()),
                not_generated_prompt_too_long=int((~scored["generated"]).sum()),
                reasoning_closed_rate=round(float(scored_options.loc[
                    scored_options["mode"] == "reasoned", "reasoning_closed"].mean()), 4))
            predictions.append(scored)
            options.append(scored_options)
        predictions, scored_options = (pd.concat(predictions, ignore_index=True),
                                       pd.concat(options, ignore_index=True))
        rows_of = {mode: scored_options[scored_options["mode"] == mode]
                   for mode in (e.loglik_mode, *[m for m in loglik.MODES if m != e.loglik_mode])}
        by_mode = {mode: {"loglik": comparison.loglik_metrics(part),
                          "paired": comparison.paired_comparisons(part, list(e.checkpoints), seed=seed)}
                   for mode, part in rows_of.items()}
        # the primary mode's numbers are the stage's headline (and the registry's gate)
        metrics.update(by_mode[e.loglik_mode], loglik_modes=by_mode,
                       fitted_baselines=comparison.fitted_baselines(problems))

        biomni = biomni_eval.score_table(biomni_eval.to_biomni(predictions))
        for name, part in biomni.groupby("checkpoint"):
            metrics["checkpoints"][name]["biomni"] = biomni_eval.summary(part)
        metrics["baselines"] = subset_baselines(problems, test)
        metrics["baselines_full_test"] = json.loads(BASELINES.read_text())
        headline_rows = rows_of[e.loglik_mode]
        metrics["trained_families"] = trained_family_comparisons(
            e.checkpoints, generated, headline_rows, predictions, seed)
        metrics["registered"] = register_final(params, metrics, headline_rows, predictions, run.commit)

        with atomic_path(OUT) as out:
            write_table(predictions[[c for c in schemas.EvalPredictions.to_schema().columns]],
                        out / "predictions.parquet", schemas.EvalPredictions)
            biomni.to_parquet(out / "biomni_predictions.parquet", index=False)
            scored_options.to_parquet(out / "loglik.parquet", index=False)
        table = report_markdown(metrics, "\n".join(
            comparison.loglik_markdown(m["loglik"], m["paired"], metrics["fitted_baselines"], mode)
            for mode, m in by_mode.items()))
        frame = comparison_frame(metrics)
        write_csv(frame, REPORTS / "accuracy.csv")
        with atomic_path(REPORTS / "table.md") as tmp:
            tmp.write_text(table)
        write_json(metrics, REPORTS / "metrics.json")
        if metrics["registered"]:
            headline = metrics["registered"]["checkpoint"]
        else:
            headline = list(e.checkpoints)[-1]
        summary = {"accuracy": metrics["loglik"][headline]["mean_accuracy"],
                   "chance": metrics["loglik"][headline]["mean_chance"],
                   "format": metrics["checkpoints"].get(headline, {}).get("format_rate")}
        write_json(summary, REPORTS / "summary.json")

        run.log_metrics(tracked_metrics(metrics))
        run.log_artifact(REPORTS / "metrics.json", "evaluate")
        run.log_text(table, "evaluate/table.md")
        run.log_table(predictions.drop(columns=["completion"]), "evaluate_predictions", rows=50)
        fig = comparison_figure(frame)
        run.log_figure(fig, "evaluate_accuracy.png")
        plt.close(fig)
        run.publish(summary, table)
        print(table)


if __name__ == "__main__":
    run_stage(evaluate_flow)
