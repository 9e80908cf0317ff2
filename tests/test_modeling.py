import json

import pytest
import torch

from tasks.lm import modeling
from tasks.lm.modeling import CHAT_TOKENS, TAG_TOKENS, load_model, load_tokenizer, render_chat
from tasks.common.params import BaseModelParams
from tests.conftest import toy_texts


def test_tag_and_chat_tokens_are_single_tokens(tiny_base):
    tok = load_tokenizer(tiny_base[0])
    for tag in TAG_TOKENS + CHAT_TOKENS:
        ids = tok(f"x{tag}y", add_special_tokens=False)["input_ids"]
        assert tag in tok.convert_ids_to_tokens(ids), tag
        assert tok(tag, add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids(tag)]


@pytest.mark.parametrize("text", [
    "<cell>CD3D, CD8A, MS4A1</cell>  two  spaces\nand a newline\t tab",
    "<dna>ACGTNACGT</dna><protein>MKV</protein> unicode: α-synuclein – ß",
    "<think>step 1</think><answer>{\"OMIM_ID\": \"123\"}</answer><solution>x</solution>",
])
def test_tokenizer_round_trips_text(tiny_base, text):
    tok = load_tokenizer(tiny_base[0])
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_decoding_drops_chatml_but_keeps_tags(tiny_base):
    tok = load_tokenizer(tiny_base[0])
    ids = tok("<|im_start|>assistant\n<think>a</think><answer>b</answer><|im_end|><|endoftext|>",
              add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "assistant\n<think>a</think><answer>b</answer>"


def test_chat_template_marks_assistant_spans(tiny_base):
    tok = load_tokenizer(tiny_base[0])
    messages = [{"role": "system", "content": "You are a biologist."},
                {"role": "user", "content": "Cell type of <cell>CD3D, CD8A</cell>?"},
                {"role": "assistant", "content": "<think>T cell genes</think><answer>T cell</answer>"}]
    text = render_chat(tok, messages, add_generation_prompt=False)
    assert text.startswith("<|im_start|>system\nYou are a biologist.<|im_end|>\n<|im_start|>user\n")
    assert text.endswith("<|im_start|>assistant\n<think>T cell genes</think><answer>T cell</answer><|im_end|>\n")
    prompt = render_chat(tok, messages[:2])
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert masked, "assistant-only loss would train on nothing"
    assert tok.decode(masked) == "<think>T cell genes</think><answer>T cell</answer><|im_end|>"


def test_model_builds_with_expected_parameter_count(tiny_base):
    out, params = tiny_base
    model = load_model(out)
    tok = load_tokenizer(out)
    assert model.config.model_type == "qwen3"
    assert model.config.num_hidden_layers == params.layers
    assert model.config.vocab_size == len(tok)
    assert sum(p.numel() for p in model.parameters()) == modeling.expected_parameters(params, len(tok))
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()


def test_default_size_is_tiny():
    params = BaseModelParams()
    assert 1_000_000 <= modeling.expected_parameters(params, params.vocab_size + 15) <= 5_000_000


def test_bad_head_split_is_refused():
    tok = modeling.train_tokenizer(toy_texts(20), 300)
    with pytest.raises(ValueError, match="must divide"):
        modeling.model_config(BaseModelParams(hidden=100, heads=3), tok)


def test_named_model_is_a_pointer_followed_on_load(tiny_base, tmp_path, monkeypatch):
    """A hub name is recorded, not copied; loading passes name and revision to from_pretrained.
    No hub here, so the 'name' is a local folder; the plumbing is the one a hub name takes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = str(tiny_base[0])
    info = modeling.save_base(BaseModelParams(source=source, revision="main"), tmp_path / "base", None, 0)
    assert info == {"source": source}
    pointer = json.loads((tmp_path / "base" / modeling.POINTER).read_text())
    assert pointer == {"source": source, "revision": "main"}
    assert sorted(p.name for p in (tmp_path / "base").iterdir()) == [modeling.POINTER]

    seen = []
    for cls in (AutoModelForCausalLM, AutoTokenizer):
        real = cls.from_pretrained

        def spy(name, *args, _real=real, **kwargs):
            seen.append((name, kwargs))
            return _real(name, *args, **kwargs)
        monkeypatch.setattr(cls, "from_pretrained", spy)
    model = load_model(tmp_path / "base")
    assert {name for name, _ in seen} == {source}
    assert all(kw.get("revision") == "main" and not kw.get("trust_remote_code") for _, kw in seen)
    assert isinstance(model, torch.nn.Module)


def test_loading_a_foreign_tokenizer_adds_missing_tags(tmp_path):
    """A hub tokenizer lacking our tags gets them (unsplit) and our chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    foreign = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>")
    foreign.save_pretrained(tmp_path)
    tok = load_tokenizer(tmp_path)
    assert all(t in tok.get_vocab() for t in TAG_TOKENS + CHAT_TOKENS)
    assert tok.chat_template == modeling.CHAT_TEMPLATE
    assert tok.pad_token == modeling.PAD
