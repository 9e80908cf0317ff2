"""Run GPU work in a child process through ``accelerate launch``, holding a GPU slot meanwhile.

A child process frees all accelerator memory when it exits, and the same command scales from one
CPU process to several GPUs or nodes by swapping the accelerate config file (``configs/accelerate``).
GPU slots are a Prefect global concurrency limit named ``gpu`` (one slot per GPU; created by
``make gpu-slots``); CPU runs take no slot.

>>> accelerate_command("tasks.train", ["--stage", "sft"], num_processes=1, cpu=True)[3:]
['--num_processes', '1', '--cpu', '--main_process_port', '0', '-m', 'tasks.train', '--stage', 'sft']
>>> accelerate_command("tasks.train", [], num_processes=2, cpu=True)[3:7]
['--num_processes', '2', '--multi_gpu', '--main_process_port']
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import yaml

GPU_LIMIT = "gpu"


class LaunchError(RuntimeError):
    """The child process failed; the message carries the tail of its output."""


def accelerate_command(module: str, args: list[str], num_processes: int = 1,
                       config_file: str | None = None, cpu: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if config_file:
        cmd += ["--config_file", config_file]
    else:
        cmd += ["--num_processes", str(num_processes)]
        if num_processes > 1:
            # accelerate's --cpu launcher starts a single process (more only through mpirun);
            # --multi_gpu starts them all through torchrun, and a child that asks for the CPU
            # (Trainer use_cpu, PartialState(cpu=True)) then joins the others over gloo.
            cmd += ["--multi_gpu"]
        elif cpu:
            cmd += ["--cpu"]
        # Port 0 lets the OS pick a free port, so two launches on one machine never collide.
        cmd += ["--main_process_port", "0"]
    return cmd + ["-m", module, *args]


def config_uses_cpu(config_file: str | Path) -> bool:
    """Whether an accelerate config file runs on CPU (``use_cpu: true``).

    >>> configs = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
    >>> config_uses_cpu(configs / "cpu_ddp.yaml"), config_uses_cpu(configs / "fsdp.yaml")
    (True, False)
    """
    with open(config_file) as fh:
        return bool((yaml.safe_load(fh) or {}).get("use_cpu", False))


def config_gpus(config_file: str | Path) -> int:
    """GPUs one machine of an accelerate config uses: its processes per machine.

    >>> configs = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
    >>> [config_gpus(configs / f) for f in ("single_gpu.yaml", "fsdp.yaml", "multi_node.yaml")]
    [1, 8, 8]
    """
    with open(config_file) as fh:
        config = yaml.safe_load(fh) or {}
    return max(1, int(config.get("num_processes", 1)) // int(config.get("num_machines", 1)))


@contextmanager
def gpu_slots(count: int, timeout_seconds: float | None = None) -> Iterator[None]:
    """Hold ``count`` slots of the Prefect ``gpu`` limit (released on success or failure)."""
    if count <= 0:
        with nullcontext():
            yield
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(GPU_LIMIT, occupy=count, timeout_seconds=timeout_seconds, strict=True):
        yield


def launch(module: str, args: list[str], *, num_processes: int = 1, config_file: str | None = None,
           gpus: int = 0, log_file: str | Path | None = None, env: dict[str, str] | None = None,
           on_line: Callable[[str], None] | None = None) -> None:
    """Run ``module`` under accelerate; stream its output (each line also to ``on_line``); raise
    LaunchError with the tail on failure."""
    cmd = accelerate_command(module, args, num_processes, config_file, cpu=gpus == 0)
    child_env = {**os.environ, **(env or {})}
    if gpus == 0:
        if config_file and not config_uses_cpu(config_file):
            raise ValueError(f"{config_file}: runs on GPUs (use_cpu is not true): launch it with "
                             "gpus=N so it holds N slots of the Prefect `gpu` limit")
        # accelerate's multi-process launcher (torchrun) does not pass the config's use_cpu on to
        # the ranks; without it each rank finds no GPU and runs alone instead of joining gloo.
        # (--cpu sets it for a single process; several go through torchrun, see accelerate_command.)
        child_env["ACCELERATE_USE_CPU"] = "true"
    elif config_file and gpus != config_gpus(config_file):
        # Holding fewer slots than the GPUs a config uses would oversubscribe the machine.
        raise ValueError(f"{config_file}: uses {config_gpus(config_file)} GPUs per machine, "
                         f"but the launch holds {gpus} gpu slots")
    # The child imports the project from the same folder as the parent, whatever its cwd.
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), child_env.get("PYTHONPATH")]))
    tail: deque[str] = deque(maxlen=40)
    log = open(log_file, "a") if log_file else None
    with gpu_slots(gpus):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=child_env, bufsize=1)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                tail.append(line)
                if log:
                    log.write(line)
                if on_line:
                    on_line(line)
            code = proc.wait()
        except BaseException:
            proc.kill()  # a cancelled flow must not leave a trainer holding the GPU
            proc.wait()
            raise
        finally:
            if log:
                log.close()
    if code != 0:
        raise LaunchError(f"{module} exited with code {code}:\n" + "".join(tail))
