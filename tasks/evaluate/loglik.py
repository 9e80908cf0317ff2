"""Log-likelihood option scoring: which option does a checkpoint find most likely as its answer?

Generation plus answer extraction puts every small checkpoint at chance and is noisy; scoring the
closed set of options by log-likelihood, as lm-evaluation-harness scores small models' multiple
choice, reads the model's preference directly and deterministically.

For a problem with options ``o_1 .. o_k``:

* context = the rendered chat prompt with the assistant turn open (``render_chat(...,
  add_generation_prompt=True)``), then ``prefix``, then ``<answer>`` (the tag name is a
  parameter). Two modes (:func:`score_modes`): ``direct`` (the problem under the answer-only
  system prompt, empty prefix: lm-evaluation-harness style, the answer right after the prompt)
  and ``reasoned`` (under the reasoning system prompt; the prefix is the checkpoint's own greedy
  ``<think>...</think>`` from its completion, :func:`reasoning`);
* continuation_i = ``o_i + "</answer>"``;
* ``logprob`` = sum of log P(continuation token | context, earlier continuation tokens);
  ``logprob_norm`` = ``logprob / len(o_i)``, the option text's length in **characters** (lm-eval's
  ``acc_norm`` divides by the choice string's character length; the closing tag is the same for
  every option and is not counted);
* ``pred`` = argmax ``logprob``; ``pred_norm`` = argmax ``logprob_norm``; ``correct`` /
  ``correct_norm`` = prediction == gold index. Ties go to the first option.

Boundary tokenisation: context and continuation are tokenised **separately** (as lm-eval does) and
concatenated. With our tokenizers the boundary is an added token (``<answer>``, ``</answer>`` are
never split nor merged), so this equals tokenising the whole string and splitting at the context
length; :func:`boundary_mismatches` checks that for any tokenizer and tag, and the tests hold it for
the tiny BPE tokenizer.

Computation (:func:`score_options`): problems go in batches; each batch's contexts run once,
right-padded, filling a ``transformers.DynamicCache``; the cache rows are then gathered per option
(``DynamicCache.batch_select_indices``; chunks of at most ``max_rows`` option rows) and all options
of the batch continue from it in one forward pass, positions continuing from each context's own
length. Only the last context position and the continuation positions go through the LM head.
:func:`naive_scores` scores each full context+option sequence alone; the tests hold the two within
1e-4 (tiny model). Default context batch: 1 on CPU (padding mixed-length contexts costs more than
batching gains there), 8 on CUDA.

Measured (``bench/loglik.py``, 40 seeded scorable test problems, 116 options, contexts 342 tokens
on average, the untrained default-size model of params.yaml: 1.3M parameters, float32, 2 shared
CPU threads, load ~1.9; fastest of 3 alternating runs): cached, batch 1: 1.16 s, 34.6 problems/s,
40,220 context+option tokens/s; naive: 3.76 s, 12,375 tokens/s (3.25x); cached, batch 8: 2.78 s.
Largest difference between the two: 2.4e-4 absolute on sums of about -190 (2.6e-7 relative,
float32 rounding).

Which problems are scorable (:func:`problem_options`): multiple choice -> its ``choices``, as a
reply writes them (``tasks.common.answers.written_answer``: letters where the options are too long
to copy, so the option's length no longer decides its likelihood); yes_no ->
``["yes", "no"]``; ``perturb_dir`` (answer_type label) -> ``["up", "down"]``; ``cell_type`` label
problems -> the cell types answered in the train split (:func:`label_sets`); anything else
(gene_set, json, the open numeric labels of instruction_alignment) is not scorable and is reported
with a reason, never dropped. A gold answer missing from a train label set still counts, as wrong.

>>> problem_options({"family": "perturb_dir", "answer_type": "label", "answer": "down", "choices": []})
Options(options=('up', 'down'), gold=1, reason='')
>>> problem_options({"family": "x", "answer_type": "multiple_choice", "answer": "y" * 40,
...                  "choices": ["x" * 40, "y" * 40]})
Options(options=('A', 'B'), gold=1, reason='')
>>> problem_options({"family": "x", "answer_type": "gene_set", "answer": "A, B", "choices": []})
Options(options=(), gold=None, reason='open answer (gene_set)')
>>> continuation("B cell", "answer")
' B cell</answer>'
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tasks.common.answers import ANSWER_LEAD, THINK_TAG, normalise_label, written_answer
from tasks.common.prompts import PROMPT_STYLES

MODES = PROMPT_STYLES  # where the options are scored: after own reasoning, or right away
YES_NO = ("yes", "no")
# label families whose answer is one of a fixed pair, whatever the data
FIXED_LABELS = {"perturb_dir": ("up", "down")}
# label families whose closed label set is the set of answers seen in the train split
TRAIN_LABEL_FAMILIES = ("cell_type",)


@dataclass(frozen=True)
class Options:
    """A problem's closed answer set; ``gold`` is None when the answer is not among them."""
    options: tuple[str, ...]
    gold: int | None
    reason: str = ""  # empty when scorable, else why not

    @property
    def scorable(self) -> bool:
        return not self.reason


