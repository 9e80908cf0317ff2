"""tasks.common.dispatch: accelerate child processes, the accelerate configs, and the Prefect `gpu` slots.

What runs here runs for real: a two-process CPU DDP all-reduce through ``launch``; the `gpu`
global concurrency limit on a real Prefect server (created by ``make gpu-slots``), with a second
holder waiting for the only slot and a crashing child giving it back. GPU-only configs are checked
the way ``accelerate launch`` reads them, down to the FSDP/DeepSpeed plugins they configure.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml

from tasks.common.dispatch import LaunchError, config_gpus, config_uses_cpu, launch
from tasks.common.params import parse_params
from tests.harness import PROJECT, VENV_BIN, api, prefect_server, project_env, start, stop

CONFIGS = PROJECT / "configs" / "accelerate"


def _launch_args(config: str, *extra: str):
    """Parse and validate a config exactly as ``accelerate launch`` does, without launching."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    args = launch_command_parser().parse_args(
        ["--config_file", str(CONFIGS / config), *extra, "-m", "tests.ddp_child"])
    args, defaults, _ = _validate_launch_command(args)
    return args, defaults


def test_every_config_parses_as_an_accelerate_cluster_config():
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    kinds = {path.name: load_config_from_file(str(path)) for path in sorted(CONFIGS.glob("*.yaml"))}
    assert all(isinstance(cfg, ClusterConfig) for cfg in kinds.values())
    assert {name: cfg.distributed_type.value for name, cfg in kinds.items()} == {
        "cpu_ddp.yaml": "MULTI_GPU",  # accelerate's torchrun launcher; use_cpu puts it on gloo
        "deepspeed_zero3.yaml": "DEEPSPEED",
        "fsdp.yaml": "FSDP",
        "multi_gpu_ddp.yaml": "MULTI_GPU",
        "multi_node.yaml": "FSDP",
        "single_gpu.yaml": "NO",
    }


def test_single_and_multi_gpu_configs_launch_the_right_way():
    args, _ = _launch_args("single_gpu.yaml")
    assert not args.multi_gpu and args.num_processes == 1 and args.gpu_ids == "0"
    args, _ = _launch_args("multi_gpu_ddp.yaml")
    assert args.multi_gpu and args.num_processes == 8 and args.mixed_precision == "bf16"


@pytest.mark.parametrize("config", ["fsdp.yaml", "multi_node.yaml"])
def test_fsdp_configs_build_an_fsdp2_plugin(config):
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    extra = ["--machine_rank", "1", "--main_process_ip", "10.0.0.1"] if config == "multi_node.yaml" else []
    args, _ = _launch_args(config, *extra)
    env = prepare_multi_gpu_env(args)
    with mock.patch.dict(os.environ, env):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.transformer_cls_names_to_wrap == ["Qwen3DecoderLayer"]
    if config == "multi_node.yaml":
        assert (str(args.nnodes), str(args.node_rank), str(args.nproc_per_node)) == ("2", "1", "8")
        assert args.rdzv_endpoint == "10.0.0.1:29500"


def test_deepspeed_config_sets_zero_stage_3():
    from accelerate.utils import DeepSpeedPlugin
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    args, defaults = _launch_args("deepspeed_zero3.yaml")
    assert args.use_deepspeed
    # as accelerate's launch_command does before handing over to the DeepSpeed launcher
    args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
    _, env = prepare_deepspeed_cmd_env(args)
    with mock.patch.dict(os.environ, env):
        plugin = DeepSpeedPlugin()
    zero = plugin.deepspeed_config["zero_optimization"]
    assert zero["stage"] == 3 and zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert plugin.zero3_init_flag is True


def test_gpu_profile_names_a_config_and_as_many_slots_as_it_uses():
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    raw["base"]["profile"] = "gpu"
    base = parse_params(raw).base
    assert (PROJECT / base.accelerate_config).is_file()
    assert not config_uses_cpu(PROJECT / base.accelerate_config)
    assert base.gpus == config_gpus(PROJECT / base.accelerate_config)


def test_two_cpu_processes_all_reduce_through_launch(tmp_path, monkeypatch):
    monkeypatch.chdir(PROJECT)
    launch("tests.ddp_child", ["--out", str(tmp_path)], config_file=str(CONFIGS / "cpu_ddp.yaml"))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert len({r["pid"] for r in ranks}) == 2
    # 1 + 2: each rank saw the other's contribution, so they really talked over gloo.
    assert all(r["reduced"] == 3.0 and r["world_size"] == 2 for r in ranks)
    assert all(r["backend"] == "gloo" and r["wrapped"] == "DistributedDataParallel" for r in ranks)


