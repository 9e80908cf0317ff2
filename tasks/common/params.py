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
from typing import Any

import yaml
from pydantic import Field, ValidationError

# the sections live in two modules by stage group; imported here so callers need only this one
from tasks.common.params_data import (Annotate, Cells, Corpus, Dna, Limit, Problems, Proteins,  # noqa: F401
                                      Section, Textify, Variants)
from tasks.common.params_train import (BaseModelParams, Evaluate, Generation, Grpo,  # noqa: F401
                                       Lora, Pretrain, Registry, Sft, SftPhase, Verifiers)

PARAMS_FILE = Path("params.yaml")


class ParamsError(ValueError):
    """A key of params.yaml is unknown, missing or of the wrong type."""


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