def _field(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, (Mapping, pd.Series)) else getattr(row, name)


def label_sets(problems: pd.DataFrame,
               families: Sequence[str] = TRAIN_LABEL_FAMILIES) -> dict[str, tuple[str, ...]]:
    """For each family in ``families``: the sorted answers of its train label and multiple-choice
    problems (the closed set a label problem of that family is scored over).

    >>> df = pd.DataFrame({"family": ["cell_type"] * 3, "split": ["train", "train", "test"],
    ...                    "answer_type": ["label", "multiple_choice", "label"],
    ...                    "answer": ["T cell", "B cell", "NK cell"]})
    >>> label_sets(df)
    {'cell_type': ('B cell', 'T cell')}
    """
    train = problems[(problems["split"] == "train") & problems["family"].isin(list(families))
                     & problems["answer_type"].isin(["label", "multiple_choice"])]
    return {f: tuple(sorted(set(g["answer"]))) for f, g in train.groupby("family", sort=True)}


def _gold(options: Sequence[str], answer: str) -> int | None:
    if answer in options:
        return list(options).index(answer)
    wanted = normalise_label(answer)
    hits = [i for i, o in enumerate(options) if normalise_label(o) == wanted]
    return hits[0] if hits else None


def problem_options(row: Any, labels: Mapping[str, Sequence[str]] | None = None) -> Options:
    """The option list of one problem row (a mapping or a namedtuple), see the module notes."""
    family, kind, answer = _field(row, "family"), _field(row, "answer_type"), _field(row, "answer")
    choices = _field(row, "choices")
    choices = [str(c) for c in choices] if choices is not None else []
    if kind == "multiple_choice" and choices:  # each option as a reply writes it (a letter, maybe)
        gold = _gold(choices, answer)
        opts = tuple(written_answer(c, kind, choices) for c in choices)
        return Options(opts, gold)
    elif kind == "yes_no":
        opts = YES_NO
    elif kind == "label" and family in FIXED_LABELS:
        opts = FIXED_LABELS[family]
    elif kind == "label" and labels is not None and family in labels:
        opts = tuple(labels[family])
        if not opts:
            return Options((), None, "empty train label set")
    elif kind == "label":
        return Options((), None, "open label (no closed label set)")
    else:
        return Options((), None, f"open answer ({kind})")
    return Options(opts, _gold(opts, answer))


def scorable(problems: pd.DataFrame, labels: Mapping[str, Sequence[str]] | None = None,
             split: str = "test") -> pd.DataFrame:
    """The problems of ``split`` that have a closed option set, sorted by id (what the headline
    and the benchmarks score; ``labels`` default to :func:`label_sets` of ``problems``).

    >>> df = pd.DataFrame({"id": ["b", "a", "c"], "family": ["f"] * 3, "split": ["test", "test", "train"],
    ...                    "answer_type": ["yes_no", "gene_set", "yes_no"], "answer": ["yes", "A1", "no"],
    ...                    "choices": [[], [], []]})
    >>> scorable(df)["id"].tolist()
    ['b']
    """
    labels = label_sets(problems) if labels is None else labels
    rows = problems[problems["split"] == split]
    keep = [problem_options(r, labels).scorable for r in rows.to_dict("records")]
    return rows[keep].sort_values("id").reset_index(drop=True)


def continuation(option: str, tag: str = "answer") -> str:
    return f"{ANSWER_LEAD}{option}</{tag}>"


