"""How do LunarLander runs end their episodes? For each run folder, this project's or SB3's from
benchmarks/learning.py, the deterministic eval of its last policy (10 episodes, the first reset seeded with
the run's eval seed, so the same episodes its eval.csv scores), each episode counted by how it ended:

- landed: the lander came to rest, the env's +100;
- crashed: it hit the ground with its body or flew off the screen, the env's -100;
- hovering: it was still flying at the 1,000-step limit.

    python3 analysis/landing.py runs/learning/*/LunarLanderContinuous-v3*/seed=*

Hovering is LunarLander's best-known local optimum: a lander that never touches down forgoes the +100 but
never risks the -100, and scores near 0 where a landing one scores 200-300.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import gymnasium as gym

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # the package, and learning.py's reader of both kinds of run
from learning import play_eval  # noqa: E402  (after the path that finds it)

ENDINGS = ("landed", "crashed", "hovering")


class Endings(gym.Wrapper):
    """Records how each episode ends."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.endings = []

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        if terminated:
            self.endings.append("landed" if reward > 0 else "crashed")
        elif truncated:
            self.endings.append("hovering")
        return observation, reward, terminated, truncated, info


def play(run_dir: Path) -> tuple[float, Counter]:
    """The mean return of the run's deterministic eval and how its episodes ended."""
    returns, env = play_eval(run_dir, Endings)
    return sum(returns) / len(returns), Counter(env.endings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args()
    print(f"| run | return | {' | '.join(ENDINGS)} |")
    print(f"|---|---:|{'---:|' * len(ENDINGS)}")
    for run_dir in args.run_dirs:
        mean_return, endings = play(run_dir)
        print(f"| {run_dir} | {mean_return:.1f} | {' | '.join(str(endings[ending]) for ending in ENDINGS)} |")


if __name__ == "__main__":
    main()
