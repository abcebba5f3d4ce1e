"""The periodic evals of training: deterministic episodes every --eval-every steps, logged to TensorBoard
and eval.csv, with the rule that keeps the best policy in best.pt (this module owns both files), and with
--capture-video a GIF of each eval's first episode."""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

from soft_actor_critic.agent import Agent
from soft_actor_critic.config import RunError, TrainConfig, reported
from soft_actor_critic.console import say
from soft_actor_critic.environment import make_env
from soft_actor_critic.evaluate import (
    VIDEO_DIR,
    deterministic_returns,
    gif_frame_skip,
    render_frame,
    rollout,
    steps_per_second,
    write_gif,
)
from soft_actor_critic.runs import BEST_FILE, EvalRow, load_checkpoint, read_eval_rows, save_best, write_eval_rows
from soft_actor_critic.tracking import RunWriter

# The frames of a --capture-video GIF, at most: SB3's video recorder takes 200 steps by default. Where OpenGL
# renders in software (no GPU), a MuJoCo frame costs about 70 ms: 250 hold a whole episode of Pendulum, Hopper or
# LunarLander at their GIF rates, and the first 12.5 s of HalfCheetah's 50 (benchmarks/video_cost.py).
VIDEO_FRAMES = 250


class PeriodicEval:
    """`episodes` episodes with deterministic actions on an env of its own, logged to TensorBoard
    (eval/return, eval/return_std) and eval.csv; the best policy so far goes to best.pt.

    Every eval plays the same episodes (its first reset is seeded with `seed`), so the curve compares
    policies, not start states. It draws on no random stream of the training: with or without it,
    a run learns the same.
    """

    def __init__(
        self,
        run_dir: Path,
        env: gym.Env,
        agent: Agent,
        writer: RunWriter,
        *,
        episodes: int,
        seed: int,
        video: bool = False,
    ) -> None:
        self.run_dir, self.env, self.agent, self.writer = run_dir, env, agent, writer
        self.episodes, self.seed = episodes, seed
        self.frame_skip = gif_frame_skip(env) if video else None  # None: no video
        self.rows = read_eval_rows(run_dir)  # forget_evals_after() has dropped those past the checkpoint
        self.best_return = best_eval_return(run_dir)

    def __call__(self, step: int) -> None:
        """Evaluate the policy of `step`; it goes to best.pt if it beats every eval so far."""
        policy = self.agent.policy
        # The first episode, seeded, is the one a video shows. Rendering reads the env's state and draws
        # on no random stream: the returns are the same without it.
        film = {"frame_skip": self.frame_skip, "max_frames": VIDEO_FRAMES}
        first, _, frames = rollout(self.env, policy, deterministic=True, seed=self.seed, **film)
        returns = [first, *deterministic_returns(self.env, policy, self.episodes - 1, seed=None)]
        if frames:
            self.record(frames, step)
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

    def record(self, frames: list[Image.Image], step: int) -> None:
        """The eval's video: <run>/videos/step=<step>.gif, also in TensorBoard (and W&B) as eval/video."""
        path = self.run_dir / VIDEO_DIR / f"step={step}.gif"
        with reported(f"cannot create {path.parent}", OSError):
            path.parent.mkdir(exist_ok=True)
        write_gif(frames, path, steps_per_second(self.env) / self.frame_skip)
        self.writer.add_gif("eval/video", path, step)


def make_eval_env(config: TrainConfig) -> gym.Env:
    """The run's eval env; with --capture-video, one that renders off-screen, tried once now: an env that cannot
    render is said in one line at the start, and the run trains on without videos (a sweep over several envs
    does not stop for one). Each eval seeds its first reset: this reset changes none of them."""
    if not config.capture_video:
        return make_env(config)
    env = make_env(config, render_mode="rgb_array")
    try:
        env.reset(seed=0)
        render_frame(env)
        return env
    except RunError as error:
        env.close()
        say(f"--capture-video: {error}; training without videos", sys.stderr)
        return make_env(config)


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
