"""Two ways to run N seeds' critics as one, timed side by side: the packed agent's stacking (one TwinCritic
whose EnsembleLinear layers hold a member per seed and Q-function, as packed.py builds it) against
torch.func's stack_module_state of N single-run critics, with vmap over torch.func.grad of the loss.

    python3 benchmarks/stacking_vs_vmap.py                  # 4 and 8 seeds, 256-256, batch 256, on the CPU
    python3 benchmarks/stacking_vs_vmap.py --seeds 16 --device cuda

Each times the critic step's arithmetic, the forward pass of Q1 and Q2 on a (seeds, batch) batch, a mean
squared error and the gradients of every weight, for HalfCheetah's sizes (17 + 6 inputs), alternating the
two ways, and prints the median milliseconds of each and their ratio. Adam's step is the same for both
(one fused step over the stacked tensors) and is left out.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.func import functional_call, grad, stack_module_state, vmap

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from soft_actor_critic.networks import TwinCritic  # noqa: E402

OBSERVATION_DIM, ACTION_DIM = 17, 6


def timed(step, repeats: int) -> float:
    """Median milliseconds of step(), after warm-up calls."""
    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def compare(seeds: int, args: argparse.Namespace) -> tuple[float, float]:
    """Median milliseconds of the critic step of `seeds` seeds, stacked and by vmap."""
    shape = (seeds, args.batch_size)
    observations = torch.randn(*shape, OBSERVATION_DIM, device=args.device)
    actions = torch.randn(*shape, ACTION_DIM, device=args.device)
    targets = torch.randn(*shape, device=args.device)
    hidden_units = tuple(args.hidden_units)

    stacked = TwinCritic(OBSERVATION_DIM, ACTION_DIM, hidden_units, seeds=seeds).to(args.device)

    def stacked_step() -> None:
        stacked.zero_grad(set_to_none=True)
        q1, q2 = stacked(observations, actions)
        ((q1 - targets).square().mean(-1) + (q2 - targets).square().mean(-1)).sum().backward()

    singles = [TwinCritic(OBSERVATION_DIM, ACTION_DIM, hidden_units).to(args.device) for _ in range(seeds)]
    parameters, _ = stack_module_state(singles)

    def loss(params, observation, action, target):
        q1, q2 = functional_call(singles[0], params, (observation, action))
        return (q1 - target).square().mean() + (q2 - target).square().mean()

    per_seed_gradients = vmap(grad(loss))

    def vmap_step() -> None:
        per_seed_gradients(parameters, observations, actions, targets)

    times = {"stacked": [], "vmap": []}
    for repeat in range(4):
        for name, step in (("stacked", stacked_step), ("vmap", vmap_step))[:: 1 if repeat % 2 == 0 else -1]:
            times[name].append(timed(step, args.repeats))
    return statistics.median(times["stacked"]), statistics.median(times["vmap"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--hidden-units", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}")
    print("| seeds | stacked, ms | vmap, ms | vmap / stacked |")
    print("|---:|---:|---:|---:|")
    for seeds in args.seeds:
        stacked_ms, vmap_ms = compare(seeds, args)
        print(f"| {seeds} | {stacked_ms:.2f} | {vmap_ms:.2f} | {vmap_ms / stacked_ms:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