def test_a_gpu_config_without_its_gpu_slots_is_refused():
    with pytest.raises(ValueError, match="gpus=N"):
        launch("tests.ddp_child", [], config_file=str(CONFIGS / "fsdp.yaml"))
    with pytest.raises(ValueError, match="uses 8 GPUs per machine, but the launch holds 1"):
        launch("tests.ddp_child", [], config_file=str(CONFIGS / "multi_gpu_ddp.yaml"), gpus=1)


def test_a_failing_child_raises_with_the_tail_of_its_output(tmp_path, monkeypatch):
    monkeypatch.chdir(PROJECT)
    with pytest.raises(LaunchError, match="failing with 3 as asked"):
        launch("tests.slot_child", ["--mark", str(tmp_path / "mark"), "--exit-code", "3"])


# --- the Prefect `gpu` limit on a real server -----------------------------------------------------

HOLDER = "import sys; from tasks.common.dispatch import launch; launch('tests.slot_child', sys.argv[1:], gpus=1)"


def _marks(path: Path) -> dict[str, float]:
    text = path.read_text() if path.exists() else ""
    return {kind: float(t) for kind, t in (line.split() for line in text.splitlines())}


def _wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with prefect_server(tmp_path_factory.mktemp("prefect")) as server:
        yield server


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("pool_type, template", [("process", "process-gpu-box.json"),
                                                 ("kubernetes", "kubernetes-gpu.json")])
def test_example_work_pools_are_accepted_by_the_server(server, pool_type, template):
    env = project_env(PROJECT, **server)
    name = template.removesuffix(".json")
    done = subprocess.run([str(VENV_BIN / "prefect"), "work-pool", "create", name, "--type", pool_type,
                           "--base-job-template", str(PROJECT / "configs" / "prefect" / template)],
                          cwd=PROJECT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    pool = api(server["PREFECT_API_URL"], "GET", f"/work_pools/{name}")
    assert pool["type"] == pool_type
    variables = pool["base_job_template"]["variables"]["properties"]
    if pool_type == "kubernetes":
        container = pool["base_job_template"]["job_configuration"]["job_manifest"]["spec"]["template"][
            "spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpus }}"
        assert variables["gpus"]["default"] == 1
    else:
        assert variables["env"]["default"]["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_gpu_slot_is_held_exclusively_and_released_when_the_child_fails(tmp_path, server):
    env = project_env(PROJECT, **server)
    make = ["make", "-s", "-C", str(PROJECT), "gpu-slots"]
    for gpus in ("2", "1"):  # create, then update: rerunning the target changes the limit
        done = subprocess.run(make + [f"GPUS={gpus}"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    limit = api(server["PREFECT_API_URL"], "GET", "/v2/concurrency_limits/gpu")
    assert (limit["limit"], limit["active_slots"]) == (1, 0)

    holder = lambda name, *args: start([sys.executable, "-c", HOLDER, "--mark",  # noqa: E731
                                        str(tmp_path / name), *args],
                                       cwd=PROJECT, env=env, log=tmp_path / f"{name}.log")
    first = holder("first", "--hold", "8")
    _wait_until(lambda: "start" in _marks(tmp_path / "first"), 120, "the first child to start")
    second = holder("second")
    try:
        assert first.wait(180) == 0, (tmp_path / "first.log").read_text()
        assert second.wait(180) == 0, (tmp_path / "second.log").read_text()
    finally:
        stop(first), stop(second)
    a, b = _marks(tmp_path / "first"), _marks(tmp_path / "second")
    # The second child started only after the first one had finished with the only slot.
    assert b["start"] >= a["end"], (a, b)
    print(f"second holder waited {b['start'] - a['start']:.1f} s (first held it {a['end'] - a['start']:.1f} s)")

    crashing = holder("crashing", "--exit-code", "3")
    assert crashing.wait(180) != 0
    log = (tmp_path / "crashing.log").read_text()
    assert "LaunchError" in log and "failing with 3 as asked" in log
    limit = api(server["PREFECT_API_URL"], "GET", "/v2/concurrency_limits/gpu")
    assert limit["active_slots"] == 0, limit
    after = holder("after")
    assert after.wait(180) == 0, (tmp_path / "after.log").read_text()
    assert "end" in _marks(tmp_path / "after")


# --- real GPUs (skipped where torch sees no CUDA device) -----------------------------------------

@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_single_gpu_config_runs_on_cuda_under_a_slot(tmp_path, monkeypatch, server):
    monkeypatch.chdir(PROJECT)
    env = project_env(PROJECT, **server)
    done = subprocess.run(["make", "-s", "-C", str(PROJECT), "gpu-slots", "GPUS=1"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    for key, value in server.items():
        monkeypatch.setenv(key, value)
    launch("tests.ddp_child", ["--out", str(tmp_path / "out")],
           config_file=str(CONFIGS / "single_gpu.yaml"), gpus=1)
    rank = json.loads((tmp_path / "out" / "rank0.json").read_text())
    assert rank["device"].startswith("cuda") and rank["world_size"] == 1
