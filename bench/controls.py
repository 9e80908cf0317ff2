"""Controls: does the checkpoint read its input? Blank the omics, or drop the question entirely.

    PYTHONPATH=$PWD python bench/controls.py [--model models/sft] [--mode reasoned|direct]

On the closed-answer test problems whose prompt carries omics (``<cell>``, ``<dna>``,
``<protein>`` outside the option lines), three conditions are scored by option log-likelihood
(:func:`tasks.evaluate.loglik.score_modes`, ``--mode`` as ``evaluate.loglik_mode``; reasoned mode
generates the checkpoint's own reasoning for each condition):

* ``as_is``: the problems as evaluate scores them;
* ``blank_omics``: every omics span of the question emptied (``<cell></cell>``), options kept, so
  the score must fall to chance if the model reads the data rather than the wording;
* ``prior_only``: the question removed altogether (only the answer-format line is left), so the
  options are ranked by the model's prior alone;
* ``fewest_tokens``: no model, the option with the fewest tokens: what a scorer that only
  favours short options (a summed log-likelihood does) would get. Where the checkpoint's picks
  follow it, its accuracy says more about the options' lengths than about the data.

Prints one JSON line: per condition the mean accuracy over families with its bootstrap interval
and the mean chance, and per family accuracy; plus the paired difference as_is - blank_omics.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from tasks.common.prompts import OMICS_SPAN, OPTION_LINE, PROMPT_STYLES


def blank_omics(prompt: str) -> str:
    """The prompt with each omics span of the question emptied; option lines stay as they are.

    >>> blank_omics("Which?\\n<dna>ACGT</dna>\\nA. <protein>MK</protein>")
    'Which?\\n<dna></dna>\\nA. <protein>MK</protein>'
    """
    return "\n".join(line if OPTION_LINE.match(line) else OMICS_SPAN.sub(r"<\1></\1>", line)
                     for line in prompt.split("\n"))


def has_omics(prompt: str) -> bool:
    return blank_omics(prompt) != prompt


def options_only(prompt: str) -> str:
    """The option lines alone (multiple choice), or nothing: the question is gone.

    >>> options_only("Which gene?\\nA. TP53\\nB. BRCA1")
    'A. TP53\\nB. BRCA1'
    """
    return "\n".join(line for line in prompt.split("\n") if OPTION_LINE.match(line))


def summarise(results: pd.DataFrame, seed: int) -> dict:
    from tasks.evaluate.loglik import loglik_summary
    from tasks.evaluate.stats import macro_accuracy

    scored = results[results["scorable"].astype(bool)].sort_values("problem_id")
    mean = macro_accuracy(scored["correct"].astype(bool).to_numpy(), scored["family"].to_numpy(), seed=seed)
    per_family = loglik_summary(results)
    return {"mean_accuracy": round(mean["accuracy"], 4), "low": round(mean["low"], 4),
            "high": round(mean["high"], 4),
            "mean_chance": round(float(per_family["chance"].mean()), 4),
            "families": {r.family: {"n": int(r.scorable), "acc": round(float(r.acc), 4),
                                    "chance": round(float(r.chance), 4)}
                         for r in per_family.itertuples() if r.scorable}}


def main() -> None:
    from tasks.common.params import Verifiers, load_params
    from tasks.common.prompts import load_prompts, problem_messages
    from tasks.evaluate.loglik import label_sets, scorable, score_modes
    from tasks.evaluate.stats import paired_bootstrap
    from tasks.lm.generate import generate
    from tasks.lm.modeling import load_model, load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/sft")
    parser.add_argument("--problems", default="data/problems/problems.parquet")
    parser.add_argument("--mode", choices=PROMPT_STYLES, default=None,
                        help="default: evaluate.loglik_mode of params.yaml")
    args = parser.parse_args()

    params = load_params()
    tag, seed = Verifiers.answer_tag_of(params), params.base.seed
    mode = args.mode or params.evaluate.loglik_mode
    problems = pd.read_parquet(args.problems)
    labels = label_sets(problems)
    test = scorable(problems, labels)
    test = test[test["prompt"].map(has_omics)].reset_index(drop=True)
    prompts = load_prompts(params.annotate.prompts_dir if params.annotate else None)
    conditions = {"as_is": test["prompt"], "blank_omics": test["prompt"].map(blank_omics),
                  "prior_only": test["prompt"].map(options_only)}
    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, tokenizer).eval()
    out, rows = {"model": args.model, "mode": mode, "problems": len(test)}, {}
    for name, prompt in conditions.items():
        variant = test.assign(prompt=prompt)
        chats = {"reasoned": [problem_messages(r, prompts, tag) for r in variant.to_dict("records")],
                 "direct": [problem_messages(r, prompts, tag, think=False) for r in variant.to_dict("records")]}
        completions = [""] * len(variant)
        if mode == "reasoned":
            completions = [c[0] for c in generate(args.model, chats["reasoned"],
                                                  max_new_tokens=params.evaluate.max_new_tokens,
                                                  temperature=0.0, seed=seed,
                                                  settings=params.generation)]
        rows[name] = score_modes(model, tokenizer, variant, chats, completions, labels, tag, modes=(mode,))
        out[name] = summarise(rows[name], seed)
    shortest = rows["as_is"].copy()
    ok = shortest["scorable"].astype(bool)
    shortest.loc[ok, "correct"] = [int(np.argmin(n)) == g for n, g in
                                   zip(shortest.loc[ok, "n_tokens"], shortest.loc[ok, "gold"])]
    out["fewest_tokens"] = summarise(shortest, seed)
    a, b = (rows[c][rows[c]["scorable"].astype(bool)].sort_values("problem_id") for c in ("as_is", "blank_omics"))
    diff = paired_bootstrap(a["correct"].astype(bool).to_numpy(), b["correct"].astype(bool).to_numpy(),
                            a["family"].to_numpy(), seed=seed).iloc[-1]
    out["as_is_minus_blank"] = {k: round(float(diff[k]), 4) for k in ("diff", "low", "high", "p_value")}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
