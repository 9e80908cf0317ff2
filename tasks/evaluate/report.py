"""The evaluation table: checkpoints beside the problems stage's baselines, as markdown and plots.

Baselines are computed with the problems stage's own functions on exactly the problems evaluated
(``family_baselines`` on the train split + the evaluated test problems; the neighbour score of
each PerturbQA pair from its evidence), so every column of the table scores the same questions;
the full-test-split values of ``reports/problems/baselines.json`` go to metrics.json beside them.

>>> table = markdown_table(["a"], {"x": {"a": 0.5}}, {"n": {"a": 4}}, "family")
>>> table.splitlines()[2]
'| a | 0.500 | 4 |'
"""
from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tasks.evaluate.scoring import PERTURB, perturb_auroc
from tasks.evaluate.stats import MEAN
from tasks.problems.baselines import family_baselines


def subset_baselines(problems: pd.DataFrame, test: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Majority and random accuracy per family on the evaluated test problems, and the PerturbQA
    neighbour predictor's per-gene AUROC on the evaluated pairs."""
    pool = pd.concat([problems[problems["split"] == "train"], test])
    per_type = family_baselines(pool)
    majority, rand = {}, {}
    for family, kinds in per_type.items():
        n = sum(k["test_n"] for k in kinds.values())
        majority[family] = round(sum(k["majority_accuracy"] * k["test_n"] for k in kinds.values()) / n, 4)
        rand[family] = round(sum(k["random_accuracy"] * k["test_n"] for k in kinds.values()) / n, 4)
    neighbour = {}
    for family in PERTURB:
        part = test[test["family"] == family]
        if len(part):
            scores = [json.loads(e)["neighbour_score"] for e in part["evidence"]]
            neighbour[family] = perturb_auroc(part["evidence"], scores)["auroc"]
    return {"majority": majority, "random": rand, "neighbour_auroc": neighbour}


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return str(value)
    return f"{value:.3f}"


def markdown_table(rows: list[str], columns: Mapping[str, Mapping[str, float]],
                   extra: Mapping[str, Mapping[str, float]], first: str) -> str:
    """Rows x (checkpoint columns, then extra columns such as baselines or n)."""
    names = list(columns) + list(extra)
    lines = [f"| {first} | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for row in rows:
        cells = [_cell(columns[c].get(row)) for c in columns] + [_cell(extra[c].get(row)) for c in extra]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def trained_section(trained: Mapping[str, Mapping[str, dict]]) -> list[str]:
    """Lines of table.md: each checkpoint against its start on the families it was trained on.

    >>> row = {"diff": 0.05, "low": -0.01, "high": 0.11, "p_value": 0.12, "n": 80, "families": ["a", "b"]}
    >>> trained_section({"grpo - sft": {"loglik": row}})[4]
    '| grpo - sft | log-likelihood (headline) | a, b | 80 | +0.050 | [-0.010, +0.110] | 0.120 |'
    """
    if not trained:
        return []
    names = {"loglik": "log-likelihood (headline)", "generation": "generation accuracy"}
    out = ["## On the families each checkpoint was trained on (paired bootstrap, mean over those families)",
           "", "| comparison | measure | families | n | diff | 95% interval | p |", "|---|---|---|---|---|---|---|"]
    for pair, entry in trained.items():
        for measure, r in entry.items():
            out.append(f"| {pair} | {names[measure]} | {', '.join(r['families'])} | {r['n']} | {r['diff']:+.3f} "
                       f"| [{r['low']:+.3f}, {r['high']:+.3f}] | {r['p_value']:.3f} |")
    return out + [""]


def report_markdown(metrics: dict, loglik_section: str = "") -> str:
    """The whole table.md: log-likelihood accuracy (the primary measure, when given), then generation
    accuracy, PerturbQA AUROC, format/length, macro-F1, Biomni-Eval1 rules."""
    ckpts, base = metrics["checkpoints"], metrics["baselines"]
    families = sorted(metrics["problems"])
    acc = {c: {f: m["families"][f]["accuracy"] for f in families} | {MEAN: m["mean_accuracy"]}
           for c, m in ckpts.items()}
    mean = {k: round(float(np.mean([base[k][f] for f in families if f in base[k]])), 4)
            for k in ("majority", "random")}
    extra = {"majority": base["majority"] | {MEAN: mean["majority"]},
             "random": base["random"] | {MEAN: mean["random"]},
             "n": metrics["problems"]}
    out = ["# Evaluation", "", f"Profile `{metrics['profile']}`; greedy decoding, at most "
           f"{metrics['max_new_tokens']} new tokens; answers read from the `<{metrics['answer_tag']}>` tag.",
           "", loglik_section, *trained_section(metrics.get("trained_families") or {}),
           "## Generation accuracy per family (test split, capped)", ""]
    if metrics.get("not_generated"):
        out += [f"Not generated (`evaluate.generate`; log-likelihood above only): "
                f"{', '.join(metrics['not_generated'])}.", ""]
    out += [markdown_table(families + [MEAN], acc, extra, "family")]
    perturb = [f for f in PERTURB if f in families]
    if perturb:
        auroc = {c: {f: m["perturbqa"].get(f, {}).get("auroc") for f in perturb} for c, m in ckpts.items()}
        out += ["", "## PerturbQA: per-gene AUROC of P(yes) / P(up) after the answer tag, mean over cell lines",
                "", markdown_table(perturb, auroc, {"neighbour predictor": base["neighbour_auroc"],
                                                     "random": {f: 0.5 for f in perturb}}, "task")]
    shape = {c: {"format compliance": m["format_rate"], "mean completion tokens": m["mean_completion_tokens"]}
             for c, m in ckpts.items()}
    out += ["", "## Format and length", "",
            markdown_table(["format compliance", "mean completion tokens"], shape, {}, "measure")]
    named_rows = [f for f in families
                  if any("names_an_option" in m["families"].get(f, {}) for m in ckpts.values())]
    if named_rows:
        named = {c: {f: m["families"].get(f, {}).get("names_an_option") for f in named_rows}
                 for c, m in ckpts.items()}
        out += ["", "## Multiple-choice answers that name one of the options (generation; a letter counts "
                "as the option it names)", "", markdown_table(named_rows, named, {}, "family")]
    f1_rows = [f for f in families if any("macro_f1" in m["families"][f] for m in ckpts.values())]
    if f1_rows:
        f1 = {c: {f: m["families"][f].get("macro_f1") for f in f1_rows} for c, m in ckpts.items()}
        out += ["", "## Macro-F1 of label answers", "", markdown_table(f1_rows, f1, {}, "family")]
    tasks = sorted({t for m in ckpts.values() for t in m.get("biomni", {})})
    if tasks:
        bio = {c: {t: m["biomni"][t]["reward"] for t in tasks if t in m["biomni"]} for c, m in ckpts.items()}
        out += ["", "## Biomni-Eval1 rules (our rare_disease / causal_gene answers in its form)", "",
                markdown_table(tasks, bio, {}, "task")]
    return "\n".join(out) + "\n"


def comparison_frame(metrics: dict) -> pd.DataFrame:
    """The headline log-likelihood accuracy of every checkpoint, with the fitted chance and majority
    baselines, per family and as the mean over families: one long table (checkpoint as a column),
    the evaluate stage's DVC plot and MLflow chart.

    >>> fam = {"acc": 0.5, "low": 0.3, "high": 0.7}
    >>> m = {"loglik": {"sft": {"families": {"a": fam}, "mean_accuracy": 0.5, "mean_chance": 0.25}},
    ...      "fitted_baselines": {"majority": {"a": {"accuracy": 0.4, "low": 0.2, "high": 0.6}}}}
    >>> comparison_frame(m)[["checkpoint", "family", "accuracy"]].values.tolist()
    [['sft', 'a', 0.5], ['sft', 'mean', 0.5], ['majority', 'a', 0.4]]
    """
    rows = []
    for name, result in metrics["loglik"].items():
        rows += [{"checkpoint": name, "family": f, "accuracy": r["acc"], "low": r["low"], "high": r["high"]}
                 for f, r in sorted(result["families"].items())]
        rows.append({"checkpoint": name, "family": "mean", "accuracy": result["mean_accuracy"]})
    for name in ("chance", "majority"):
        rows += [{"checkpoint": name, "family": f, "accuracy": r["accuracy"], "low": r["low"], "high": r["high"]}
                 for f, r in sorted(metrics["fitted_baselines"].get(name, {}).items())]
    return pd.DataFrame(rows, columns=["checkpoint", "family", "accuracy", "low", "high"])


def comparison_figure(frame: pd.DataFrame):  # noqa: ANN201 (a matplotlib Figure)
    """Grouped bars of :func:`comparison_frame`, one group per family, 95% intervals as whiskers."""
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(frame["family"]))
    names = list(dict.fromkeys(frame["checkpoint"]))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(8, len(families) * 1.2), 4.5))
    for i, name in enumerate(names):
        part = frame[frame["checkpoint"] == name].set_index("family").reindex(families)
        x = np.arange(len(families)) + i * width
        err = np.vstack([part["accuracy"] - part["low"], part["high"] - part["accuracy"]])
        ax.bar(x, part["accuracy"].astype(float), width, label=name,
               yerr=np.nan_to_num(err.astype(float)), capsize=2, error_kw={"lw": 0.6})
    ax.set_xticks(np.arange(len(families)) + 0.4 - width / 2, families, rotation=30, ha="right")
    ax.set(ylabel="accuracy (option log-likelihood)", ylim=(0, 1),
           title="test accuracy per family and checkpoint, 95% intervals")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    return fig


