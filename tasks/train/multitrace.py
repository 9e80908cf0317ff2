"""BiomniGEM's offline multi-trace GRPO: learn from fixed-reward trace variants without sampling.

Every annotated train problem has a group of traces (gold, short, long, redundant, no-reason,
negative) with fixed rewards r_i from params (``annotate.variants``). Within a group the rewards are
standardised and turned into softmax weights

    q_i = softmax_i(alpha * (r_i - mean(r)) / (std(r) + eps))      (std over the group, ddof=0)

and the policy minimises, per batch of G groups,

    L = (1/G) sum_groups sum_i q_i * NLL_i  +  beta * KL

where NLL_i is the mean negative log-likelihood of trace i's tokens (the assistant turn, prompt
masked out) and KL is the mean over every trace token of the exact KL divergence
KL(pi(. | prefix) || pi_ref(. | prefix)) over the vocabulary, pi_ref being the start checkpoint
(frozen). Weights are positive, so a bad trace is still imitated a little; alpha sets how little.

``MultiTraceTrainer`` is a ``transformers.Trainer`` whose ``compute_loss`` is the above, so
checkpoints, resume, DDP/FSDP and logging come from Trainer. Its dataset holds one item per group.

>>> [round(float(x), 3) for x in group_weights([1.0, 0.5, -1.0], alpha=1.0)]
[0.606, 0.336, 0.058]
>>> [round(float(x), 3) for x in group_weights([0.7, 0.7], alpha=5.0)]
[0.5, 0.5]
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import Trainer

from tasks.common.answers import written_answer
from tasks.common.prompts import problem_messages, render_assistant
from tasks.lm.modeling import EOS, render_chat
from tasks.train.grpo_data import cap_per_family
from tasks.train.sft import trained_positions

TRACE_STATUSES = ("verified", "derived")  # a rejected problem has no traces to learn from


def group_weights(rewards: Sequence[float], alpha: float, eps: float = 1e-4) -> np.ndarray:
    """q_i = softmax(alpha * (r_i - mean) / (std + eps)) over one group's fixed rewards."""
    r = np.asarray(rewards, dtype=np.float64)
    if r.size == 0:
        return r
    z = alpha * (r - r.mean()) / (r.std() + eps)
    z -= z.max()  # numerically safe softmax
    e = np.exp(z)
    return e / e.sum()


def trace_table(traces: pd.DataFrame, problems: pd.DataFrame, prompts: dict[str, str], tag: str,
                alpha: float, eps: float) -> pd.DataFrame:
    """One row per usable trace: its problem's chat prompt and the assistant text, built and rendered
    as SFT saw them (``tasks.common.prompts``), the fixed reward and its weight q within the problem's group."""
    usable = traces[traces["status"].isin(TRACE_STATUSES) & traces["reward"].notna()]
    by_id = problems.set_index("id")
    missing = sorted(set(usable["problem_id"]) - set(by_id.index))
    if missing:
        raise KeyError(f"traces name problems that are not in the problems table: {missing[:5]}")
    rows = []
    for pid, group in usable.groupby("problem_id", sort=True):
        rec = by_id.loc[pid].to_dict() | {"id": pid}
        prompt = problem_messages(rec, prompts, tag)
        weights = group_weights(group["reward"].to_numpy(), alpha, eps)
        for t, q in zip(group.itertuples(index=False), weights):
            said = written_answer(t.answer, rec["answer_type"], rec.get("choices"))
            rows.append({"group": pid, "family": t.family, "variant": t.variant, "prompt": prompt,
                         "completion": render_assistant(list(t.steps), t.conclusion, said, tag),
                         "reward": float(t.reward), "weight": float(q)})
    return pd.DataFrame(rows, columns=["group", "family", "variant", "prompt", "completion",
                                       "reward", "weight"])


def offline_groups(traces: pd.DataFrame, problems: pd.DataFrame, eligible: pd.DataFrame,
                   prompts: dict[str, str], tag: str, per_family: int | None, alpha: float,
                   eps: float) -> pd.DataFrame:
    """What offline GRPO trains on: the problems online GRPO would roll out (``eligible``, from
    ``grpo_data.rollout_prompts``: train split, family not excluded, prompt short enough) that have
    traces, capped at ``per_family`` a family as online is, as :func:`trace_table` groups."""
    kept = cap_per_family(eligible[eligible["id"].isin(set(traces["problem_id"]))], per_family)
    return trace_table(traces[traces["problem_id"].isin(set(kept["id"]))], problems, prompts, tag, alpha, eps)


