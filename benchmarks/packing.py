"""A study's throughput: N seeds packed into one process (sweep --seeds-per-process N) against the same
N seeds on the local workers, one run per process (the default), side by side on this machine.

    python3 benchmarks/packing.py                                         # 4 Pendulum-v1 seeds, on the CPU
    python3 benchmarks/packing.py --env-name HalfCheetah-v5 --seeds 16 --steps 5000 --device cuda

Each measurement is one `sweep` command in a fresh folder, without evals or checkpoints but the last,
timed from its start to its end: process starts and the warm-up included, the same for both. The two
alternate, --repeats times each. It prints the aggregate env steps/s (all seeds' steps over the wall
time) of each, the median, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def study_steps_per_second(args: argparse.Namespace, packed: bool) -> float:
    """One sweep of the seeds, packed or one per process; the aggregate env steps per wall second."""
    with tempfile.TemporaryDirectory() as directory:
        argv = ["sweep", "--sweep-name", "study", "--directory", directory, "--env-name", args.env_name]
        argv += ["--seed", *map(str, range(1, args.seeds + 1)), "--num-steps", str(args.steps)]
        argv += ["--eval-every", "0", "--checkpoint-every", "0", "--no-save-buffer", "--device", args.device]
        argv += ["--seeds-per-process", str(args.seeds if packed else 1)]
        start = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "soft_actor_critic", *argv], cwd=ROOT, capture_output=True)
        seconds = time.perf_counter() - start
        if completed.returncode:
            sys.exit(f"the sweep failed:\n{completed.stderr.decode()[-2000:]}")
    return args.seeds * args.steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-name", default="Pendulum-v1")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3000, help="env steps per seed, the 1000 warm-up steps included")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    results = {"packed": [], "one per process": []}
    for repeat in range(args.repeats):
        for packed in (True, False) if repeat % 2 == 0 else (False, True):
            label = "packed" if packed else "one per process"
            results[label].append(study_steps_per_second(args, packed))
            print(f"  repeat {repeat + 1}, {label}: {results[label][-1]:.1f} env steps/s", flush=True)
    packed, single = (statistics.median(values) for values in results.values())
    print(f"\n{args.seeds} x {args.env_name}, {args.steps} steps each, on the {args.device}:")
    print("| seeds | packed, steps/s | one per process, steps/s | packed / one per process |")
    print("|---:|---:|---:|---:|")
    print(f"| {args.seeds} | {packed:.1f} | {single:.1f} | {packed / single:.2f}x |")


if __name__ == "__main__":
    main()
