"""Which HalfCheetah runs learned to run on their back? For each run folder, this project's or SB3's from
benchmarks/learning.py, its last policy's deterministic episodes of a periodic eval (the first reset seeded
with the run's eval seed, as the evals do) and the pitch of the torso over each: observation[1], rooty in
radians, near 0 upright and near +-pi upside down. A run is flipped when the first of those episodes spends
most of its steps on its back; as a policy may flip in some episodes and not in others, the table also
counts the episodes on its back of all --episodes.

    python3 analysis/posture.py runs/learning/*/HalfCheetah-v5*/seed=*
    python3 analysis/posture.py studies/dmc-100k/dm_control-cheetah-run-v0_seed=*

DeepMind Control's cheetah-run works too: its flattened observation starts with position, whose second
number is rooty as well.

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
from learning import play_eval  # noqa: E402  (after the path that finds it)

from soft_actor_critic.config import TrainConfig  # noqa: E402


class Pitch(gym.ObservationWrapper):
    """Records the torso's pitch of every observation the env returns, a list per episode."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.pitches = []

    def reset(self, **kwargs):
        self.pitches.append([])
        return super().reset(**kwargs)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        self.pitches[-1].append(observation[1])
        return observation


def episodes(run_dir: Path, count: int) -> list[tuple[float, np.ndarray]]:
    """The return of each of the `count` episodes of an eval (deterministic_returns, seeded as the evals are)
    and the torso's pitch at each of its steps (the reset's included)."""
    returns, env = play_eval(run_dir, Pitch, count)
    return [(episode_return, np.array(pitch)) for episode_return, pitch in zip(returns, env.pitches)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=TrainConfig.eval_episodes, help="episodes per run (an eval's)")
    args = parser.parse_args()
    print("| run | return | pitch, mean | lowest | highest | on its back | episodes on its back | their returns |")
    print("|---|---:|---:|---:|---:|---|---|---:|")
    flips = defaultdict(list)  # {the runs' label folder (soft-actor-critic, sb3...): flipped or not, each run}
    for run_dir in args.run_dirs:
        played = episodes(run_dir, args.episodes)
        (episode_return, pitch), on_back = played[0], [np.mean(np.abs(pitch) > np.pi / 2) for _, pitch in played]
        flips[run_dir.parent.parent.name].append(on_back[0] > 0.5)  # flipped: on its back on most steps
        flipped = [episode_return for (episode_return, _), share in zip(played, on_back) if share > 0.5]
        print(
            f"| {run_dir} | {episode_return:.0f} | {pitch.mean():.2f} | {pitch.min():.2f} | {pitch.max():.2f} "
            f"| {on_back[0]:.0%} of the steps | {len(flipped)} of {len(played)} "
            f"| {' / '.join(f'{value:.0f}' for value in flipped)} |"
        )
    for label, flipped in flips.items():
        print(f"{label}: {sum(flipped)} of {len(flipped)} runs flipped")
    if len(flips) == 2:  # is one side's flip rate different? Fisher's exact test on the 2x2 table, two-sided
        table = [[sum(flipped), len(flipped) - sum(flipped)] for flipped in flips.values()]
        print(f"Fisher's exact test, two-sided: p = {stats.fisher_exact(table).pvalue:.3f}")


if __name__ == "__main__":
    main()
