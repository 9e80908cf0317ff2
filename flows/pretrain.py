"""Stage ``pretrain``: the base model, then continued causal-LM pretraining on the corpus.

Two outputs in one stage, because the embedded tokenizer is trained on the same texts the model is
pretrained on: ``models/base`` (a tiny Qwen3 + BPE tokenizer built from ``pretrain.model``, or a
pointer to a hub model) and ``models/pretrain`` (the trained model, always a full HF folder).

With ``pretrain.drills.token_budget`` set, a second phase continues the pretrained model at a
constant rate on copy drills mixed with corpus blocks (``tasks/train/drills.py``), and the lookup
is measured on unseen drills before and after it (metrics.json ``drills``).

Training runs in a child process (``tasks/train/pretrain.py``) through the training harness
(``tasks/train/harness.py``), on the layout of ``base`` (``accelerate_config``, ``gpus``). Packed
blocks and checkpoints live in ``scratch/pretrain/<key>/``, where the key hashes the params, the
layout and the data: a killed run rerun with the same inputs resumes from its last checkpoint; any
change starts afresh (and the stale checkpoints are deleted). The folder is deleted once the model
is saved.
"""
from __future__ import annotations

import flows  # noqa: F401  (sets PREFECT_HOME before Prefect is imported)

import hashlib
import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from tasks.lm import modeling, sources
from tasks.train import drills, harness, packing
from tasks.common.errors import InputError, run_stage
from tasks.lm.generate import generate
from tasks.common.params import load_params
from tasks.train.pretrain import perplexity
from tasks.common import schemas
from tasks.common.storage import atomic_path, read_table, write_csv, write_json
from tasks.common.tracking import stage_run

DOCUMENTS = Path("data/corpus/documents.parquet")
TEXTIFY = Path("data/textify")
PROBLEMS = Path("data/problems/problems.parquet")
BASE = Path("models/base")
MODEL = Path("models/pretrain")
REPORTS = Path("reports/pretrain")

gather_texts = task(packing.gather_texts, cache_policy=NO_CACHE)
save_base = task(modeling.save_base, cache_policy=NO_CACHE)
tokenize_and_pack = task(packing.tokenize_and_pack, cache_policy=NO_CACHE)
train_child = task(harness.run_child, cache_policy=NO_CACHE)


