"""Throughput of a sweep on this machine: the same seeds as a sweep (local workers, then Ray), one after
the other with `train`, and as Stable-Baselines3 runs, all measured side by side in one run.

    pip install -r requirements-bench.txt -r requirements-ray.txt
    python3 benchmarks/sweep_speed.py                     # 4 seeds of Pendulum-v1, 20,000 steps each
    python3 benchmarks/sweep_speed.py --num-steps 5000 --skip-sb3

Every run uses the defaults (256-256 networks, batch 256, lr 3e-4, a 1M buffer, 1000 random steps, one
update per step) with no periodic evals, on the CPU. It prints the wall time of each way and the sweep's
speed as a ratio to each of the others. SB3 runs the fastest way its docs allow on a CPU: one process per
core at once, torch with one thread in each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "soft_actor_critic"]
COMMON = ["--env-name", "Pendulum-v1", "--eval-every", "0", "--device", "cpu"]


def timed(commands: list[list[str]], at_once: int = 1, threads: int | None = None) -> float:
    """Seconds to run the commands, `at_once` of them at a time (each with `threads` torch threads)."""
    environment = os.environ | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    start, queue, running = time.perf_counter(), list(commands), []
    while queue or running:
        while queue and len(running) < at_once:
            running.append(subprocess.Popen(queue.pop(0), cwd=ROOT, env=environment, stdout=subprocess.DEVNULL))
        running[0].wait()
        for process in running:
            if process.poll():
                sys.exit(f"failed: {' '.join(process.args)}")
        running = [process for process in running if process.poll() is None]
    return time.perf_counter() - start


def sb3_run(seed: int, num_steps: int) -> None:
    import gymnasium as gym
    import torch
    from learning import sb3_sac  # benchmarks/ is on the path of a script run from it

    torch.set_num_threads(1)
    sb3_sac(gym.make("Pendulum-v1"), seed).learn(total_timesteps=num_steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--num-steps", type=int, default=20_000)
    parser.add_argument("--directory", default="runs/sweep-speed", help="emptied first")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-sb3", action="store_true")
    parser.add_argument("--sb3-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sb3_child is not None:
        sb3_run(args.sb3_child, args.num_steps)
        return
    directory = ROOT / args.directory
    shutil.rmtree(directory, ignore_errors=True)
    cores = len(os.sched_getaffinity(0))
    seeds, steps = [str(seed) for seed in args.seeds], ["--num-steps", str(args.num_steps)]
    print(f"{len(seeds)} runs of Pendulum-v1, {args.num_steps} steps each, on {cores} cores\n", flush=True)
    sweep = [*CLI, "sweep", "--directory", str(directory), *COMMON, *steps, "--seed", *seeds]
    seconds = {"sweep, local workers (the default)": timed([[*sweep, "--sweep-name", "local"]])}
    print(f"sweep, local workers: {seconds['sweep, local workers (the default)']:.0f} s", flush=True)
    one_by_one = [
        [*CLI, "train", "--directory", str(directory / "one-by-one"), "--run-name", f"seed{seed}", *COMMON]
        + [*steps, "--seed", seed]
        for seed in seeds
    ]
    seconds["train, one run after the other"] = timed(one_by_one)
    print(f"train, one after the other: {seconds['train, one run after the other']:.0f} s", flush=True)
    if not args.skip_ray:
        seconds["sweep --ray-address local"] = timed([[*sweep, "--sweep-name", "ray", "--ray-address", "local"]])
        print(f"sweep on Ray: {seconds['sweep --ray-address local']:.0f} s", flush=True)
    if not args.skip_sb3:
        sb3 = [[sys.executable, __file__, "--sb3-child", seed, *steps] for seed in seeds]
        seconds[f"SB3, {cores} processes of 1 thread"] = timed(sb3, at_once=cores, threads=1)
        print(f"SB3: {seconds[f'SB3, {cores} processes of 1 thread']:.0f} s", flush=True)
    ours = seconds["sweep, local workers (the default)"]
    print("\n| way | wall time | the sweep is faster by |\n|---|---:|---:|")
    for way, wall in seconds.items():
        print(f"| {way} | {wall / 60:.1f} min | {wall / ours:.2f}x |")


if __name__ == "__main__":
    main()
