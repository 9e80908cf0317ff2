"""Online GRPO with and without the soft verifiers: same start, data, seed and steps.

Arm ``all`` uses ``verifiers.weights`` from params.yaml; arm ``hard`` sets every soft verifier's
weight (cell_type, tf_binding, protein_family, phenotype, perturbation) to 0, leaving correctness,
format, length and repetition. Each arm runs the grpo stage's training child (``tasks.train.grpo``, mode
online) for the active profile's ``grpo.online`` settings, then both checkpoints and the start
answer the same held-out test problems greedily, scored with the full verifier set
(tasks/train/heldout.py): accuracy, mean composed reward and format rate per arm.

    PYTHONPATH=$PWD python bench/grpo_ablation.py [--init models/pretrain] [--steps 6] \
        [--out reports/bench_grpo_ablation.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from tasks.common import dispatch

from tasks.common import schemas
from tasks.train.grpo_data import cap_per_family, reward_summary, rollout_prompts
from tasks.train.heldout import heldout_check, per_family
from tasks.lm.modeling import load_tokenizer
from tasks.common.params import load_params
from tasks.common.prompts import load_prompts
from tasks.common.storage import read_table
from tasks.verifiers.compose import SOFT_FAMILIES
from tasks.verifiers.fitted import fit_verifiers, load_verifiers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", help="start checkpoint (default: grpo.init)")
    parser.add_argument("--steps", type=int, help="online steps per arm (default: grpo.online.steps)")
    parser.add_argument("--problems", default="data/problems/problems.parquet")
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--out", default="reports/bench_grpo_ablation.json")
    args = parser.parse_args()

    params = load_params()
    p, v, seed = params.grpo, params.verifiers, params.base.seed
    init = args.init or p.init
    online = p.online.model_copy(update={"steps": args.steps}) if args.steps else p.online
    p = p.model_copy(update={"mode": "online", "init": init, "online": online})
    problems = read_table(args.problems, schemas.Problems)
    prompts = load_prompts(params.annotate.prompts_dir if params.annotate else None)
    tokenizer = load_tokenizer(init)
    train, _ = rollout_prompts(problems, prompts, v.answer_tag, tokenizer, p.exclude_families, p.max_prompt_tokens)
    test, _ = rollout_prompts(problems, prompts, v.answer_tag, tokenizer, p.exclude_families,
                              p.max_prompt_tokens, split="test")
    test = cap_per_family(test, p.heldout.problems_per_family)
    arms = {"all": v, "hard": v.model_copy(update={"weights": {n: (0.0 if n in SOFT_FAMILIES else w)
                                                                for n, w in v.weights.items()}})}
    result: dict = {"init": init, "steps": online.steps, "prompts": len(cap_per_family(train, p.problems_per_family)),
                    "test_problems": len(test), "arms": {}}
    with tempfile.TemporaryDirectory(prefix="grpo-ablation-") as tmp:
        root = Path(tmp)
        fit_verifiers(problems, args.corpus, root / "verifiers", v, seed)
        cap_per_family(train, p.problems_per_family).to_parquet(root / "online.parquet", index=False)
        models = {"start": init}
        for arm, settings in arms.items():
            work = root / arm
            work.mkdir()
            cfg = {"params": p.model_dump(mode="json"), "verifiers": settings.model_dump(mode="json"),
                   "seed": seed, "gpus": params.base.gpus, "tensor_parallel_size": params.base.tensor_parallel_size,
                   "init_dir": init, "work_dir": str(work), "verifiers_dir": str(root / "verifiers"),
                   "online_data": str(root / "online.parquet"), "offline_data": "",
                   "metrics_path": str(work / "metrics.json"), "output_dir": str(work / "model")}
            (work / "run.json").write_text(json.dumps(cfg))
            start = time.perf_counter()
            dispatch.launch("tasks.train.grpo", ["--config", str(work / "run.json")],
                            config_file=params.base.accelerate_config, gpus=params.base.gpus,
                            log_file=work / "train.log")
            trained = json.loads((work / "metrics.json").read_text())["online"]
            summary = reward_summary(trained["history"])
            result["arms"][arm] = {"seconds": round(time.perf_counter() - start, 1),
                                   "verifiers": trained["verifiers"],
                                   "train_reward_first": summary.get("reward_first"),
                                   "train_reward_last": summary.get("reward_last"),
                                   "train_verifiers": summary.get("verifiers")}
            models[arm] = str(work / "model")
        bundle = load_verifiers(root / "verifiers", v)
        scored = heldout_check(models, test, bundle, v, p.heldout.max_new_tokens, params.generation, seed)
        table = per_family(scored)
    result["heldout"] = table.to_dict("records")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str) + "\n")
    overall = table[table["family"] == "all"].set_index("model")[["problems", "accuracy", "reward", "format"]]
    print(json.dumps({k: v for k, v in result.items() if k not in ("heldout", "arms")}))
    for arm, info in result["arms"].items():
        print(arm, json.dumps({k: info[k] for k in ("seconds", "train_reward_first", "train_reward_last")}))
    print(overall.to_string())
    print(pd.DataFrame(result["heldout"]).to_string(index=False))


if __name__ == "__main__":
    main()
