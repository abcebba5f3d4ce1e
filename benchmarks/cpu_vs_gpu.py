"""The same seeds on the CPU and on the GPU learn alike: Pendulum-v1 with the defaults, eval curves per device.

    python3 benchmarks/cpu_vs_gpu.py                  # on a machine with a CUDA GPU: trains, then draws
    python3 benchmarks/cpu_vs_gpu.py --output docs/pendulum_cpu_vs_gpu.png

Each seed trains once with --device cpu and once with --device cuda (CUDA graphs on), into
<directory>/pendulum-<device>-seed<S>; a run that has finished already is reused, so the figure can be
redrawn anywhere from the run folders. It prints every periodic eval of every run and draws the eval
return against env steps, one curve per device: the mean over seeds with a band of one standard
deviation. The networks start from the same weights on both devices (they are initialized on the CPU);
the policy's noise comes from torch's CPU generator on one and from CUDA's on the other, so the runs part
after the first update and agree only within the noise of seeds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from soft_actor_critic.runs import read_eval_rows  # noqa: E402  (after the path that finds it)

DEVICES = ("cpu", "cuda")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--num-steps", type=int, default=10_000)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--directory", default="runs/cpu-vs-gpu")
    parser.add_argument("--output", default=None, help="the PNG; default: <directory>/pendulum_cpu_vs_gpu.png")
    args = parser.parse_args()
    curves = {}
    for device in DEVICES:
        curves[device] = [
            evals(Path(args.directory) / f"pendulum-{device}-seed{seed}", device, seed, args) for seed in args.seeds
        ]
    for device, runs in curves.items():
        for seed, rows in zip(args.seeds, runs):
            print(f"{device} seed {seed}: " + " ".join(f"{row['return_mean']:.1f}" for row in rows))
    output = Path(args.output or Path(args.directory) / "pendulum_cpu_vs_gpu.png")
    draw(curves, output)
    print(f"wrote {output}")


def evals(run_dir: Path, device: str, seed: int, args: argparse.Namespace) -> list[dict]:
    """The run's eval rows, training it first unless it has reached --num-steps already."""
    rows = read_eval_rows(run_dir)
    if not rows or rows[-1]["step"] < args.num_steps:
        flags = ["--env-name", "Pendulum-v1", "--num-steps", str(args.num_steps), "--eval-every", str(args.eval_every)]
        flags += ["--seed", str(seed), "--device", device, "--run-name", run_dir.name, "--directory", args.directory]
        flags += ["--resume"] if (run_dir / "checkpoint.pt").is_file() else []
        print("$ python3 soft_actor_critic train " + " ".join(flags), flush=True)
        if subprocess.run([sys.executable, "-m", "soft_actor_critic", "train", *flags], cwd=ROOT).returncode:
            sys.exit(f"{run_dir.name}: train failed; its error is above")
        rows = read_eval_rows(run_dir)
    return rows


def draw(curves: dict[str, list[list[dict]]], output: Path) -> None:
    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    for device, runs in curves.items():
        steps = np.array([row["step"] for row in runs[0]])
        returns = np.array([[row["return_mean"] for row in rows] for rows in runs])  # (seeds, evals)
        mean, std = returns.mean(0), returns.std(0)
        axes.plot(steps, mean, label=f"--device {device} ({len(runs)} seeds)")
        axes.fill_between(steps, mean - std, mean + std, alpha=0.2)
    axes.set(xlabel="env steps", ylabel="eval return (10 deterministic episodes)", title="Pendulum-v1: CPU and GPU")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(output, dpi=100)


if __name__ == "__main__":
    main()
