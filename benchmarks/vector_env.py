"""How fast packed seeds' envs step: Gymnasium's SyncVectorEnv (every env in this process, one after
another, as training.training_loop steps them) against AsyncVectorEnv (one process per env), side by side.

    python3 benchmarks/vector_env.py                                   # Pendulum-v1 and HalfCheetah-v5, 4 and 16 envs
    python3 benchmarks/vector_env.py --envs HalfCheetah-v5 --seeds 16 --steps 5000

Both in the SAME_STEP autoreset mode that packed training uses, with random actions: the env's own
cost per vector step, without acting or updating. It prints the median of --repeats timings of each,
in vector steps/s and env steps/s (vector steps times seeds), and their ratio.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from soft_actor_critic.environment import make_env  # noqa: E402


def vector_steps_per_second(kind: str, env_name: str, seeds: int, steps: int) -> float:
    vector_env = {"sync": gym.vector.SyncVectorEnv, "async": gym.vector.AsyncVectorEnv}[kind]
    envs = vector_env(
        [functools.partial(make_env, env_name)] * seeds, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    try:
        envs.reset(seed=list(range(seeds)))
        actions = (
            np.random.default_rng(0)
            .uniform(
                envs.single_action_space.low,
                envs.single_action_space.high,
                (steps, seeds, *envs.single_action_space.shape),
            )
            .astype(np.float32)
        )
        start = time.perf_counter()
        for action in actions:
            envs.step(action)
        return steps / (time.perf_counter() - start)
    finally:
        envs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=["Pendulum-v1", "HalfCheetah-v5"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--steps", type=int, default=2000, help="vector steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{len(os.sched_getaffinity(0))} cores; medians of {args.repeats} timings of {args.steps} vector steps")
    print("| env | seeds | sync, env steps/s | async, env steps/s | async / sync |")
    print("|---|---:|---:|---:|---:|")
    for env_name in args.envs:
        for seeds in args.seeds:
            rates = {"sync": [], "async": []}
            for repeat in range(args.repeats):
                for kind in ("sync", "async") if repeat % 2 == 0 else ("async", "sync"):
                    rates[kind].append(vector_steps_per_second(kind, env_name, seeds, args.steps))
            sync, asynchronous = (statistics.median(rates[kind]) * seeds for kind in ("sync", "async"))
            print(
                f"| {env_name} | {seeds} | {sync:,.0f} | {asynchronous:,.0f} | {asynchronous / sync:.2f}x |", flush=True
            )


if __name__ == "__main__":
    main()
