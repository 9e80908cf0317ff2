"""Offline multi-trace GRPO step speed, side by side in one run: the stage's loss from the logits of
the trace positions only (``sft.trained_positions`` of the completion mask: the LM head, the softmax over the
vocabulary and the KL skip the prompts) against the same loss from every position's logits.

    PYTHONPATH=$PWD python bench/grpo_offline_speed.py [--init models/sft] [--steps 12] [--rounds 2]

Each round trains both variants from the same start for ``--steps`` steps of the default profile's
``grpo.offline`` settings on the trace groups of annotate's traces, chosen as the grpo stage chooses
them (train problems whose prompt fits ``grpo.max_prompt_tokens``, ``grpo.problems_per_family`` a
family), and prints seconds a step, the ratio, and the training losses (they must agree: the same
loss, computed differently). Rounds alternate the order, so a noisy machine does not favour one.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

from bench.sft_speed import every_position


def run(init: str, data: str, steps: int, all_logits: bool) -> dict:
    from tasks.common.params import load_params
    from tasks.train import grpo, multitrace

    p = load_params(require=("grpo",)).grpo
    p = p.model_copy(update={"offline": p.offline.model_copy(update={"max_steps": steps})})
    with tempfile.TemporaryDirectory() as tmp:
        trainer, _ = grpo.run_offline(p, {"offline_data": data, "seed": 0, "gpus": 0}, Path(init), Path(tmp))
        trainer.args.save_strategy, trainer.args.disable_tqdm = "no", True
        patch = mock.patch.object(multitrace, "trained_positions", every_position) if all_logits \
            else nullcontext()
        start = time.perf_counter()
        with patch:
            result = trainer.train()
        seconds = time.perf_counter() - start
    return {"s_per_step": round(seconds / steps, 3), "train_loss": round(result.training_loss, 6)}


def trace_groups(init: str, out: Path) -> Path:
    """The offline table the grpo stage would train on, written to ``out``."""
    from tasks.common import schemas
    from tasks.common.params import load_params
    from tasks.common.prompts import load_prompts
    from tasks.common.storage import read_table
    from tasks.lm.modeling import load_tokenizer
    from tasks.train.grpo_data import rollout_prompts
    from tasks.train.multitrace import offline_groups

    params = load_params(require=("grpo",))
    p, tag = params.grpo, params.verifiers.answer_tag
    prompts = load_prompts(params.annotate.prompts_dir if params.annotate else None)
    problems = read_table(Path("data/problems/problems.parquet"), schemas.Problems)
    traces = read_table(Path("data/annotate/traces.parquet"), schemas.Traces)
    eligible, _ = rollout_prompts(problems, prompts, tag, load_tokenizer(init), p.exclude_families,
                                  p.max_prompt_tokens)
    offline_groups(traces, problems, eligible, prompts, tag, p.problems_per_family, p.offline.alpha,
                   p.offline.eps).to_parquet(out, index=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", default="models/sft")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    a = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    data = trace_groups(a.init, Path(tmp.name) / "offline.parquet")
    variants = {"trace_positions": False, "all_positions": True}
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for r in range(a.rounds):
        for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            results[name].append(run(a.init, str(data), a.steps, variants[name]))
            print(name, results[name][-1], flush=True)
    per_step = {name: sum(x["s_per_step"] for x in rs) / len(rs) for name, rs in results.items()}
    print(json.dumps({"s_per_step": per_step,
                      "ratio_trace_positions_vs_all": round(per_step["all_positions"]
                                                            / per_step["trace_positions"], 2),
                      "losses_agree": all(abs(x["train_loss"] - y["train_loss"]) < 1e-4 * abs(y["train_loss"])
                                          for x, y in zip(results["trace_positions"],
                                                          results["all_positions"]))}))


if __name__ == "__main__":
    main()
