"""Does a checkpoint read which disease its patient's phenotypes name? rare_disease, options by name.

    PYTHONPATH=$PWD python bench/name_overlap.py [--models models/pretrain models/sft] [--split test]

rare_disease options are disease names with an OMIM id, too long to copy, so evaluate scores them
as their letters (``tasks.common.answers.by_letter``): choosing one takes matching the prompt's
phenotypes against the options and then writing the matched option's letter. Many diseases are
named after their main phenotype (``Achromatopsia 3`` for a patient with ``Achromatopsia``), so the
prompt alone points to the answer: evaluate's ``phenotype_name_overlap`` baseline (the option whose
name shares the most words with the phenotypes) reads it. This scores each option by its *name*
instead (evaluate's direct context, then `` Name (OMIM:123)</answer>``, and the name without its
id), which needs no letter: a model that has learnt that a name in the prompt makes the same name
likely in the answer scores above chance here even where it cannot find the letter. Prints one
JSON line per model: accuracy with its 95% Wilson interval for each form, summed and
length-normalised log-probability, beside the baseline on the same problems.
"""
from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pandas as pd

from tasks.common.params import Verifiers, load_params
from tasks.common.prompts import load_prompts, problem_messages
from tasks.evaluate.baselines import correctness, options_of, phenotype_name_overlap
from tasks.evaluate.loglik import contexts, score_options
from tasks.evaluate.stats import accuracy_ci
from tasks.lm.modeling import load_model, load_tokenizer

FORMS = {"name_and_id": lambda c: c, "name": lambda c: re.sub(r" \(OMIM:\d+\)$", "", c)}


def accuracy(correct: list[bool]) -> dict:
    return {k: round(v, 3) for k, v in accuracy_ci(correct).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["models/pretrain", "models/sft"])
    parser.add_argument("--problems", default="data/problems/problems.parquet")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()

    tag = Verifiers.answer_tag_of(load_params())
    problems = pd.read_parquet(args.problems)
    rows = problems[(problems["family"] == "rare_disease") & (problems["split"] == args.split)]
    rows = rows.sort_values("id").reset_index(drop=True)
    gold = [list(r.choices).index(r.answer) for r in rows.itertuples()]
    train = problems[problems["split"] == "train"]
    right = correctness(rows, phenotype_name_overlap(train, rows), options_of(train, rows))
    print(json.dumps({"baseline": "phenotype_name_overlap", "split": args.split,
                      **accuracy(list(right.astype(bool)))}))
    prompts = load_prompts(None)
    chats = [problem_messages(r, prompts, tag, think=False) for r in rows.to_dict("records")]
    for folder in args.models:
        tokenizer = load_tokenizer(folder)
        model = load_model(folder, tokenizer).eval()
        context = contexts(tokenizer, chats, tag)
        out = {"model": folder, "split": args.split}
        for form, written in FORMS.items():
            options = [[written(c) for c in r.choices] for r in rows.itertuples()]
            scores = score_options(model, tokenizer, context, options, tag=tag)
            summed = [int(np.argmax([s.logprob for s in sc])) for sc in scores]
            norm = [int(np.argmax([s.logprob / len(o) for s, o in zip(sc, opts)]))
                    for sc, opts in zip(scores, options)]
            out[form] = {"summed": accuracy([p == g for p, g in zip(summed, gold)]),
                         "normalised": accuracy([p == g for p, g in zip(norm, gold)])}
        print(json.dumps(out))


if __name__ == "__main__":
    main()