def contexts(tokenizer: Any, messages: Sequence[Sequence[Mapping[str, str]]], tag: str = "answer",
             prefix: str | Sequence[str] = "") -> list[str]:
    """Rendered chats (assistant turn open) + ``prefix`` + ``<tag>``: the text every option
    continues. ``messages`` are already-built chats (system + user turns); ``prefix`` is one
    string for all, or one per chat (the ``reasoned`` mode's own reasoning)."""
    from tasks.lm.modeling import render_chat

    prefixes = [prefix] * len(messages) if isinstance(prefix, str) else list(prefix)
    if len(prefixes) != len(messages):
        raise ValueError(f"{len(messages)} chats but {len(prefixes)} prefixes")
    return [render_chat(tokenizer, list(m), add_generation_prompt=True) + pre + f"<{tag}>"
            for m, pre in zip(messages, prefixes)]


def reasoning(completion: str, tag: str = "answer") -> tuple[str, bool]:
    r"""The reasoning of a completion, as the text an answer follows, and whether it was closed.

    What comes before ``<tag>``; a completion that never closed its ``<think>`` (an untrained
    model, or one cut by ``max_new_tokens``) is closed here so the options are still scored after
    the same marks SFT trained on, and the problem is counted as not closed.

    >>> reasoning("<think>\nB cell markers.\n</think>\n<answer>B cell</answer>")
    ('<think>\nB cell markers.\n</think>\n', True)
    >>> reasoning("<think>\nB cell markers")
    ('<think>\nB cell markers\n</think>\n', False)
    """
    head = completion.split(f"<{tag}>", 1)[0]
    end = f"</{THINK_TAG}>"
    if end in head:
        return head.split(end, 1)[0] + end + "\n", True
    return head.rstrip("\n") + f"\n{end}\n", False


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def boundary_mismatches(tokenizer: Any, context_texts: Sequence[str],
                        options: Sequence[Sequence[str]], tag: str = "answer") -> int:
    """How many (context, option) pairs tokenise differently whole than as context + continuation
    tokenised separately (0 when the boundary is an added token, as with our tag tokens)."""
    bad = 0
    for ctx, opts in zip(context_texts, options):
        c = _ids(tokenizer, ctx)
        for o in opts:
            cont = continuation(o, tag)
            bad += _ids(tokenizer, ctx + cont) != c + _ids(tokenizer, cont)
    return bad


@dataclass
class OptionScore:
    logprob: float  # summed over the continuation's tokens (option text + closing tag)
    n_tokens: int


def _parts(model: Any) -> tuple[Any, Any]:
    """(the decoder stack without the head, the LM head)."""
    return model.base_model, model.get_output_embeddings()