def encode_trace(tokenizer: Any, prompt: list[dict], completion: str) -> tuple[list[int], list[int]]:
    """(input ids, completion mask) of prompt + assistant turn, whole: nothing is ever cut (groups
    that would not fit are left out beforehand, :func:`fitting_groups`)."""
    prompt_ids = tokenizer(render_chat(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion + EOS, add_special_tokens=False)["input_ids"]
    return prompt_ids + completion_ids, [0] * len(prompt_ids) + [1] * len(completion_ids)


def fitting_groups(table: pd.DataFrame, tokenizer: Any, max_length: int) -> tuple[pd.DataFrame, dict]:
    """The groups whose every trace fits ``max_length`` tokens whole (a group's weights are only
    meaningful together); the others are left out and counted per family."""
    lengths = pd.Series([len(encode_trace(tokenizer, list(p), c)[0])
                         for p, c in zip(table["prompt"], table["completion"])], index=table.index)
    too_long = lengths.groupby(table["group"]).transform("max") > max_length
    left_out = table[too_long].drop_duplicates("group")
    return table[~too_long].reset_index(drop=True), {
        "groups_over_max_length": int(left_out["group"].nunique()),
        "groups_over_max_length_per_family": {str(k): int(v) for k, v in
                                              left_out.groupby("family").size().items()},
        "trace_tokens_max": int(lengths.max()) if len(lengths) else 0}


class TraceGroups(torch.utils.data.Dataset):
    """One item per problem: its traces, tokenised when first asked for, with their weights."""

    def __init__(self, table: pd.DataFrame, tokenizer: Any):
        self.groups = [g for _, g in table.groupby("group", sort=True)]
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> dict:
        group = self.groups[i]
        encoded = [encode_trace(self.tokenizer, list(p), c)
                   for p, c in zip(group["prompt"], group["completion"])]
        return {"input_ids": [e[0] for e in encoded], "completion_mask": [e[1] for e in encoded],
                "weight": group["weight"].tolist(), "variant": group["variant"].tolist()}


class GroupCollator:
    """Flattens a batch of groups into right-padded sequences with a group index per sequence."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, groups: list[dict]) -> dict[str, torch.Tensor]:
        seqs = [(ids, mask, w, g, v == "gold") for g, item in enumerate(groups)
                for ids, mask, w, v in zip(item["input_ids"], item["completion_mask"], item["weight"],
                                           item["variant"])]
        width = max(len(s[0]) for s in seqs)
        input_ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(seqs), width), dtype=torch.long)
        completion = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, (ids, mask, *_) in enumerate(seqs):
            input_ids[row, :len(ids)] = torch.tensor(ids)
            attention[row, :len(ids)] = 1
            completion[row, :len(ids)] = torch.tensor(mask)
        return {"input_ids": input_ids, "attention_mask": attention, "completion_mask": completion,
                "weight": torch.tensor([s[2] for s in seqs], dtype=torch.float32),
                "group": torch.tensor([s[3] for s in seqs], dtype=torch.long),
                "is_gold": torch.tensor([s[4] for s in seqs], dtype=torch.bool)}


def token_logprobs(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   positions: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over the vocabulary of the next token at ``positions`` (the trace
    positions, ``sft.trained_positions`` of the completion mask): [batch, len(positions), vocab]."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=positions).logits
    return F.log_softmax(logits.float(), dim=-1)


def multitrace_loss(logp: torch.Tensor, ref_logp: torch.Tensor | None, batch: dict[str, torch.Tensor],
                    beta: float, positions: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted trace log-likelihood plus beta x per-token KL (see the module docstring).
    ``logp``/``ref_logp`` hold the next-token distributions at ``positions`` (default: every
    position but the last)."""
    if positions is None:
        positions = torch.arange(batch["input_ids"].shape[1] - 1)
    targets = batch["input_ids"][:, 1:][:, positions]
    mask = batch["completion_mask"][:, 1:][:, positions].float()
    tokens = mask.sum(1).clamp(min=1)
    nll = -(logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * mask).sum(1) / tokens
    n_groups = int(batch["group"].max()) + 1
    weighted = (batch["weight"] * nll).sum() / n_groups
    loss, parts = weighted, {"weighted_nll": weighted.item(), "nll": nll.mean().item()}
    if ref_logp is not None:
        kl_tok = (logp.exp() * (logp - ref_logp)).sum(-1)  # exact KL(pi || pi_ref) at each position
        kl = (kl_tok * mask).sum() / mask.sum().clamp(min=1)
        loss = loss + beta * kl
        parts["kl"] = kl.item()
    gold = batch["is_gold"]
    if gold.any():
        parts["gold_nll"] = nll[gold].mean().item()
        parts["gold_weight"] = batch["weight"][gold].mean().item()
    if (~gold).any():
        parts["variant_nll"] = nll[~gold].mean().item()
    return loss, parts


class MultiTraceTrainer(Trainer):
    """Trainer with the multi-trace loss. With ``beta`` > 0 the KL reference is ``ref_model`` (frozen)
    or, for a peft model given none, the model itself with its adapters disabled."""

    def __init__(self, *args: Any, ref_model: Any = None, beta: float = 0.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.adapters_off = None
        if beta > 0 and ref_model is None:
            self.adapters_off = getattr(self.accelerator.unwrap_model(self.model), "disable_adapter", None)
            if self.adapters_off is None:
                raise ValueError("offline multi-trace GRPO with beta > 0 needs the reference model "
                                 "(or a peft model, whose adapters off are the reference)")
        if ref_model is not None and self.is_deepspeed_enabled:
            raise ValueError("offline multi-trace GRPO keeps its KL reference outside DeepSpeed: "
                             "use an fsdp or ddp accelerate config, or beta 0")
        self.beta = beta
        self.ref_model = None
        if ref_model is not None and beta > 0:
            ref_model.requires_grad_(False)
            self.ref_model = self.accelerator.prepare_model(ref_model.eval(), evaluation_mode=True)
        self._parts: dict[str, list[float]] = defaultdict(list)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        # the LM head, the softmax over the vocabulary and the KL skip the prompts
        kept = trained_positions(inputs["completion_mask"] != 0)
        logp = token_logprobs(model, inputs["input_ids"], inputs["attention_mask"], kept)
        ref_logp = None
        if self.ref_model is not None:
            with torch.no_grad():
                ref_logp = token_logprobs(self.ref_model, inputs["input_ids"], inputs["attention_mask"], kept)
        elif self.adapters_off is not None:
            with torch.no_grad(), self.adapters_off():
                ref_logp = token_logprobs(model, inputs["input_ids"], inputs["attention_mask"], kept)
        loss, parts = multitrace_loss(logp, ref_logp, inputs, self.beta, kept)
        for key, value in parts.items():
            self._parts[key].append(value)
        return (loss, None) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        logs.update({k: float(np.mean(v)) for k, v in self._parts.items() if v})
        self._parts.clear()
        super().log(logs, start_time)
