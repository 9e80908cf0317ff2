"""Inputs and reports of the grpo stage: rollout prompts, the leakage guard, the reward curve.

The policy sees exactly the prompts it was fine-tuned on: ``problem_messages`` of
``tasks.common.prompts`` (system prompt + problem + answer format). Online GRPO trains on train problems only; its soft verifiers
are fitted on the training split and :func:`assert_no_test_entities` refuses a fitted folder
that names any test entity.

>>> curve = reward_curve([{"step": 1, "reward": 0.5, "kl": 0.0, "loss": 0.1},
...                       {"step": 1, "train_loss": 0.1}])
>>> curve.columns.tolist(), curve["reward"].tolist()
(['step', 'reward', 'kl'], [0.5])
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from tasks.common.prompts import PROMPT_STYLES, PromptStyle, problem_messages
from tasks.lm.modeling import render_chat
from tasks.verifiers.fitted import held_out_entities

ROLLOUT_COLUMNS = ["id", "family", "answer", "answer_type", "choices", "evidence", "source_ids"]
#: Besides the problem's columns: whether the prompt asks for reasoning (the format reward reads it).
VERIFIER_COLUMNS = [*ROLLOUT_COLUMNS, "reasoning"]
CURVE_KEYS = ("reward", "reward_std", "frac_reward_zero_std", "kl", "completions/mean_length",
              "completions/clipped_ratio", "clip_ratio/region_mean", "entropy")


def cap_per_family(table: pd.DataFrame, per_family: int | None) -> pd.DataFrame:
    """The first ``per_family`` rows of each family (all when None), families in sorted order."""
    if per_family is None:
        return table.reset_index(drop=True)
    return table.groupby("family", sort=True, group_keys=False).head(per_family).reset_index(drop=True)


def rollout_prompts(problems: pd.DataFrame, prompts: dict[str, str], tag: str, tokenizer: Any,
                    exclude: list[str], max_prompt_tokens: int, split: str = "train",
                    style: PromptStyle = "reasoned") -> tuple[pd.DataFrame, dict[str, int]]:
    """Problems of ``split`` as a TRL conversational dataset (``prompt`` = chat messages, plus the
    columns the verifiers read) whose prompt has at most ``max_prompt_tokens`` tokens; also the
    count left out per family for being too long. ``style`` (``grpo.online.prompt``): reasoned, the
    reasoning system prompt; direct, the answer-only one."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}: one of {', '.join(PROMPT_STYLES)}")
    reasoning = style == "reasoned"
    rows = problems[(problems["split"] == split) & ~problems["family"].isin(exclude)]
    chats = [problem_messages(rec, prompts, tag, think=reasoning) for rec in rows.to_dict("records")]
    lengths = [len(ids) for ids in tokenizer([render_chat(tokenizer, c) for c in chats],
                                             add_special_tokens=False)["input_ids"]] if chats else []
    out, too_long = [], {}
    for rec, messages, n in zip(rows.to_dict("records"), chats, lengths):
        if n > max_prompt_tokens:
            too_long[rec["family"]] = too_long.get(rec["family"], 0) + 1
            continue
        out.append({"prompt": messages, **{c: rec[c] for c in ROLLOUT_COLUMNS},
                    "choices": [str(c) for c in rec["choices"]],
                    "source_ids": [str(s) for s in rec["source_ids"]], "reasoning": reasoning})
    return pd.DataFrame(out, columns=["prompt"] + VERIFIER_COLUMNS), too_long


def assert_no_test_entities(manifest: dict, problems: pd.DataFrame, source: str) -> int:
    """Raise if a fitted verifier's training entities include a test entity; return how many
    training entities were checked."""
    seen = set()
    for member in ("cell_type", "perturbation"):
        seen |= set((manifest.get(member) or {}).get("train_entities") or [])
    leaked = sorted(seen & held_out_entities(problems))
    if leaked:
        raise AssertionError(f"{source}: soft verifiers were fitted on test entities: {leaked[:5]}")
    if manifest.get("fitted_on") != "train":
        raise AssertionError(f"{source}: verifiers fitted on {manifest.get('fitted_on')!r}, not 'train'")
    return len(seen)


def reward_curve(history: list[dict]) -> pd.DataFrame:
    """Per logged step of online GRPO: total reward, its std, KL, completion length, clipping, zero-
    variance groups and each verifier's mean (columns ``rewards/<name>/mean``)."""
    rows = [{"step": h["step"], **{k: v for k, v in h.items()
                                   if k in CURVE_KEYS or (k.startswith("rewards/") and k.endswith("/mean"))}}
            for h in history if "reward" in h]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["step", "reward"])
    keep = ["step"] + [k for k in CURVE_KEYS if k in df] + sorted(c for c in df if c.startswith("rewards/"))
    return df[keep]


def offline_curve(history: list[dict]) -> pd.DataFrame:
    """Per logged step of offline multi-trace GRPO: the loss and its parts."""
    keys = ("loss", "weighted_nll", "nll", "kl", "gold_nll", "variant_nll", "gold_weight")
    rows = [{"step": h["step"], **{k: h[k] for k in keys if k in h}} for h in history if "weighted_nll" in h]
    return pd.DataFrame(rows, columns=["step", *keys]) if rows else pd.DataFrame(columns=["step", "loss"])


def reward_summary(history: list[dict]) -> dict[str, Any]:
    """First and last logged values of the online curve, and per verifier their mean and std over
    the run (std: TRL's per-step std averaged)."""
    curve = reward_curve(history)
    if curve.empty:
        return {}
    out: dict[str, Any] = {"reward_first": float(curve["reward"].iloc[0]),
                           "reward_last": float(curve["reward"].iloc[-1]),
                           "reward_mean": float(curve["reward"].mean())}
    for key in ("kl", "frac_reward_zero_std", "completions/mean_length", "completions/clipped_ratio",
                "clip_ratio/region_mean"):
        if key in curve:
            out[key.replace("/", "_") + "_mean"] = float(curve[key].mean())
    per = {}
    for h in history:
        for k, v in h.items():
            if k.startswith("rewards/") and v is not None:
                name, stat = k.split("/")[1:3]
                per.setdefault(name, {}).setdefault(stat, []).append(float(v))
    out["verifiers"] = {n: {s: round(sum(v) / len(v), 6) for s, v in stats.items()} for n, stats in per.items()}
    return out

