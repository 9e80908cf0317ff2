"""Chat-by-chat attention over padding-free rows: the same outputs and gradients as the dense
block-diagonal mask, each chat as if it were alone, and padding or a cache refused."""
import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

from tasks.train.chat_attention import NAME, use_chat_attention


def model(kind="qwen3"):
    """A tiny Qwen3 (the default profile's model) or Llama (SmolLM2, the small profile's)."""
    torch.manual_seed(0)
    config, causal_lm = {"qwen3": (Qwen3Config, Qwen3ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM)}[kind]
    m = causal_lm(config(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64))
    m.config.use_cache = False  # as under the Trainer: a cache turns transformers' packed mask off
    return m


def packed(lengths, width):
    """Rows of chats end to end, each row filled to ``width`` with a padding chat of its own."""
    positions = [torch.cat([torch.arange(n) for n in row] + [torch.arange(width - sum(row))])
                 for row in lengths]
    return torch.randint(0, 50, (len(lengths), width), generator=torch.Generator().manual_seed(1)), \
        torch.stack(positions)


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
def test_each_chat_sees_itself_alone_and_gradients_match_the_dense_mask(kind):
    m = model(kind)
    ids, positions = packed([[5, 9, 3], [12, 4]], width=20)
    dense = m(input_ids=ids, position_ids=positions).logits
    dense.sum().backward()
    dense_grads = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()

    assert use_chat_attention(m) and m.config._attn_implementation == NAME
    chats = m(input_ids=ids, position_ids=positions).logits
    chats.sum().backward()
    assert torch.allclose(chats, dense, atol=1e-5)
    for ours, theirs in zip((p.grad for p in m.parameters()), dense_grads):
        assert torch.allclose(ours, theirs, atol=1e-5)
    with torch.no_grad():  # the second chat of row 0, run on its own
        alone = m(input_ids=ids[:1, 5:14]).logits
    assert torch.allclose(chats[0, 5:14], alone[0], atol=1e-5)


def test_padding_and_generation_are_refused():
    m = model()
    use_chat_attention(m)
    ids = torch.randint(0, 50, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    with pytest.raises(ValueError, match="padding"):
        m(input_ids=ids, attention_mask=mask)
    with pytest.raises(ValueError, match="cache"):
        m.generate(input_ids=ids[:1], max_new_tokens=2, use_cache=True, do_sample=False)


def test_other_kernels_are_left_alone_and_the_choice_is_not_saved(tmp_path):
    m = model()
    m.set_attn_implementation("eager")
    assert not use_chat_attention(m) and m.config._attn_implementation == "eager"
    m = model()
    use_chat_attention(m)
    m.save_pretrained(tmp_path)
    assert NAME not in json.dumps(json.loads((tmp_path / "config.json").read_text()))