def _logprobs_of(head: Any, hidden: Any, targets: Any) -> Any:
    """log P(target) for hidden states (..., H) and target ids (...), in float32."""
    import torch

    logits = head(hidden).float()
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def score_options(model: Any, tokenizer: Any, context_texts: Sequence[str],
                  options: Sequence[Sequence[str]], tag: str = "answer",
                  batch_size: int | None = None, max_rows: int = 64) -> list[list[OptionScore]]:
    """Summed log-probability of each option's continuation after its context (see module notes).

    ``batch_size`` contexts run together (default 1 on CPU, 8 on CUDA); their options continue
    from the cache in chunks of at most ``max_rows`` rows (memory: a row holds a copy of its
    context's cache).
    """
    import torch
    from transformers import DynamicCache

    if len(context_texts) != len(options):
        raise ValueError(f"{len(context_texts)} contexts but {len(options)} option lists")
    base, head = _parts(model)
    device = next(model.parameters()).device
    batch_size = batch_size or (8 if device.type == "cuda" else 1)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ctx_ids = [_ids(tokenizer, c) for c in context_texts]
    cont_ids = [[_ids(tokenizer, continuation(o, tag)) for o in opts] for opts in options]
    if any(not c for c in ctx_ids):
        raise ValueError("a context encodes to no tokens")
    out: list[list[OptionScore]] = [[] for _ in context_texts]
    order = sorted(range(len(ctx_ids)), key=lambda i: len(ctx_ids[i]))  # less padding
    model.eval()
    with torch.inference_mode():
        for first in range(0, len(order), batch_size):
            batch = [i for i in order[first:first + batch_size] if options[i]]
            if not batch:
                continue
            lengths = torch.tensor([len(ctx_ids[i]) for i in batch], device=device)
            width = int(lengths.max())
            ids = torch.full((len(batch), width), pad, dtype=torch.long, device=device)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(batch):  # right padding: each context keeps positions 0..n-1
                ids[row, :len(ctx_ids[i])] = torch.tensor(ctx_ids[i], device=device)
                mask[row, :len(ctx_ids[i])] = 1
            cache = DynamicCache(config=model.config)
            # no mask needed here: padding is on the right, so causal attention keeps every real
            # position off the pads (the pads' own keys are masked out in the continuation pass)
            hidden = base(input_ids=ids, past_key_values=cache, use_cache=True).last_hidden_state
            last = hidden[torch.arange(len(batch), device=device), lengths - 1]  # (B, H)
            rows = [(r, i, k) for r, i in enumerate(batch) for k in range(len(options[i]))]
            for start in range(0, len(rows), max_rows):
                chunk = rows[start:start + max_rows]
                src = torch.tensor([r for r, _, _ in chunk], device=device)
                conts = [cont_ids[i][k] for _, i, k in chunk]
                cwidth = max(len(c) for c in conts)
                cids = torch.full((len(chunk), cwidth), pad, dtype=torch.long, device=device)
                cmask = torch.zeros_like(cids)
                for row, c in enumerate(conts):
                    cids[row, :len(c)] = torch.tensor(c, device=device)
                    cmask[row, :len(c)] = 1
                rows_cache = DynamicCache(config=model.config)
                for layer_idx, layer in enumerate(cache.layers):
                    rows_cache.update(layer.keys[src], layer.values[src], layer_idx)
                positions = lengths[src].unsqueeze(1) + torch.arange(cwidth, device=device)
                # continuations are right-padded too: a mask is needed only over context pads
                padded = bool((lengths[src] < width).any())
                chidden = base(input_ids=cids,
                               attention_mask=torch.cat([mask[src], cmask], dim=1) if padded else None,
                               position_ids=positions, past_key_values=rows_cache,
                               use_cache=True).last_hidden_state
                # token 0 is predicted by the context's last position, token j by continuation j-1
                first_lp = _logprobs_of(head, last[src], cids[:, 0])
                rest_lp = (_logprobs_of(head, chidden[:, :-1], cids[:, 1:]) * cmask[:, 1:]).sum(1) \
                    if cwidth > 1 else torch.zeros_like(first_lp)
                total = (first_lp + rest_lp).cpu()
                for row, (_, i, k) in enumerate(chunk):
                    out[i].append((k, OptionScore(float(total[row]), len(conts[row]))))
    return [[s for _, s in sorted(scores, key=lambda t: t[0])] for scores in out]


def naive_scores(model: Any, tokenizer: Any, context_texts: Sequence[str],
                 options: Sequence[Sequence[str]], tag: str = "answer") -> list[list[OptionScore]]:
    """The reference: each context+continuation token sequence in its own forward pass, no cache."""
    import torch

    device = next(model.parameters()).device
    out = []
    model.eval()
    with torch.inference_mode():
        for ctx, opts in zip(context_texts, options):
            c = _ids(tokenizer, ctx)
            scores = []
            for o in opts:
                t = _ids(tokenizer, continuation(o, tag))
                ids = torch.tensor([c + t], device=device)
                logp = torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)[0]
                pos = torch.arange(len(c) - 1, len(c) + len(t) - 1, device=device)
                scores.append(OptionScore(float(logp[pos, torch.tensor(t, device=device)].sum()), len(t)))
            out.append(scores)
    return out


def _argmax(values: Sequence[float]) -> int:
    return int(np.argmax(np.asarray(values)))  # first of ties


def loglik_eval(model: Any, tokenizer: Any, problems: pd.DataFrame, context_texts: Sequence[str],
                labels: Mapping[str, Sequence[str]] | None = None, tag: str = "answer",
                batch_size: int | None = None, max_rows: int = 64) -> pd.DataFrame:
    """One row per problem (``problems`` and ``context_texts`` aligned; build the contexts with
    :func:`contexts`): options, gold index, per-option ``logprob`` and ``logprob_norm``, ``pred``,
    ``pred_norm``, ``correct``, ``correct_norm``; not scorable problems keep their row with
    ``scorable=False``, a ``reason`` and no predictions."""
    if len(problems) != len(context_texts):
        raise ValueError(f"{len(problems)} problems but {len(context_texts)} contexts")
    opts = [problem_options(r, labels) for r in problems.to_dict("records")]
    scored = score_options(model, tokenizer, context_texts,
                           [o.options if o.scorable else () for o in opts], tag=tag,
                           batch_size=batch_size, max_rows=max_rows)
    rows = []
    for r, o, s in zip(problems.to_dict("records"), opts, scored):
        row = {"problem_id": r["id"], "family": r["family"], "answer_type": r["answer_type"],
               "scorable": o.scorable, "reason": o.reason, "options": list(o.options),
               "gold": o.gold, "n_options": len(o.options)}
        if o.scorable:
            lp = [x.logprob for x in s]
            norm = [x.logprob / max(len(opt), 1) for x, opt in zip(s, o.options)]
            pred, pred_norm = _argmax(lp), _argmax(norm)
            row.update(logprob=lp, logprob_norm=norm, n_tokens=[x.n_tokens for x in s],
                       pred=pred, pred_norm=pred_norm, correct=o.gold == pred,
                       correct_norm=o.gold == pred_norm)
        else:
            row.update(logprob=None, logprob_norm=None, n_tokens=None, pred=None, pred_norm=None,
                       correct=None, correct_norm=None)
        rows.append(row)
    return pd.DataFrame(rows)


