"""``params.yaml`` sections of the data stages: corpus, textify, problems, annotate and limit.

Part of :mod:`tasks.common.params` (which parses the file and re-exports every section); also the
:class:`Section` base every section model shares.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    source: str = Field(description="An .h5ad path (read backed), a 10x Genomics .h5 file or "
                                    "matrix.mtx folder, or scanpy:<dataset>.")
    use_raw: bool = Field(True, description="Rank genes from adata.raw rather than adata.X.")
    layer: str | None = Field(None, description="Rank genes from adata.layers[NAME] (scverse keeps "
                              "counts in layers['counts']); needs use_raw: false.")
    gene_symbols: str | None = Field(None, description="var column holding the names written into "
                                     "sentences (CELLxGENE: feature_name); unset: var_names.")
    expect_counts: bool | None = Field(None, description="Check that the matrix holds counts (whole "
                                       "numbers), as normalize_total expects, and stop at the first "
                                       "value that is not, naming the layers. Unset: checked for files, "
                                       "not for scanpy:<dataset> (the shipped ones are log-normalised); "
                                       "false ranks the values as they are.")
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

    @model_validator(mode="after")
    def _one_matrix(self) -> "Cells":
        if self.layer is not None and self.use_raw:
            raise ValueError(f"layer {self.layer!r} and use_raw: true name two matrices; set use_raw: false")
        return self


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
    runner: Literal["local", "dask"] = Field("local", description="Where the cell chunks run: in the "
                                             "flow's process, or as Prefect tasks on a Dask cluster "
                                             "(prefect-dask), each worker writing its rows' part.")
    dask_address: str | None = Field(None, description="Scheduler of a running Dask cluster "
                                     "(tcp://host:8786); unset: a local cluster of dask_workers.")
    dask_workers: int = Field(2, gt=0, description="Processes of the local Dask cluster.")


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
                             "seeded random order, then the answer, stated once, in the answer tag "
                             "(what a small model can follow); full: every fact, an opening on "
                             "method and the teacher's conclusion.")
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


class CellTypeProblems(Section):
    cells_per_type: int = Field(70, gt=0, description="Labelled cells sampled per cell type (fewer where a type has fewer).")


class PerturbProblems(Section):
    train_pairs_per_line: int = Field(100, gt=0, description="Training pairs per (cell line, task), label-balanced.")
    test_genes_per_line: int = Field(10, gt=0, description="Downstream genes with both labels sampled per (cell line, task) for test.")
    test_pairs_per_gene: int = Field(6, ge=2, description="Test pairs per sampled gene, half of each label.")


class TfBindingProblems(Section):
    motifs: int = Field(300, gt=0, description="JASPAR motifs sampled (one TF name each).")
    train_windows: int = Field(1, gt=0, description="Planted-site problems per train motif, each its "
                               "own window, site and distractors; a test motif has one.")
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
    dna_windows: int = Field(600, ge=0, description="DNA windows asked GC bucket / length.")
    dna_length_every: int = Field(5, ge=1, description="One DNA window in k is asked its length, the others their GC bucket (balanced over the buckets): 2 halves them; 1 asks lengths only.")
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
