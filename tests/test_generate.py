import math

import pytest
import torch

from tasks.lm.generate import choose_engine, generate, next_token_probs, renormalise
from tasks.lm.modeling import load_model, load_tokenizer, render_chat
from tasks.common.params import Generation

CHATS = [[{"role": "user", "content": f"Which cell type expresses <cell>CD3D, CD8A</cell>? {i}"}]
         for i in range(5)]


def test_greedy_transformers_generation_is_deterministic(tiny_base):
    model_dir = tiny_base[0]
    settings = Generation(batch_size=2)
    first = generate(model_dir, CHATS, max_new_tokens=12, n=2, engine="transformers", settings=settings)
    again = generate(model_dir, CHATS, max_new_tokens=12, n=2, engine="transformers", settings=settings)
    assert first == again
    assert len(first) == len(CHATS) and all(len(c) == 2 and c[0] == c[1] for c in first)
    assert any(c[0] for c in first)


def test_greedy_matches_a_plain_argmax_loop(tiny_base):
    """Batching with left padding must not change what a single prompt generates."""
    model_dir = tiny_base[0]
    tok = load_tokenizer(model_dir)
    model = load_model(model_dir, tok).eval()
    ids = tok(render_chat(tok, CHATS[3]), return_tensors="pt", add_special_tokens=False)["input_ids"]
    stop = {tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")}
    new = []
    with torch.inference_mode():
        for _ in range(8):
            nxt = int(model(ids).logits[0, -1].argmax())
            if nxt in stop:
                break
            new.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    batched = generate(model_dir, CHATS, max_new_tokens=8, engine="transformers",
                       settings=Generation(batch_size=5))
    assert batched[3][0] == tok.decode(new, skip_special_tokens=True)


def test_sampling_is_seeded(tiny_base):
    model_dir = tiny_base[0]
    run = lambda seed: generate(model_dir, ["<cell>CD3D"], max_new_tokens=10, temperature=1.0,  # noqa: E731
                                n=4, seed=seed, engine="transformers")
    assert run(1) == run(1)
    assert len(run(1)[0]) == 4


def test_next_token_probs_match_the_softmax_and_renormalise(tiny_base):
    model_dir = tiny_base[0]
    tok = load_tokenizer(model_dir)
    candidates = ["<answer>", "<think>"]  # single tokens in every tokenizer we build
    probs = next_token_probs(model_dir, CHATS[:3], candidates, settings=Generation(batch_size=4))
    assert len(probs) == 3
    model = load_model(model_dir, tok).eval()
    ids = tok(render_chat(tok, CHATS[1]), return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        p = torch.softmax(model(ids).logits[0, -1], -1)
    for c in candidates:
        assert probs[1][c] == pytest.approx(float(p[tok.convert_tokens_to_ids(c)]), rel=1e-4)
    yes_no = next_token_probs(model_dir, CHATS[:2], ["yes", "no"])
    for row in yes_no:
        assert all(0 < v < 1 for v in row.values())
        assert math.isclose(sum(renormalise(row).values()), 1.0, rel_tol=1e-9)


def test_auto_engine_choice():
    s = Generation(vllm_min_tokens=20000)
    assert choose_engine(100 * 4 * 32, s) == "transformers"
    assert choose_engine(1000 * 4 * 32, s) == "vllm"
    assert choose_engine(10, s, engine="vllm") == "vllm"


@pytest.mark.slow
def test_vllm_generates_the_same_greedy_text(tiny_base):
    model_dir = tiny_base[0]
    settings = Generation(max_model_len=256)
    by_vllm = generate(model_dir, CHATS, max_new_tokens=12, n=2, engine="vllm", settings=settings)
    by_hf = generate(model_dir, CHATS, max_new_tokens=12, n=2, engine="transformers", settings=settings)
    assert len(by_vllm) == len(CHATS) and all(len(c) == 2 for c in by_vllm)
    assert any(c[0] for c in by_vllm)
    assert by_vllm == by_hf
    sampled = generate(model_dir, CHATS[:2], max_new_tokens=12, temperature=1.0, n=3, seed=5,
                       engine="vllm", settings=settings)
    assert [len(c) for c in sampled] == [3, 3]
    # each prompt samples from its own seed: another prompt in the batch changes nothing
    more = generate(model_dir, [*CHATS[:2], "<cell>CD3D CD3E"], max_new_tokens=12, temperature=1.0,
                    n=3, seed=5, engine="vllm", settings=settings)
    assert more[:2] == sampled
    # where vLLM's engine core runs (this child or a process of its own) changes no token
    own_process = settings.model_copy(update={"vllm_engine_process": True})
    assert generate(model_dir, CHATS[:2], max_new_tokens=12, temperature=1.0, n=3, seed=5,
                    engine="vllm", settings=own_process) == sampled
    assert len(set(sampled[0])) > 1  # the n samples of one prompt are not copies of one


def test_vllm_refuses_prompts_longer_than_its_context(tiny_base):
    with pytest.raises(ValueError, match="max_model_len"):
        generate(tiny_base[0], ["x" * 500], max_new_tokens=10, engine="vllm",
                 settings=Generation(max_model_len=64))
