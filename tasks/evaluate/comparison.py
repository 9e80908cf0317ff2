"""Checkpoints compared the way small models are judged: log-likelihood accuracy with intervals,
paired tests between consecutive stages, and the baselines a model must beat.

* :func:`loglik_metrics`: per checkpoint, per family, accuracy and length-normalised accuracy of
  log-likelihood option scoring (:mod:`tasks.evaluate.loglik`) with Wilson 95% intervals, the
  chance level of the options, and the mean over the families that have scorable problems.
* :func:`paired_comparisons`: a paired bootstrap of each checkpoint against the one before it in
  ``evaluate.checkpoints`` order (base -> pretrain -> sft -> grpo), per family and for the mean
  (:func:`tasks.evaluate.stats.paired_bootstrap`).
* :func:`fitted_baselines`: chance, majority and the non-LM models fitted on the train split
  (:mod:`tasks.evaluate.baselines`), on the same problems.
* :func:`loglik_markdown`: the section of ``table.md`` that shows all of it.

>>> r = pd.DataFrame({"checkpoint": ["a"] * 2 + ["b"] * 2, "problem_id": ["p", "q"] * 2,
...                   "family": ["f"] * 4, "scorable": [True] * 4, "n_options": [2] * 4,
...                   "correct": [False, False, True, True], "correct_norm": [False, True, True, True]})
>>> m = loglik_metrics(r)
>>> m["b"]["mean_accuracy"], m["b"]["families"]["f"]["low"]
(1.0, 0.3424)
>>> paired_comparisons(r, ["a", "b"], n_resamples=200)["b - a"][0]["diff"]
1.0
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tasks.common.answers import LETTER_ABOVE
from tasks.evaluate import baselines as fitted
from tasks.evaluate.loglik import loglik_summary
from tasks.evaluate.stats import MEAN, paired_bootstrap


def _r(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else round(float(x), 4)


def loglik_metrics(results: pd.DataFrame) -> dict[str, dict]:
    """Checkpoint -> {mean_accuracy, mean_accuracy_norm, mean_chance, families: {family: ...}}."""
    out = {}
    for name, part in results.groupby("checkpoint", sort=False):
        summary = loglik_summary(part).rename(columns={"acc_low": "low", "acc_high": "high"})
        families = {row.family: {k: _r(v) if isinstance(v, float) else int(v)
                                 for k, v in row._asdict().items() if k not in ("Index", "family")}
                    for row in summary.itertuples()}
        scored = summary[summary["scorable"] > 0]
        out[name] = {"mean_accuracy": _r(scored["acc"].mean()),
                     "mean_accuracy_norm": _r(scored["acc_norm"].mean()),
                     "mean_chance": _r(scored["chance"].mean()), "families": families}
    return out


def paired_comparisons(results: pd.DataFrame, order: Sequence[str], n_resamples: int = 10_000,
                       seed: int = 0) -> dict[str, list[dict]]:
    """``"later - earlier"`` -> per-family rows (diff, low, high, p_value) and the mean over families."""
    scorable = results[results["scorable"].astype(bool)]
    present = [c for c in order if c in set(scorable["checkpoint"])]
    out = {}
    for earlier, later in zip(present, present[1:]):
        a = scorable[scorable["checkpoint"] == later].sort_values("problem_id")
        b = scorable[scorable["checkpoint"] == earlier].sort_values("problem_id")
        if list(a["problem_id"]) != list(b["problem_id"]):
            raise ValueError(f"checkpoints {later!r} and {earlier!r} were scored on different problems")
        table = paired_bootstrap(a["correct"].astype(bool).to_numpy(), b["correct"].astype(bool).to_numpy(),
                                 a["family"].to_numpy(), n_resamples=n_resamples, seed=seed)
        out[f"{later} - {earlier}"] = [{k: _r(v) if isinstance(v, float) else v for k, v in row.items()}
                                       for row in table.to_dict("records")]
    return out


def paired_mean(results: pd.DataFrame, later: str, earlier: str, seed: int = 0) -> dict:
    """The mean-over-families row (diff, low, high, p_value) of the paired bootstrap later - earlier."""
    return paired_comparisons(results, [earlier, later], seed=seed)[f"{later} - {earlier}"][-1]


def paired_on_families(results: pd.DataFrame, later: str, earlier: str, families: Sequence[str],
                       seed: int = 0) -> dict:
    """The paired bootstrap later - earlier on ``families`` only (those a stage trained on, say):
    the mean-over-families row, with ``families`` listed; scorable problems only.

    >>> r = pd.DataFrame({"checkpoint": ["a"] * 3 + ["b"] * 3, "problem_id": ["p", "q", "s"] * 2,
    ...                   "family": ["f", "f", "g"] * 2, "scorable": [True] * 6,
    ...                   "correct": [False, False, False, True, True, False]})
    >>> row = paired_on_families(r, "b", "a", ["f"])
    >>> row["diff"], row["n"], row["families"]
    (1.0, 2, ['f'])
    """
    part = results[results["family"].isin(families)]
    return {**paired_mean(part, later, earlier, seed=seed), "families": sorted(set(part["family"]))}


def fitted_baselines(problems: pd.DataFrame) -> dict[str, dict[str, dict]]:
    """Baseline -> family -> {accuracy, low, high, scored}: fitted on train, scored on test."""
    table = fitted.baseline_table(problems)
    out: dict[str, dict[str, dict]] = {}
    for row in table.to_dict("records"):
        out.setdefault(row["baseline"], {})[row["family"]] = {
            "accuracy": _r(row["accuracy"]), "low": _r(row["low"]), "high": _r(row["high"]),
            "scored": int(row["scored"])}
    return out


def _interval(entry: dict | None) -> str:
    if not entry or entry.get("acc", entry.get("accuracy")) is None:
        return "–"
    acc = entry.get("acc", entry.get("accuracy"))
    return f"{acc:.3f} [{entry['low']:.2f}, {entry['high']:.2f}]"


MODE_TEXT = {
    "reasoned": "Each option is scored by the log-probability of `option</answer>` after the prompt, "
                "the checkpoint's own greedy reasoning (`<think>...</think>`, closed for it when it "
                "did not close it) and `<answer>`",
    "direct": "Each option is scored by the log-probability of `option</answer>` right after the "
              "prompt and `<answer>` (no reasoning, lm-evaluation-harness style)",
}


def loglik_markdown(loglik: dict[str, dict], paired: dict[str, list[dict]],
                    baselines: dict[str, dict[str, dict]], mode: str = "direct") -> str:
    """Accuracy [Wilson 95%] per family and checkpoint beside the baselines, then the paired tests."""
    families = sorted({f for m in loglik.values() for f, e in m["families"].items() if e["scorable"]})
    names = list(loglik) + [f"{b} (baseline)" for b in baselines]
    lines = ["| family | n | chance | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 3)]
    for f in families:
        first = next(iter(loglik.values()))["families"][f]
        cells = [_interval(m["families"].get(f)) for m in loglik.values()]
        cells += [_interval(b.get(f)) for b in baselines.values()]
        lines.append(f"| {f} | {first['scorable']} | {first['chance']:.3f} | " + " | ".join(cells) + " |")
    means = [f"{m['mean_accuracy']:.3f}" if m["mean_accuracy"] is not None else "–" for m in loglik.values()]
    chance = next(iter(loglik.values()))["mean_chance"]
    lines.append(f"| {MEAN} | | {chance:.3f} | " + " | ".join(means)
                 + " |" * (len(baselines) + 1))
    out = [f"## Log-likelihood accuracy per family, {mode} (test split), 95% Wilson interval", "",
           f"{MODE_TEXT[mode]}; the prediction is the most likely option. Where an option is longer "
           f"than {LETTER_ABOVE} characters (a protein, a disease with its OMIM id) the options are "
           "scored as their letters, the form the model is asked to answer in. Problems with open answers "
           "(gene sets, JSON, numbers) are counted in metrics.json as not scorable.", ""] + lines
    if paired:
        rows = ["| comparison | family | diff | 95% interval | p |", "|---|---|---|---|---|"]
        for name, entries in paired.items():
            for e in entries:
                label = f"**{e['family']}**" if e["family"] == MEAN else e["family"]
                rows.append(f"| {name} | {label} | {e['diff']:+.3f} | [{e['low']:+.3f}, {e['high']:+.3f}] "
                            f"| {e['p_value']:.3f} |")
        out += ["", f"## Paired bootstrap between consecutive checkpoints (log-likelihood accuracy, {mode})",
                ""] + rows
    return "\n".join(out) + "\n"
