"""The per-verifier reward functions drive TRL's GRPOTrainer as they are (tiny model, one step)."""
import pytest


@pytest.mark.slow
def test_grpo_trainer_runs_and_logs_each_verifier(tmp_path):
    from datasets import Dataset
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from tasks.verifiers.compose import trl_reward_setup
    from tasks.verifiers.fitted import fit_verifiers, load_verifiers
    from tests.verifier_fixtures import SETTINGS, problems, write_corpus

    table = problems()
    fit_verifiers(table, write_corpus(tmp_path / "corpus"), tmp_path / "fitted", SETTINGS)
    setup = trl_reward_setup(load_verifiers(tmp_path / "fitted", SETTINGS), SETTINGS)
    rows = table[table["split"] == "train"].groupby("family").head(2).reset_index(drop=True)
    dataset = Dataset.from_pandas(rows[["id", "family", "prompt", "answer", "answer_type", "choices",
                                        "evidence", "source_ids"]])

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer, bpe.decoder = pre_tokenizers.ByteLevel(), decoders.ByteLevel()
    bpe.train_from_iterator(list(table["prompt"]) + ["<think></think><answer></answer>"],
                            trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<eos>", "<pad>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>",
                                        unk_token="<unk>")
    model = Qwen3ForCausalLM(Qwen3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                         head_dim=16))
    args = GRPOConfig(output_dir=str(tmp_path / "grpo"), use_cpu=True, per_device_train_batch_size=8,
                      num_generations=4, max_completion_length=8, max_steps=1, logging_steps=1,
                      report_to=[], save_strategy="no", seed=0,
                      reward_weights=setup["reward_weights"],
                      multi_objective_aggregation=setup["multi_objective_aggregation"])
    trainer = GRPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          reward_funcs=setup["reward_funcs"])
    trainer.train()
    logged = trainer.state.log_history[0]
    for name in SETTINGS.weights:
        assert f"rewards/{name}/mean" in logged
    assert logged["rewards/format/mean"] == 0.0  # an untrained model writes no tags