def score_modes(model: Any, tokenizer: Any, problems: pd.DataFrame,
                chats: Mapping[str, Sequence[Sequence[Mapping[str, str]]]], completions: Sequence[str],
                labels: Mapping[str, Sequence[str]] | None = None, tag: str = "answer",
                modes: Sequence[str] = MODES) -> pd.DataFrame:
    """:func:`loglik_eval` rows in each of ``modes`` (a ``mode`` column first). ``chats`` maps each
    mode to the problems' chats (``problem_messages``: ``direct`` under the answer-only system
    prompt, ``reasoned`` under the reasoning one); ``direct`` scores right after the prompt,
    ``reasoned`` after the checkpoint's own reasoning taken from ``completions`` (its greedy replies
    to the reasoning chats); ``reasoning_closed`` says whether that reasoning was closed."""
    own = [reasoning(c, tag) for c in completions]
    prefixes = {"direct": "", "reasoned": [r for r, _ in own]}
    parts = []
    for mode in modes:
        part = loglik_eval(model, tokenizer, problems,
                           contexts(tokenizer, chats[mode], tag, prefixes[mode]), labels, tag)
        part.insert(0, "mode", mode)
        part["reasoning_closed"] = True if mode == "direct" else [closed for _, closed in own]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def score_checkpoint(name: str, folder: str, problems: pd.DataFrame,
                     chats: Mapping[str, Sequence[Sequence[Mapping[str, str]]]],
                     completions: Sequence[str] | None, labels: Mapping[str, Sequence[str]] | None = None,
                     tag: str = "answer") -> pd.DataFrame:
    """:func:`score_modes` of the checkpoint in ``folder``, a ``checkpoint`` column first: every mode
    given its completions, ``direct`` alone without. On the GPU when there is one."""
    import torch

    from tasks.lm.modeling import load_model, load_tokenizer

    tokenizer = load_tokenizer(folder)
    model = load_model(folder, tokenizer).eval()
    if torch.cuda.is_available():
        model = model.to("cuda")
    modes = MODES if completions is not None else ("direct",)
    rows = score_modes(model, tokenizer, problems, chats, completions or [], labels, tag, modes)
    rows.insert(0, "checkpoint", name)
    return rows


def loglik_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per family: problems, scorable, not scorable, chance (mean 1/n options), acc and acc_norm
    with Wilson 95% intervals (:mod:`tasks.evaluate.stats`).

    >>> df = pd.DataFrame({"family": ["f", "f", "g"], "scorable": [True, True, False],
    ...                    "n_options": [2, 4, 0], "correct": [True, False, None],
    ...                    "correct_norm": [True, True, None]})
    >>> loglik_summary(df)[["family", "n", "scorable", "not_scorable", "chance", "acc", "acc_norm"]]
      family  n  scorable  not_scorable  chance  acc  acc_norm
    0      f  2         2             0   0.375  0.5       1.0
    1      g  1         0             1     NaN  NaN       NaN
    """
    from tasks.evaluate.stats import wilson

    rows = []
    for family, g in results.groupby("family", sort=True):
        s = g[g["scorable"].astype(bool)]
        row = {"family": family, "n": len(g), "scorable": len(s), "not_scorable": len(g) - len(s),
               "chance": float((1 / s["n_options"]).mean()) if len(s) else float("nan")}
        for col, name in (("correct", "acc"), ("correct_norm", "acc_norm")):
            k = int(s[col].astype(bool).sum())
            low, high = wilson(k, len(s))
            row.update({name: k / len(s) if len(s) else float("nan"),
                        f"{name}_low": low, f"{name}_high": high})
        rows.append(row)
    return pd.DataFrame(rows)
