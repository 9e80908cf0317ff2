"""Typed view of ``params.yaml``: one model per stage, parsed once per flow.

Every section may carry ``profiles: {<name>: {...}}``; when ``base.profile`` names one, its keys
override the section's own (nested dicts merge). Unknown or mistyped keys fail with the key's
dotted path, so a typo never silently falls back to a default.

>>> p = parse_params({"base": {"seed": 1, "profile": "smoke"}})
>>> (p.base.seed, p.base.profile)
(1, 'smoke')
>>> _merge({"dna": {"window": 256, "stride": 256}}, {"dna": {"stride": 128}})
{'dna': {'window': 256, 'stride': 128}}
>>> parse_params({"base": {"seed": 1, "profil": "x"}})
Traceback (most recent call last):
...
tasks.params.ParamsError: params.yaml: base.profil: unknown key
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
    target_sum: float = Field(1e4, gt=0, description="normalize_total target before log1p.")
    chunk_size: int = Field(20000, gt=0, description="Cells read per chunk from a backed file.")
    on_bad_record: BadRecord = "error"


class Dna(Section):
    sources: list[str] = Field(description="FASTA/GenBank files or folders; pkg:relpath for shipped data.")
    window: int = Field(256, gt=0, description="Window length in bases.")
    stride: int = Field(256, gt=0, description="Step between window starts.")
    min_window: int = Field(64, gt=0, description="A shorter last window is dropped.")
    max_windows_per_record: int = Field(200, gt=0)
    on_bad_record: BadRecord = "error"


class Proteins(Section):
    sources: list[str] = Field(description="FASTA files or folders; pkg:relpath for shipped data.")
    max_length: int = Field(2000, gt=0, description="Longer sequences are dropped with a count.")
    on_bad_record: BadRecord = "error"


class Textify(Section):
    cells: Cells
    dna: Dna
    proteins: Proteins


class Params(Section):
    base: Base = Base()
    corpus: Corpus | None = None
    textify: Textify | None = None

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


def parse_params(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """Validate a params dict, applying the active profile's overrides per section."""
    raw = dict(raw or {})
    profile = (raw.get("base") or {}).get("profile", "default")
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


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml (the only configuration source of every stage)."""
    path = Path(path)
    with path.open() as fh:
        return parse_params(yaml.safe_load(fh), source=str(path))
