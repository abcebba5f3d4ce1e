"""Does the policy's log-std bound ever bind? For each run folder, the log-std that its last policy gives
on every state of its saved replay buffer, before the clamp to [LOG_STD_MIN, LOG_STD_MAX].

    python3 analysis/log_std.py runs/learning/soft-actor-critic/Pendulum-v1/seed=*

It prints, per run, the lowest, the 0.1% quantile, the median and the highest log-std over those states
and action dimensions, and how many fall below -5 (CleanRL's lower bound) or outside this project's
bounds. A bound that no state reaches leaves learning as it is.

The last column asks the same of the tanh correction log(1 - tanh(u)^2): this project computes it
exactly, SB3 and CleanRL as log(1 - tanh(u)^2 + 1e-6). On one action sampled per state, it counts the
action dimensions where the two differ by more than 0.1 nat (|u| above about 6.5).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from soft_actor_critic.networks import LOG_STD_MAX, LOG_STD_MIN, tanh_log_det  # noqa: E402  (after the path that finds it)
from soft_actor_critic.runs import load_checkpoint, load_train_config  # noqa: E402

EPSILON_DIFFERS = 0.1  # nats


def raw_log_std(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The unclamped log-std of the run's checkpointed policy on its buffer's states, and where on one
    sampled action per state the tanh correction with +1e-6 is off by more than EPSILON_DIFFERS: both
    (states, action dims)."""
    from soft_actor_critic.environment import make_env
    from soft_actor_critic.evaluate import load_network

    config = load_train_config(run_dir)
    policy, _ = load_network(run_dir, config, make_env(config))
    buffer_file = load_checkpoint(run_dir)["buffer_file"]
    with np.load(run_dir / buffer_file, allow_pickle=False) as arrays:
        observations = torch.as_tensor(arrays["observations"], dtype=torch.float32)
    with torch.inference_mode():
        mean, log_std = policy.net(observations).chunk(2, dim=-1)
        generator = torch.Generator().manual_seed(0)
        pre_squash = mean + log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp() * torch.randn(mean.shape, generator=generator)
        exact = tanh_log_det(pre_squash)
        with_epsilon = torch.log(1 - torch.tanh(pre_squash).pow(2) + 1e-6)  # as SB3 and CleanRL do
        return log_std.numpy(), ((with_epsilon - exact).abs() > EPSILON_DIFFERS).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args()
    print(f"bounds [{LOG_STD_MIN}, {LOG_STD_MAX}]\n")
    print("| run | states | lowest | 0.1% | median | highest | below -5 | outside the bounds | 1e-6 differs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run_dir in args.run_dirs:
        values, epsilon_differs = raw_log_std(run_dir)
        outside = np.mean((values < LOG_STD_MIN) | (values > LOG_STD_MAX))
        low, quantile, median, high = values.min(), np.quantile(values, 0.001), np.median(values), values.max()
        print(
            f"| {run_dir} | {len(values)} | {low:.2f} | {quantile:.2f} | {median:.2f} | {high:.2f} "
            f"| {np.mean(values < -5):.2%} | {outside:.2%} | {np.mean(epsilon_differs):.3%} |"
        )


if __name__ == "__main__":
    main()
