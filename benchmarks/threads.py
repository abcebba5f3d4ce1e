"""Torch's CPU threads on a quiet and on a busy machine: steps/s of training for each way of running them.

OpenMP's threads (torch's CPU build uses GNU OpenMP) spin while they wait for work, so a training whose
threads share the cores with another busy process can crawl. This measures the update phase of a
Pendulum-v1 run (the 250 steps after a 1,000-step warm-up, TensorBoard's time/sps) for each setting of the
threads, on the machine as it is ("quiet") and with one busy process beside it ("busy": a Python loop on
one core), for one run and for a sweep of two workers (each run's steps/s, the median of the two):

    python3 benchmarks/threads.py --repeats 2

Settings: "default" (torch's threads as it sizes them: one per core), "passive" (OMP_WAIT_POLICY=PASSIVE:
the waiting threads sleep), "spin 20k" and "spin 200k" (GOMP_SPINCOUNT: how long a waiting thread spins
before it sleeps; GNU OpenMP's default is 300,000 spins), "1 thread" (OMP_NUM_THREADS=1). Each measurement
is a fresh process; the settings alternate within each repeat, so that a drift of the machine's speed hits
all of them alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin 20k": {"GOMP_SPINCOUNT": "20000"},
    "spin 200k": {"GOMP_SPINCOUNT": "200000"},
    "1 thread": {"OMP_NUM_THREADS": "1"},
}
TRAIN = ["--env-name", "Pendulum-v1", "--num-steps", "1250", "--start-step", "1000", "--eval-every", "0"]
TRAIN += ["--checkpoint-every", "0", "--no-save-buffer"]


def update_sps(run_dir: Path) -> float:
    """The steps/s of steps 1,001 to 1,250, all of them updates."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return next(event.value for event in events.Scalars("time/sps") if event.step == 1250)


def measure(setting: str, kind: str, directory: Path) -> float:
    """One run's (or the median of a 2-worker sweep's runs') steps/s with `setting`'s environment."""
    environment = os.environ | SETTINGS[setting]
    for name in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT"):
        if name not in SETTINGS[setting]:
            environment.pop(name, None)
    command = [sys.executable, "-m", "soft_actor_critic"]
    if kind == "train":
        command += ["train", *TRAIN, "--directory", str(directory), "--run-name", "run"]
    else:
        command += ["sweep", *TRAIN, "--directory", str(directory), "--sweep-name", "sweep", "--seed", "1", "2"]
    subprocess.run(command, cwd=ROOT, env=environment, check=True, capture_output=True)
    if kind == "train":
        return update_sps(directory / "run")
    return statistics.median(update_sps(run) for run in (directory / "sweep").glob("seed=*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=["train", "sweep"], choices=["train", "sweep"])
    parser.add_argument("--loads", nargs="+", default=["quiet", "busy"], choices=["quiet", "busy"])
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; steps/s of the update phase, each figure the median of {args.repeats} runs")
    print("| command | machine | " + " | ".join(SETTINGS) + " |")
    print("|---|---|" + "---:|" * len(SETTINGS))
    for kind in args.kinds:
        for load in args.loads:
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None
            try:
                figures = {setting: [] for setting in SETTINGS}
                for _ in range(args.repeats):
                    for setting in SETTINGS:
                        with tempfile.TemporaryDirectory() as directory:
                            figures[setting].append(measure(setting, kind, Path(directory)))
            finally:
                if hog:
                    hog.kill()
            cells = " | ".join(f"{statistics.median(values):.1f}" for values in figures.values())
            print(f"| {kind} | {load} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
