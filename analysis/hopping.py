"""How far do Hopper runs hop before they fall? For each run folder, this project's or SB3's from
benchmarks/learning.py, the deterministic eval of its last policy (10 episodes, the first reset seeded with
the run's eval seed, so the same episodes its eval.csv scores): how many fell (the env ends the episode of an
unhealthy hopper before the 1,000-step limit), the episodes' lengths and the distances the torso travelled
forward, in metres.

    python3 analysis/hopping.py studies/mujoco-100k/Hopper-v5_seed=* runs/learning/sb3/Hopper-v5/seed=*

Hopper pays 1 a step for staying up and 125 a metre forward (its velocity, at 0.008 s a step), less a small
control cost: a policy that lunges 1.5 m forward and falls after 135 steps scores about 135 + 1.5 x 125 = 320.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # the package, and learning.py's reader of both kinds of run
from learning import play_eval  # noqa: E402  (after the path that finds it)

from soft_actor_critic.config import TrainConfig  # noqa: E402


class Hops(gym.Wrapper):
    """Records each episode's length, whether it fell and the distance its torso travelled forward."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.lengths, self.fell, self.distances = [], [], []

    def reset(self, **kwargs):
        observation, info = super().reset(**kwargs)
        self.lengths.append(0)
        self.fell.append(False)
        self.distances.append(0.0)
        self.start = self.env.unwrapped.data.qpos[0]
        return observation, info

    def step(self, action):
        observation, reward, terminated, truncated, info = super().step(action)
        self.lengths[-1] += 1
        self.fell[-1] = terminated
        self.distances[-1] = float(self.env.unwrapped.data.qpos[0] - self.start)
        return observation, reward, terminated, truncated, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=TrainConfig.eval_episodes, help="episodes per run (an eval's)")
    args = parser.parse_args()
    print("| run | eval return | fell, of the episodes | length, median [range] | distance (m), median [range] |")
    print("|---|---:|---:|---|---|")
    for run_dir in args.run_dirs:
        returns, env = play_eval(run_dir, Hops, args.episodes)
        lengths, distances = np.array(env.lengths), np.array(env.distances)
        fell = sum(env.fell)
        print(
            f"| {run_dir} | {np.mean(returns):.1f} | {fell} of {len(lengths)} "
            f"| {np.median(lengths):.0f} [{lengths.min()}, {lengths.max()}] "
            f"| {np.median(distances):.2f} [{distances.min():.2f}, {distances.max():.2f}] |"
        )


if __name__ == "__main__":
    main()