GENERATION_KEYS = ("mean_accuracy", "format_rate", "mean_completion_tokens", "completions_at_limit",
                   "reasoning_closed_rate")


def tracked_metrics(metrics: Mapping) -> dict:
    """What evaluate logs as MLflow metrics: the headline log-likelihood accuracy per checkpoint and
    family with chance, each paired difference on the mean, and the generation columns. The ~800
    numbers of metrics.json (both modes, intervals, every paired family, Biomni scores) would bury
    these in the run's metrics tab; the file itself is logged as an artifact.

    >>> m = {"loglik": {"sft": {"mean_accuracy": 0.4, "mean_chance": 0.3, "mean_accuracy_norm": 0.5,
    ...      "families": {"cell_type": {"acc": 0.37, "low": 0.26, "scorable": 60}}}},
    ...      "paired": {"sft - pretrain": [{"family": "mean over families", "diff": 0.08, "low": 0.02,
    ...      "high": 0.14, "p_value": 0.01}]},
    ...      "checkpoints": {"sft": {"format_rate": 0.66, "families": {"cell_type": {"accuracy": 0.06,
    ...      "format_rate": 0.38, "n": 95}}}}}
    >>> sorted(tracked_metrics(m)["loglik"]["sft"])
    ['cell_type', 'mean_accuracy', 'mean_chance']
    >>> tracked_metrics(m)["paired"]["sft - pretrain"]
    {'diff': 0.08, 'low': 0.02, 'high': 0.14}
    >>> tracked_metrics(m)["generation"]["sft"]
    {'format_rate': 0.66, 'cell_type': {'accuracy': 0.06, 'format_rate': 0.38}}
    """
    loglik = {c: {"mean_accuracy": v["mean_accuracy"], "mean_chance": v["mean_chance"],
                  **{f: fam["acc"] for f, fam in v["families"].items() if fam["scorable"]}}
              for c, v in metrics["loglik"].items()}
    paired = {pair: {k: row[k] for k in ("diff", "low", "high")}
              for pair, rows in metrics["paired"].items()
              for row in rows if row["family"] == MEAN}
    generation = {c: {**{k: v[k] for k in GENERATION_KEYS if k in v},
                      **{f: {"accuracy": fam["accuracy"], "format_rate": fam["format_rate"]}
                         for f, fam in v["families"].items()}}
                  for c, v in metrics["checkpoints"].items()}
    trained = {pair: {measure: {k: row[k] for k in ("diff", "low", "high")} for measure, row in entry.items()}
               for pair, entry in (metrics.get("trained_families") or {}).items()}
    return {"loglik": loglik, "paired": paired, "generation": generation, "trained_families": trained}
