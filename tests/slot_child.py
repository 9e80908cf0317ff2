"""Child run by tests/test_dispatch.py under ``accelerate launch``: records when it held a GPU slot.

Appends ``start <time>`` and ``end <time>`` to ``--mark`` around ``--hold`` seconds of sleep, then
exits with ``--exit-code`` (non-zero plays a trainer that crashed).
"""
import argparse
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mark", required=True)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--exit-code", type=int, default=0)
    args = parser.parse_args()
    with open(args.mark, "a") as fh:
        fh.write(f"start {time.time()}\n")
    time.sleep(args.hold)
    with open(args.mark, "a") as fh:
        fh.write(f"end {time.time()}\n")
    if args.exit_code:
        print(f"slot_child: failing with {args.exit_code} as asked", flush=True)
    sys.exit(args.exit_code)


if __name__ == "__main__":
    main()
