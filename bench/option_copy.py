"""Can a checkpoint copy an option's text into its answer? Greedy decoding, checked teacher-forced.

    PYTHONPATH=$PWD python bench/option_copy.py [--model models/sft] [--families cell_type ...]
        [--split test] [--per-family 25]

For multiple-choice problems whose options are written out (not letters), under evaluate's direct
context (the answer-only prompt, then ``<answer>``; ``tasks.evaluate.loglik.contexts``), each
option's continuation (``loglik.continuation``: the option after a space, then ``</answer>``) is
run through the model once. Greedy decoding, given the option's first token, writes the rest of it
exactly when every later token is the argmax after the tokens before it, so one forward pass per
option answers:

* ``copies_any``: the share of options the model finishes once their first token is given;
* ``copies_gold``: the same for the right option;
* ``greedy_names_option``: the share of problems whose unforced greedy answer is one of the options
  (its first token starts an option the model then finishes).

A family whose names the model has memorised (cell types, protein families) is finished from
memory; a family whose test names it has never seen (causal_gene's genes, tf_binding's factors) is
finished only by copying from the prompt. Prints one JSON line per family.

The sft model of commit 64f336b, 25 test problems a family (copies_any / copies_gold /
greedy_names_option): causal_gene 0.00 / 0.00 / 0.00, tf_binding 0.00 / 0.00 / 0.00, cell_type
0.31 / 0.56 / 0.68, protein_family 0.74 / 0.92 / 0.56.
"""
from __future__ import annotations

import argparse
import json

import pandas as pd
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/sft")
    parser.add_argument("--families", nargs="+", default=["cell_type", "protein_family", "causal_gene",
                                                          "tf_binding"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--per-family", type=int, default=25)
    a = parser.parse_args()

    from tasks.common.answers import by_letter
    from tasks.common.params import Verifiers, load_params
    from tasks.common.prompts import load_prompts, problem_messages
    from tasks.evaluate.loglik import contexts, continuation
    from tasks.lm.modeling import load_model, load_tokenizer

    tag = Verifiers.answer_tag_of(load_params())
    tokenizer = load_tokenizer(a.model)
    model = load_model(a.model, tokenizer).eval()
    prompts = load_prompts(None)
    problems = pd.read_parquet("data/problems/problems.parquet")
    rows = problems[problems["family"].isin(a.families) & (problems["split"] == a.split)
                    & (problems["answer_type"] == "multiple_choice")].groupby("family").head(a.per_family)
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    out: dict[str, dict[str, list[bool]]] = {}
    for r in rows.to_dict("records"):
        choices = [str(c) for c in r["choices"]]
        if by_letter(r["answer_type"], choices):
            continue  # options answered by letter: nothing to copy
        context = ids(contexts(tokenizer, [problem_messages(r | {"choices": choices}, prompts, tag,
                                                            think=False)], tag)[0])
        first_choice, finished = None, {}
        for option in choices:
            cont = ids(continuation(option, tag))
            with torch.no_grad():
                logits = model(torch.tensor([context + cont])).logits[0]
            greedy = logits[len(context) - 1: len(context) + len(cont) - 1].argmax(-1).tolist()
            finished[option] = greedy[1:] == cont[1:]
            if greedy[0] == cont[0] and finished[option]:
                first_choice = option
        stats = out.setdefault(r["family"], {"copies_any": [], "copies_gold": [], "greedy_names_option": []})
        stats["copies_any"] += list(finished.values())
        stats["copies_gold"].append(finished[r["answer"]])
        stats["greedy_names_option"].append(first_choice is not None)
    for family, stats in sorted(out.items()):
        print(json.dumps({"model": a.model, "family": family, "problems": len(stats["copies_gold"])}
                         | {k: round(sum(v) / len(v), 3) for k, v in stats.items()}))


if __name__ == "__main__":
    main()
