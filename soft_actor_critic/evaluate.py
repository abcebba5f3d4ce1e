"""Load a run's policy and roll it out: print returns, show a window, or record GIFs."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from PIL import Image

from soft_actor_critic.config import CHECKPOINT_FILE, ConfigError, EvalConfig, RunError, load_train_config
from soft_actor_critic.environment import make_env
from soft_actor_critic.networks import SquashedGaussianPolicy

GIF_FPS = 25  # frames above this rate are dropped: smaller files, and browsers slow faster GIFs anyway


def find_run(config: EvalConfig) -> Path:
    run_dir = config.run_dir
    if run_dir.is_dir():
        return run_dir
    root = Path(config.directory)
    runs = sorted(path.name for path in root.iterdir() if (path / "config.json").is_file()) if root.is_dir() else []
    listing = f"runs there: {', '.join(runs)}" if runs else "it holds no runs"
    raise RunError(f"no run {config.run_name!r} in {root}; {listing}")


def has_display() -> bool:
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def load_policy(run_dir: Path, hidden_units: tuple[int, ...], env: gym.Env) -> SquashedGaussianPolicy:
    """The run's policy, sized for `env`; a file that can't be read or doesn't fit is a RunError."""
    observation_space, action_space = env.observation_space, env.action_space
    policy = SquashedGaussianPolicy(
        observation_space.shape[0], action_space.shape[0], hidden_units, action_space.low, action_space.high
    )
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        raise RunError(f"{path} is missing: the run has no checkpoint yet")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        policy.load_state_dict(state["policy"])
    except Exception as error:  # torch raises many types for a bad file; all mean the same here
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunError(f"cannot load {path}: {reason}") from None
    return policy.eval()


def write_gif(frames: list[Image.Image], path: Path, fps: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)


def rollout(
    env: gym.Env, policy: SquashedGaussianPolicy, deterministic: bool, seed: int | None, frame_skip: int | None
) -> tuple[float, int, list[Image.Image]]:
    """One episode: its return, its length, and every frame_skip-th frame when frame_skip is set."""
    observation, _ = env.reset(seed=seed)
    episode_return, length, frames, done = 0.0, 0, [], False
    while True:
        if frame_skip and (done or length % frame_skip == 0):
            frames.append(Image.fromarray(env.render()).quantize(256))  # 1 byte a pixel while held
        if done:
            return episode_return, length, frames
        with torch.inference_mode():
            action = policy.act(torch.as_tensor(observation, dtype=torch.float32)[None], deterministic)[0]
        observation, reward, terminated, truncated, _ = env.step(action.numpy())
        episode_return += float(reward)
        length += 1
        done = terminated or truncated


def evaluate(config: EvalConfig) -> list[float]:
    """Roll out the run's policy for config.num_episodes episodes; returns their returns."""
    run_dir = find_run(config)
    train_config = load_train_config(run_dir)
    for flag, given, saved in (
        ("--env-name", config.env_name, train_config.env_name),
        ("--hidden-units", config.hidden_units, train_config.hidden_units),
    ):
        if given is not None and given != saved:
            raise ConfigError(f"{flag} {given} differs from the run's {saved}; leave it out to use the run's")
    if config.render and not has_display():
        raise RunError("--render needs a display and none was found; use --record to write GIFs instead")

    render_mode = "human" if config.render else "rgb_array" if config.record else None
    env = make_env(train_config.env_name, render_mode=render_mode)
    policy = load_policy(run_dir, train_config.hidden_units, env)
    torch.manual_seed(config.seed)
    env_fps = env.metadata.get("render_fps") or GIF_FPS
    frame_skip = max(1, round(env_fps / GIF_FPS)) if config.record else None
    stamp = f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
    returns = []
    try:
        for episode in range(1, config.num_episodes + 1):
            # Seeding the first reset seeds the env's generator for all the episodes after it.
            seed = config.seed if episode == 1 else None
            episode_return, length, frames = rollout(env, policy, config.deterministic, seed, frame_skip)
            returns.append(episode_return)
            print(f"episode {episode}: return {episode_return:.1f}, length {length}", flush=True)
            if frames:
                path = run_dir / "videos" / f"{stamp}_episode-{episode}.gif"
                write_gif(frames, path, env_fps / frame_skip)
                print(f"recorded {path}", flush=True)
    finally:
        env.close()
    print(f"mean return {np.mean(returns):.1f} ± {np.std(returns):.1f} over {len(returns)} episodes", flush=True)
    return returns
