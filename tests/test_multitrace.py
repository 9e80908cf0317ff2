"""Offline multi-trace GRPO: the softmax weighting on hand-made rewards, the data, the loss, a few steps."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from tasks.common.prompts import problem_messages
from tasks.train.multitrace import (GroupCollator, MultiTraceTrainer, TraceGroups, encode_trace,
                                   fitting_groups, group_weights, multitrace_loss, offline_groups,
                                   trace_table)
from tasks.train.sft import trained_positions
from tasks.common.prompts import load_prompts
from tests.grpo_fixtures import problems, traces

PAPER = [1.0, 0.5, 0.5, 0.7, 0.2, -1.0]  # gold, short, long, redundant, no_reason, negative


def test_weights_by_hand_for_the_papers_rewards():
    r = np.array(PAPER)
    z = (r - r.mean()) / (r.std() + 1e-4)
    expected = np.exp(z) / np.exp(z).sum()
    q = group_weights(PAPER, alpha=1.0, eps=1e-4)
    assert np.allclose(q, expected) and math.isclose(q.sum(), 1.0)
    # ordered like the rewards; equal rewards (short, long) weigh the same
    assert list(np.argsort(-q)) == [0, 3, 1, 2, 4, 5] and q[1] == q[2]
    assert q[0] > 0.3 and q[5] < 0.02


def test_alpha_sets_the_sharpness():
    assert np.allclose(group_weights(PAPER, alpha=0.0), 1 / 6)          # uniform
    sharp = group_weights(PAPER, alpha=50.0)
    assert sharp[0] > 0.999                                              # all on the best trace
    assert group_weights(PAPER, 2.0)[0] > group_weights(PAPER, 1.0)[0]


def test_weights_ignore_shift_and_scale_of_rewards_and_ties():
    shifted = group_weights([10 * x + 3 for x in PAPER], alpha=1.0, eps=1e-12)
    assert np.allclose(shifted, group_weights(PAPER, alpha=1.0, eps=1e-12))
    assert np.allclose(group_weights([0.5, 0.5, 0.5], alpha=3.0), 1 / 3)  # no variance: uniform
    assert np.allclose(group_weights([1.0], alpha=1.0), [1.0])


def test_trace_table_groups_weights_and_prompts():
    table = problems()
    tr = traces(table)
    prompts = load_prompts(None)
    out = trace_table(tr, table, prompts, "answer", alpha=1.0, eps=1e-4)
    assert "rejected-1" not in set(out["group"])                         # rejected: no rewards
    sums = out.groupby("group")["weight"].sum()
    assert np.allclose(sums, 1.0)
    gold = out[out["variant"] == "gold"].iloc[0]
    rec = table.set_index("id").loc[gold["group"]].to_dict() | {"id": gold["group"]}
    assert list(gold["prompt"]) == problem_messages(rec, prompts, "answer")  # annotate's prompt
    assert gold["completion"].startswith("<think>") and gold["completion"].endswith("</answer>")
    one = out[out["group"] == gold["group"]].set_index("variant")
    assert one.loc["gold", "weight"] > one.loc["negative", "weight"]
    with pytest.raises(KeyError, match="not in the problems table"):
        trace_table(tr.assign(problem_id="nope"), table, prompts, "answer", 1.0, 1e-4)


def test_trace_table_writes_long_options_by_letter_the_gold_and_the_wrong_one():
    table = problems()
    mc = table.index[(table["answer_type"] == "multiple_choice") & (table["split"] == "train")][0]
    longer = [f"{c}, a name longer than thirty-two characters" for c in table.at[mc, "choices"]]
    table.at[mc, "choices"] = longer
    table.at[mc, "answer"] = longer[1]
    out = trace_table(traces(table), table, load_prompts(None), "answer", alpha=1.0, eps=1e-4)
    group = out[out["group"] == table.at[mc, "id"]].set_index("variant")["completion"]
    assert group["gold"].endswith("<answer> B</answer>")
    assert group["negative"][-len("<answer> X</answer>"):] in {f"<answer> {x}</answer>" for x in "ACD"}


def test_offline_groups_are_the_online_problems_that_have_traces():
    table = problems()
    tr = traces(table)
    prompts = load_prompts(None)
    train = table[table["split"] == "train"]
    # as rollout_prompts would leave it: one problem too long, one family excluded
    eligible = train[(train["id"] != train["id"].iloc[0]) & (train["family"] != train["family"].iloc[-1])]
    out = offline_groups(tr, table, eligible, prompts, "answer", per_family=1, alpha=1.0, eps=1e-4)
    traced = eligible[eligible["id"].isin(set(tr["problem_id"]))]
    assert set(out["group"]) == set(traced.groupby("family").head(1)["id"])  # one a family, first first
    assert train["id"].iloc[0] not in set(out["group"])
    assert train["family"].iloc[-1] not in set(out["family"])
    everything = offline_groups(tr, table, eligible, prompts, "answer", None, 1.0, 1e-4)
    assert set(everything["group"]) == set(traced["id"]) - {"rejected-1"}  # rejected: no rewards


def test_encode_trace_masks_the_prompt_and_never_cuts_it(tiny_base):
    from tasks.lm.modeling import load_tokenizer, render_chat

    tok = load_tokenizer(tiny_base[0])
    prompt = [{"role": "system", "content": "s " * 50}, {"role": "user", "content": "q"}]
    ids, mask = encode_trace(tok, prompt, "<think>a</think><answer>b</answer>")
    assert len(ids) == len(mask) and mask[-1] == 1 and mask[0] == 0
    assert sum(1 - m for m in mask) == len(tok(render_chat(tok, prompt), add_special_tokens=False)["input_ids"])
    assert tok.decode([i for i, m in zip(ids, mask) if m]).startswith("<think>")


def test_groups_that_would_be_cut_are_left_out_whole_and_counted(tiny_base):
    from tasks.lm.modeling import load_tokenizer

    tok = load_tokenizer(tiny_base[0])
    short = [{"role": "user", "content": "q"}]
    long = [{"role": "user", "content": "q " * 200}]
    table = pd.DataFrame({"group": ["a", "a", "b"], "family": ["f", "f", "g"],
                          "variant": ["gold", "long", "gold"], "prompt": [short, short, long],
                          "completion": ["<answer>x</answer>", "<think>" + "y " * 100 + "</think>",
                                         "<answer>x</answer>"]})
    kept, info = fitting_groups(table, tok, max_length=120)
    assert kept.empty and info["groups_over_max_length"] == 2  # group a goes whole, not just its long trace
    kept, info = fitting_groups(table, tok, max_length=10_000)
    assert len(kept) == 3 and info["groups_over_max_length"] == 0


def _batch():
    return {"input_ids": torch.tensor([[1, 2, 3, 4], [1, 2, 5, 0]]),
            "completion_mask": torch.tensor([[0, 0, 1, 1], [0, 0, 1, 0]]),
            "weight": torch.tensor([0.75, 0.25]), "group": torch.tensor([0, 0]),
            "is_gold": torch.tensor([True, False])}


def test_loss_is_the_weighted_nll_plus_kl():
    torch.manual_seed(0)
    logp = torch.log_softmax(torch.randn(2, 3, 6), -1)
    batch = _batch()
    loss, parts = multitrace_loss(logp, logp.clone(), batch, beta=0.5)
    nll0 = -(logp[0, 1, 3] + logp[0, 2, 4]) / 2
    nll1 = -logp[1, 1, 5]
    assert math.isclose(loss.item(), (0.75 * nll0 + 0.25 * nll1).item(), rel_tol=1e-5)
    assert abs(parts["kl"]) < 1e-6                                        # policy == reference
    ref = torch.log_softmax(torch.randn(2, 3, 6), -1)
    loss_kl, parts_kl = multitrace_loss(logp, ref, batch, beta=0.5)
    assert parts_kl["kl"] > 0 and math.isclose(loss_kl.item(), loss.item() + 0.5 * parts_kl["kl"], rel_tol=1e-5)
    kept = trained_positions(batch["completion_mask"] != 0)  # the loss from the trace positions only
    assert kept.tolist() == [1, 2]
    loss_kept, parts_kept = multitrace_loss(logp[:, kept], ref[:, kept], batch, 0.5, kept)
    assert math.isclose(loss_kept.item(), loss_kl.item(), rel_tol=1e-6) and parts_kept == parts_kl


def test_collator_flattens_groups():
    groups = [{"input_ids": [[1, 2], [1, 2, 3]], "completion_mask": [[0, 1], [0, 1, 1]],
               "weight": [0.6, 0.4], "variant": ["gold", "negative"]},
              {"input_ids": [[4]], "completion_mask": [[1]], "weight": [1.0], "variant": ["gold"]}]
    batch = GroupCollator(pad_id=0)(groups)
    assert batch["input_ids"].tolist() == [[1, 2, 0], [1, 2, 3], [4, 0, 0]]
    assert batch["group"].tolist() == [0, 0, 1] and batch["is_gold"].tolist() == [True, False, True]
    assert batch["attention_mask"].sum().item() == 6


def gold_and_negative() -> pd.DataFrame:
    """One trace group: a gold trace answering yes, its negative answering no."""
    prompt = [{"role": "user", "content": "Is CD3D a T cell marker?"}]
    return pd.DataFrame({"group": ["g", "g"], "family": "x", "variant": ["gold", "negative"],
                         "prompt": [prompt, prompt],
                         "completion": ["<think>CD3D</think><answer>yes</answer>",
                                        "<think>CD3D</think><answer>no</answer>"],
                         "reward": [1.0, -1.0], "weight": list(group_weights([1.0, -1.0], alpha=3.0))})


def test_trainer_moves_weight_towards_the_gold_trace(tiny_base, tmp_path):
    from transformers import TrainingArguments

    from tasks.lm.modeling import load_model, load_tokenizer

    tok = load_tokenizer(tiny_base[0])
    table = gold_and_negative()
    data = TraceGroups(table, tok)
    collate = GroupCollator(tok.pad_token_id)
    batch = collate([data[0]])

    def margin(model):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=batch["input_ids"]).logits[:, :-1], -1)
        tok_logp = logp.gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1) * batch["completion_mask"][:, 1:]
        return (tok_logp[0].sum() - tok_logp[1].sum()).item()

    model = load_model(tiny_base[0], tok)
    before = margin(model)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=8, per_device_train_batch_size=1,
                             learning_rate=5e-3, use_cpu=True, report_to="none", save_strategy="no",
                             remove_unused_columns=False, logging_steps=4, disable_tqdm=True)
    trainer = MultiTraceTrainer(model=model, args=args, train_dataset=data, data_collator=collate,
                                ref_model=load_model(tiny_base[0], tok), beta=0.1)
    trainer.train()
    assert margin(model) > before + 0.5                                   # gold's yes over negative's no
    logged = [h for h in trainer.state.log_history if "weighted_nll" in h]
    assert logged and all("kl" in h and "gold_weight" in h for h in logged)


def test_lora_reference_is_the_policy_with_adapters_off(tiny_base, tmp_path):
    """Under LoRA no second model is loaded: the KL reference is the peft model with its adapters
    disabled. Adapters start at zero, so the first step's KL is 0; once they moved it is not (a
    reference that kept the adapters on would stay at 0). A plain model without a reference fails."""
    from peft import LoraConfig, get_peft_model
    from transformers import TrainingArguments

    from tasks.lm.modeling import load_model, load_tokenizer

    tok = load_tokenizer(tiny_base[0])
    table = gold_and_negative()
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=1,
                             learning_rate=5e-2, use_cpu=True, report_to="none", save_strategy="no",
                             remove_unused_columns=False, logging_steps=1, disable_tqdm=True)
    kwargs = dict(args=args, train_dataset=TraceGroups(table, tok), data_collator=GroupCollator(tok.pad_token_id),
                  beta=0.1)
    with pytest.raises(ValueError, match="needs the reference model"):
        MultiTraceTrainer(model=load_model(tiny_base[0], tok), **kwargs)
    model = get_peft_model(load_model(tiny_base[0], tok),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    trainer = MultiTraceTrainer(model=model, **kwargs)
    assert trainer.ref_model is None
    trainer.train()
    kl = [h["kl"] for h in trainer.state.log_history if "kl" in h]
    assert len(kl) == 4 and abs(kl[0]) < 1e-6 and kl[-1] > 1e-6
