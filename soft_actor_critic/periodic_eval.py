"""The periodic evals of training: deterministic episodes every --eval-every steps, logged to TensorBoard
and eval.csv, with the rule that keeps the best policy in best.pt. This module owns both files."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
from torch.utils.tensorboard import SummaryWriter

from soft_actor_critic.agent import Agent
from soft_actor_critic.config import RunError
from soft_actor_critic.console import say
from soft_actor_critic.evaluate import deterministic_returns
from soft_actor_critic.runs import BEST_FILE, EvalRow, load_checkpoint, read_eval_rows, save_best, write_eval_rows


class PeriodicEval:
    """`episodes` episodes with deterministic actions on an env of its own, logged to TensorBoard
    (eval/return, eval/return_std) and eval.csv; the best policy so far goes to best.pt.

    Every eval plays the same episodes (its first reset is seeded with `seed`), so the curve compares
    policies, not start states. It draws on no random stream of the training: with or without it,
    a run learns the same.
    """

    def __init__(
        self, run_dir: Path, env: gym.Env, agent: Agent, writer: SummaryWriter, *, episodes: int, seed: int
    ) -> None:
        self.run_dir, self.env, self.agent, self.writer = run_dir, env, agent, writer
        self.episodes, self.seed = episodes, seed
        self.rows = read_eval_rows(run_dir)  # forget_evals_after() has dropped those past the checkpoint
        self.best_return = best_eval_return(run_dir)

    def __call__(self, step: int) -> None:
        """Evaluate the policy of `step`; it goes to best.pt if it beats every eval so far."""
        returns = deterministic_returns(self.env, self.agent.policy, self.episodes, self.seed)
        mean, std = float(np.mean(returns)), float(np.std(returns))
        self.writer.add_scalar("eval/return", mean, step)
        self.writer.add_scalar("eval/return_std", std, step)
        self.rows.append(EvalRow(step=step, return_mean=mean, return_std=std, episodes=len(returns)))
        write_eval_rows(self.run_dir, self.rows)
        best = mean > self.best_return
        if best:
            self.best_return = mean
            save_best(self.run_dir, {"policy": self.agent.policy.state_dict(), "step": step, "eval_return": mean})
        say(f"step {step}: eval return {mean:.1f} ± {std:.1f} over {len(returns)} episodes" + " (best)" * best)


def forget_evals_after(run_dir: Path, step: int) -> None:
    """Drop the rows of eval.csv past a resumed run's checkpoint: what a run killed after its checkpoint
    evaluated is logged again by the resumed run."""
    rows = read_eval_rows(run_dir)
    if any(row["step"] > step for row in rows):
        write_eval_rows(run_dir, [row for row in rows if row["step"] <= step])


def best_eval_return(run_dir: Path) -> float:
    """The eval return best.pt must beat to be replaced: its own, even where a run killed after its checkpoint
    wrote it (a policy that really scored that return); -inf where there is none or it cannot be read, so
    that the next eval replaces it."""
    with contextlib.suppress(RunError, KeyError, TypeError, ValueError):
        return float(load_checkpoint(run_dir, BEST_FILE)["eval_return"])
    return -math.inf