def _curves(history: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.DataFrame([{"step": h["step"], "train_loss": h["loss"]} for h in history if "loss" in h])
    evals = pd.DataFrame([{"step": h["step"], "eval_loss": h["eval_loss"]}
                          for h in history if "eval_loss" in h]).drop_duplicates("step", keep="last")
    evals["eval_perplexity"] = evals["eval_loss"].map(perplexity)
    return train, evals


def drill_phase(p, work: Path, corpus_model: Path, out: Path, tokenizer, corpus_blocks, heldout: Path,
                seed: int, base, run_id: str) -> tuple[dict, list[dict]]:
    """Continue ``corpus_model`` (and its ``tokenizer``, the base's) into ``out`` on drills mixed with
    corpus blocks; the phase's metrics (the lookup on ``probe_drills`` unseen drills before and
    after) and its log history."""
    d = p.drills
    n_blocks = -(-d.token_budget // p.block_size)
    # a 4-name drill is about 45 tokens: enough for a phase of drills alone (share 1)
    texts = drills.drills(d.probe_drills + n_blocks * p.block_size // 40, seed, d.options)
    probe, train = texts[:d.probe_drills], pd.Series(texts[d.probe_drills:])
    drill_blocks, drill_tokens = tokenize_and_pack(train, tokenizer, p.block_size, seed)
    phase = work / "drills"
    phase.mkdir(exist_ok=True)
    packing.save_blocks(drills.mix_blocks(drill_blocks, corpus_blocks, d.share, n_blocks, seed),
                        phase / "train.npy")
    before = drills.copy_accuracy(modeling.load_model(corpus_model, tokenizer).eval(), tokenizer, probe)
    params = p.model_copy(update={"token_budget": d.token_budget, "learning_rate": d.learning_rate,
                                  "lr_scheduler": "constant_with_warmup", "warmup_ratio": 0.0})
    trained = train_child("pretrain", phase, {
        "params": params.model_dump(mode="json"), "base_dir": str(corpus_model), "output_dir": str(out),
        "train_blocks": str(phase / "train.npy"), "heldout_blocks": str(heldout), "phase": "drills",
        "checkpoint_dir": str(phase / "checkpoints"), "curve_path": str(phase / "history.json")},
        base, run_id)
    after = drills.copy_accuracy(modeling.load_model(out, tokenizer).eval(), tokenizer, probe)
    history = json.loads((phase / "history.json").read_text())
    # the phase reads share x token_budget of the drill tokens generated
    return {**trained, "drill_tokens_generated": drill_tokens, "copy_before": before,
            "copy_after": after}, history


def check_base(model) -> None:
    """A base model that cannot be had stops the stage in one line, before any work."""
    if model.source == modeling.BUILD:
        return
    try:
        sources.check_available(model.source, model.revision)
    except sources.ModelUnavailable as err:
        raise InputError("params.yaml", "pretrain.model.source", str(err)) from None


@flow(name="pretrain")
def pretrain_flow() -> None:
    params = load_params(require=("pretrain",))
    p, seed = params.pretrain, params.base.seed
    check_base(p.model)
    with stage_run("pretrain", params) as run:
        texts = gather_texts(DOCUMENTS, TEXTIFY, p.textify_tables)
        # test problems' cells, sequences and windows are never pretrained on
        problems = read_table(PROBLEMS, schemas.Problems)
        texts, dropped_test = packing.drop_test_texts(texts, problems)
        packing.assert_no_test_text(texts, problems)
        texts["heldout"] = packing.heldout_mask(texts["doc_id"], p.heldout_fraction, seed)
        heldout_texts = texts.loc[texts["heldout"], "text"]
        if heldout_texts.empty:
            raise InputError(DOCUMENTS, "table", f"no document fell in the held-out "
                             f"{p.heldout_fraction:.0%}: raise pretrain.heldout_fraction")
        # the held-out slice keeps the corpus's own mix, so its loss compares across weightings
        try:
            weighted = packing.weight_sources(texts.loc[~texts["heldout"]], p.source_weights, seed)
        except KeyError as err:
            raise InputError("params.yaml", "pretrain.source_weights", err.args[0]) from None
        train_texts = weighted["text"]

        with atomic_path(BASE) as out:
            base_info = save_base(p.model, out, train_texts, seed)
        tokenizer = modeling.load_tokenizer(BASE)
        train_blocks, train_tokens = tokenize_and_pack(train_texts, tokenizer, p.block_size, seed)
        heldout_blocks, heldout_tokens = tokenize_and_pack(heldout_texts, tokenizer, p.block_size, seed)

        # the key: the params, the base model and the packed blocks (the child's data)
        blocks = [hashlib.sha256(b.tobytes()).hexdigest() for b in (train_blocks, heldout_blocks)]
        work = harness.prepare("pretrain", params, extra={"base": base_info, "blocks": blocks})
        packing.save_blocks(train_blocks, work / "train.npy")
        packing.save_blocks(heldout_blocks, work / "heldout.npy")
        with atomic_path(MODEL) as out:
            corpus_model = work / "corpus_model" if p.drills.token_budget else out
            trained = train_child("pretrain", work, {
                "params": p.model_dump(mode="json"), "base_dir": str(BASE), "output_dir": str(corpus_model),
                "train_blocks": str(work / "train.npy"), "heldout_blocks": str(work / "heldout.npy"),
                "checkpoint_dir": str(work / "checkpoints"), "curve_path": str(work / "history.json")},
                params.base, run.run_id)
            history = json.loads((work / "history.json").read_text())
            drilled = None
            if p.drills.token_budget:
                drilled, drill_history = drill_phase(p, work, corpus_model, out, tokenizer, train_blocks,
                                                     work / "heldout.npy", seed, params.base, run.run_id)
                # one curve: the drill phase's steps follow the corpus phase's
                history += [{**h, "step": h["step"] + trained["steps"]} for h in drill_history[1:]]
        shutil.rmtree(work)

        sources = texts.groupby(["source", "heldout"]).size().unstack(fill_value=0)
        copies = weighted["source"].value_counts()
        metrics = {
            "base": base_info, **trained,
            "documents": {"train": int((~texts["heldout"]).sum()), "heldout": int(texts["heldout"].sum()),
                          "dropped_test_inputs": dropped_test},
            "tokens": {"train": train_tokens, "heldout": heldout_tokens},
            "epochs": trained["tokens_trained"] / train_tokens,
            "textify_tables_found": sorted({s.split(":")[1] for s in texts["source"]
                                            if s.startswith("textify:")}),
            "per_source": {s: {"train": int(r.get(False, 0)), "heldout": int(r.get(True, 0)),
                               "train_weighted": int(copies.get(s, 0))}
                           for s, r in sources.iterrows()},
            "drills": drilled,
        }
        # the stage's model is the last phase's: its held-out loss is the stage's
        final = drilled or trained
        train_curve, eval_curve = _curves(history)
        write_csv(train_curve, REPORTS / "loss.csv")
        write_csv(eval_curve, REPORTS / "eval_loss.csv")
        write_json(metrics, REPORTS / "metrics.json")
        summary = {"eval_loss": round(final["eval_loss_after"], 4), "train_loss": round(final["train_loss"], 4)}
        if drilled:
            summary["drill_copy_whole"] = drilled["copy_after"]["whole"]
        write_json(summary, REPORTS / "summary.json")
        run.log_metrics({k: v for k, v in metrics.items() if k != "per_source"})
        run.publish(summary)

        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(train_curve["step"], train_curve["train_loss"], label="train")
        ax.plot(eval_curve["step"], eval_curve["eval_loss"], marker="o", label="held-out")
        ax.set(xlabel="step", ylabel="loss", title="pretrain loss")
        ax.legend()
        fig.tight_layout()
        run.log_figure(fig, "pretrain_loss.png")
        plt.close(fig)

        starts = [t[:80] for t in heldout_texts.head(4)]
        samples = generate(MODEL, starts, max_new_tokens=48, temperature=0.0, seed=seed,
                           engine="transformers", settings=params.generation,
                           gpus=min(params.base.gpus, 1))
        run.log_text("\n\n".join(f"PROMPT: {s}\nCOMPLETION: {c[0]}" for s, c in zip(starts, samples)),
                     "samples/pretrain_completions.txt")


if __name__ == "__main__":
    run_stage(pretrain_flow)
