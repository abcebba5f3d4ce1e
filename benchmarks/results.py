"""Learning results for the README: train several seeds of one env to a fixed step budget, then print the
final deterministic eval of each (the last row of its eval.csv: 10 episodes at the last step), their
pooled mean and spread, the wall time of each run, and draw the learning curves with the `plot` command.

    python3 benchmarks/results.py --env-name Pendulum-v1 --num-steps 20000 --eval-every 1000
    python3 benchmarks/results.py --env-name LunarLanderContinuous-v3 --num-steps 300000

Runs go to <directory>/<env>-seed<S> with the default hyperparameters. The runs go one after the other:
on a small machine, two trainings at once slow each other down far more than twice. A run that exists
already is resumed if it is unfinished (this script can be stopped and started again) and reused if not;
its wall time adds up over the sessions in <directory>/wall_times.json.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "soft_actor_critic"]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from soft_actor_critic.runs import CHECKPOINT_FILE, read_eval_rows  # noqa: E402  (after the path that finds it)


def train(run_dir: Path, args: argparse.Namespace, seed: int, wall_times: dict) -> None:
    """Train (or finish) one seed's run, adding its wall time to wall_times."""
    rows = read_eval_rows(run_dir)
    if rows and rows[-1]["step"] == args.num_steps:
        print(f"{run_dir.name}: finished already, reused", flush=True)
        return
    flags = ["--run-name", run_dir.name, "--directory", args.directory, "--num-steps", str(args.num_steps)]
    flags += ["--eval-every", str(args.eval_every)] if args.eval_every else []
    if (run_dir / CHECKPOINT_FILE).is_file():
        flags.append("--resume")
    elif run_dir.exists():
        sys.exit(f"{run_dir} has no checkpoint (stopped before its first): remove it to train that seed anew")
    else:
        flags += ["--env-name", args.env_name, "--seed", str(seed)]
    print("$ python3 soft_actor_critic train " + " ".join(flags), flush=True)
    start = time.perf_counter()
    process = subprocess.Popen([*CLI, "train", *flags], cwd=ROOT)
    try:
        returncode = process.wait()
    except KeyboardInterrupt:  # the run got the Ctrl-C too: wait while it writes its checkpoint
        process.wait()
        raise
    finally:
        wall_times[run_dir.name] = wall_times.get(run_dir.name, 0.0) + time.perf_counter() - start
    if returncode != 0:
        sys.exit(f"{run_dir.name}: train exited with {returncode}; its error is above")


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
    parser.add_argument("--eval-every", type=int, help="passed to train (not 0: the results are its evals)")
    parser.add_argument("--directory", default="runs/results", help="where the runs go")
    args = parser.parse_args()
    if args.eval_every == 0:
        parser.error("--eval-every 0 logs no evals, and the results are the evals")

    directory = ROOT / args.directory
    directory.mkdir(parents=True, exist_ok=True)
    times_file = directory / "wall_times.json"
    wall_times = json.loads(times_file.read_text()) if times_file.is_file() else {}
    run_dirs = [directory / f"{args.env_name}-seed{seed}" for seed in args.seeds]
    for seed, run_dir in zip(args.seeds, run_dirs):
        try:
            train(run_dir, args, seed, wall_times)
        finally:
            times_file.write_text(json.dumps(wall_times, indent=2) + "\n")

    finals = []
    for seed, run_dir in zip(args.seeds, run_dirs):
        final = read_eval_rows(run_dir)[-1]
        finals.append(final)
        minutes = wall_times.get(run_dir.name, math.nan) / 60
        print(
            f"seed {seed}: {final['return_mean']:.1f} ± {final['return_std']:.1f} over {final['episodes']:.0f} "
            f"episodes at step {final['step']:.0f}; wall time {minutes:.1f} min"
        )
    mean, std = pooled(finals)
    episodes = sum(row["episodes"] for row in finals)
    minutes = [wall_times.get(run_dir.name, math.nan) / 60 for run_dir in run_dirs]
    per_seed = " / ".join(f"{row['return_mean']:.1f}" for row in finals)
    print("\n| env | steps | seeds | final eval return | per seed | wall time per run |")
    print("|---|---:|---:|---|---|---:|")
    print(
        f"| {args.env_name} | {args.num_steps:,} | {len(finals)} | {mean:.1f} ± {std:.1f} ({episodes:.0f} episodes) "
        f"| {per_seed} | {sum(minutes) / len(minutes):.1f} min |"
    )
    output = directory / f"{args.env_name}.png"
    subprocess.run([*CLI, "plot", *map(str, run_dirs), "--output", str(output)], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
