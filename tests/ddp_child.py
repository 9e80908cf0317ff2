"""Child run by tests/test_dispatch.py under ``accelerate launch``: a two-process all-reduce.

Each rank builds a tiny ``torch.nn.Linear`` wrapped by ``Accelerator.prepare`` (DDP when there are
several processes), sums its rank + 1 across processes with ``all_reduce`` and writes
``rank<r>.json`` with its rank, world size, the reduced value and the backend, so the test can see
that every rank ran and that they talked to each other.
"""
import argparse
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from accelerate import Accelerator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    accelerator = Accelerator()
    model = accelerator.prepare(torch.nn.Linear(4, 1))
    value = torch.tensor([float(accelerator.process_index + 1)], device=accelerator.device)
    total = accelerator.reduce(value, reduction="sum")
    record = {
        "rank": accelerator.process_index,
        "world_size": accelerator.num_processes,
        "reduced": total.item(),
        "distributed_type": str(accelerator.distributed_type),
        "backend": dist.get_backend() if dist.is_initialized() else None,
        "wrapped": type(model).__name__,
        "pid": os.getpid(),
        "device": str(accelerator.device),
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"rank{accelerator.process_index}.json").write_text(json.dumps(record))
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    main()
