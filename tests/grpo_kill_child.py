"""The grpo training child, killed with SIGKILL (as a crash would) right after it has saved online
checkpoint ``--kill-at``: a kill point that does not depend on timing, for tests/test_grpo.py.

``python -m tests.grpo_kill_child --kill-at 2 --config run.json``. Trainer calls ``on_save`` once
the checkpoint is complete (its ``trainer_state.json`` written, old checkpoints rotated out).
"""
import argparse
import os
import signal
import sys

from tasks.train import grpo


class KilledAfterSave(grpo.CompletionLog):
    kill_at = 0

    def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.phase == "online" and state.global_step == self.kill_at:
            print(f"grpo_kill_child: killing myself after online checkpoint {state.global_step}", flush=True)
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-at", type=int, required=True)
    known, rest = parser.parse_known_args()
    KilledAfterSave.kill_at = known.kill_at
    grpo.CompletionLog = KilledAfterSave  # run_online builds its callback from this name
    grpo.main(rest)
