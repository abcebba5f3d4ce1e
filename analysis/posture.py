"""Which HalfCheetah runs learned to run on their back? For each run folder, this project's or SB3's from
benchmarks/learning.py, one deterministic episode of its last policy (the first eval episode: the reset
seeded with the run's eval seed), and the pitch of the torso over it: observation[1], rooty in radians,
near 0 upright and near +-pi upside down.

    python3 analysis/posture.py runs/learning/*/HalfCheetah-v5*/seed=*

Running on its back is HalfCheetah's best-known local optimum: such a run stays near 1,000-1,500 at
100,000 steps, where an upright one passes 3,500.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import gymnasium as gym
import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # the package, and learning.py's reader of both kinds of run
from learning import load_run  # noqa: E402  (after the path that finds it)

from soft_actor_critic.checkpoints import Seeds  # noqa: E402
from soft_actor_critic.evaluate import rollout  # noqa: E402


class Pitch(gym.ObservationWrapper):
    """Records the torso's pitch of every observation the env returns."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.pitches = []

    def observation(self, observation: np.ndarray) -> np.ndarray:
        self.pitches.append(observation[1])
        return observation


def pitches(run_dir: Path) -> tuple[float, np.ndarray]:
    """The episode's return and the torso's pitch at each of its steps (the reset's included)."""
    seed, env, policy = load_run(run_dir, Pitch)
    episode_return, _, _ = rollout(env, policy, deterministic=True, seed=Seeds.of(seed).eval_env)
    return episode_return, np.array(env.pitches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args()
    print("| run | return | pitch, mean | lowest | highest | on its back |")
    print("|---|---:|---:|---:|---:|---|")
    flips = defaultdict(list)  # {the runs' label folder (soft-actor-critic, sb3...): flipped or not, each run}
    for run_dir in args.run_dirs:
        episode_return, pitch = pitches(run_dir)
        on_back = np.mean(np.abs(pitch) > np.pi / 2)
        flips[run_dir.parent.parent.name].append(on_back > 0.5)  # flipped: on its back on most steps
        print(
            f"| {run_dir} | {episode_return:.0f} | {pitch.mean():.2f} | {pitch.min():.2f} | {pitch.max():.2f} "
            f"| {on_back:.0%} of the steps |"
        )
    for label, flipped in flips.items():
        print(f"{label}: {sum(flipped)} of {len(flipped)} runs flipped")
    if len(flips) == 2:  # is one side's flip rate different? Fisher's exact test on the 2x2 table, two-sided
        table = [[sum(flipped), len(flipped) - sum(flipped)] for flipped in flips.values()]
        print(f"Fisher's exact test, two-sided: p = {stats.fisher_exact(table).pvalue:.3f}")


if __name__ == "__main__":
    main()
