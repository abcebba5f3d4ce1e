"""Learning results for the README, trained by `sweep`: several seeds of one env to a fixed step budget;
then the README's row: the final deterministic eval of each seed (the last row of its eval.csv: 10
episodes at the last step), their mean and spread pooled over all the episodes (as rl-zoo reports its
own), and the wall time of a run; and the learning curves, drawn by `plot`.

    python3 benchmarks/results.py --env-name Pendulum-v1 --num-steps 20000 --eval-every 1000
    python3 benchmarks/results.py --env-name LunarLanderContinuous-v3 --num-steps 300000

The runs are the sweep <directory>/results-<env>, run folders seed=<S>, with the default hyperparameters
and the sweep's default workers. Stopped and started again, the sweep continues where it was.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "soft_actor_critic"]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from soft_actor_critic.runs import read_eval_rows  # noqa: E402  (after the path that finds it)


def pooled(rows: list[dict]) -> tuple[float, float]:
    """Mean and standard deviation over all the episodes of several evals of equal size."""
    mean = sum(row["return_mean"] for row in rows) / len(rows)
    variance = sum(row["return_std"] ** 2 + (row["return_mean"] - mean) ** 2 for row in rows) / len(rows)
    return mean, math.sqrt(variance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-name", required=True)
    parser.add_argument("--num-steps", type=int, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--eval-every", type=int, default=10_000, help="passed to sweep (the results are its evals)")
    parser.add_argument("--directory", default="runs", help="where the sweep's folder goes")
    args = parser.parse_args()
    if args.eval_every <= 0:
        parser.error("--eval-every must be positive: the results are the evals")

    sweep_name = f"results-{args.env_name.replace('/', '-')}"
    command = ["sweep", "--sweep-name", sweep_name, "--directory", args.directory, "--env-name", args.env_name]
    command += ["--num-steps", str(args.num_steps), "--eval-every", str(args.eval_every), "--seed"]
    command += [str(seed) for seed in args.seeds]
    print("$ python3 soft_actor_critic " + " ".join(command), flush=True)
    if subprocess.run([*CLI, *command], cwd=ROOT).returncode:
        sys.exit("the sweep did not finish; its error is above, and the same command continues it")

    sweep_dir = ROOT / args.directory / sweep_name
    run_dirs = [sweep_dir / (f"seed={seed}" if len(args.seeds) > 1 else args.env_name) for seed in args.seeds]
    finals = [read_eval_rows(run_dir)[-1] for run_dir in run_dirs]
    wall_times = json.loads((sweep_dir / "wall_times.json").read_text())
    minutes = [wall_times.get(run_dir.name, math.nan) / 60 for run_dir in run_dirs]
    mean, std = pooled(finals)
    episodes = sum(row["episodes"] for row in finals)
    per_seed = " / ".join(f"{row['return_mean']:.1f}" for row in finals)
    print("\n| env | steps | seeds | final eval return | per seed | wall time per run |")
    print("|---|---:|---:|---|---|---:|")
    print(
        f"| {args.env_name} | {args.num_steps:,} | {len(finals)} | {mean:.1f} ± {std:.1f} ({episodes:.0f} episodes) "
        f"| {per_seed} | {sum(minutes) / len(minutes):.1f} min |"
    )
    output = sweep_dir / f"{sweep_name}.png"
    subprocess.run([*CLI, "plot", str(sweep_dir), "--output", str(output)], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
