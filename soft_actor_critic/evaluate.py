"""Load a run's policy and roll it out: print returns, show a window, or record GIFs."""

from __future__ import annotations

import contextlib
import itertools
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from PIL import Image

from soft_actor_critic.agent import policy_network
from soft_actor_critic.config import CHECKPOINT_FILES, ConfigError, EvalConfig, RunError, TrainConfig, reported
from soft_actor_critic.environment import has_display, make_env
from soft_actor_critic.networks import SquashedGaussianPolicy
from soft_actor_critic.runs import (
    CHECKPOINT_FILE,
    create_unique_dir,
    find_run,
    load_checkpoint,
    load_train_config,
    timestamp,
)

VIDEO_DIR = "videos"  # of a run folder: the GIFs of train --capture-video, and a folder per eval --record
MAX_GIF_FPS = 30  # frames above this rate are dropped: smaller files, and browsers slow faster GIFs anyway


def create_video_dir(run_dir: Path) -> Path:
    """A new folder for this eval's GIFs, <run>/videos/<date>_<time>: earlier recordings stay."""
    with reported(f"cannot create a folder for GIFs in {run_dir / VIDEO_DIR}", OSError):
        return create_unique_dir(run_dir / VIDEO_DIR, timestamp())


def load_network(
    run_dir: Path, config: TrainConfig, env: gym.Env, name: str = CHECKPOINT_FILE
) -> tuple[SquashedGaussianPolicy, int | None]:
    """The policy of the run (whose config is `config`) in its file `name`, sized for `env`, in eval mode,
    and the step it was saved at; a file that doesn't fit is a RunError."""
    action_space = env.action_space
    policy = policy_network(
        config, env.observation_space.shape[0], action_space.shape[0], action_space.low, action_space.high
    )
    state = load_checkpoint(run_dir, name)
    with reported(f"{run_dir / name} does not fit the run's config", KeyError, TypeError, RuntimeError):
        policy.load_state_dict(state["policy"])
    return policy, state.get("step")


def write_gif(frames: list[Image.Image], path: Path, fps: float) -> None:
    """The frames as a looping GIF that plays at `fps` in real time. A GIF counts whole hundredths of a
    second, so 30 fps alternates 30 and 40 ms frames: 33.3 ms on average, never faster than fps overall."""
    starts = [round(frame * 100 / fps) * 10 for frame in range(len(frames) + 1)]  # each frame's start, in ms
    durations = [max(end - start, 10) for start, end in itertools.pairwise(starts)]
    with reported(f"cannot write {path}", OSError):
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)


def render_frame(env: gym.Env) -> Image.Image:
    """The env's current frame, palette-quantized (1 byte a pixel) while the episode's frames are held."""
    # each renderer (pygame, MuJoCo's GL backends) fails its own way
    with reported(f"cannot render {env.spec.id if env.spec else env}", Exception):
        return Image.fromarray(env.render()).quantize(256, method=Image.Quantize.FASTOCTREE)  # 6x median cut's speed


def rollout(
    env: gym.Env,
    policy: SquashedGaussianPolicy,
    *,
    deterministic: bool,
    seed: int | None = None,
    frame_skip: int | None = None,
    max_frames: int | None = None,
) -> tuple[float, int, list[Image.Image]]:
    """One episode: its return, its length, and every frame_skip-th frame when frame_skip is set (the first
    max_frames of them, if given)."""
    device = next(policy.parameters()).device
    observation, _ = env.reset(seed=seed)
    episode_return, length, frames, done = 0.0, 0, [], False
    while True:
        filming = frame_skip and (max_frames is None or len(frames) < max_frames)
        if filming and (done or length % frame_skip == 0):
            frames.append(render_frame(env))
        if done:
            return episode_return, length, frames
        with torch.inference_mode():
            action = policy.act(torch.as_tensor(observation, dtype=torch.float32, device=device)[None], deterministic)
        observation, reward, terminated, truncated, _ = env.step(action[0].cpu().numpy())
        episode_return += float(reward)
        length += 1
        done = terminated or truncated


def deterministic_returns(
    env: gym.Env, policy: SquashedGaussianPolicy, num_episodes: int, seed: int | None
) -> list[float]:
    """The returns of num_episodes episodes acting with tanh(mean); the first reset is seeded with `seed`,
    so every call plays the same episodes (None: the env's generator goes on)."""
    return [
        rollout(env, policy, deterministic=True, seed=seed if episode == 0 else None)[0]
        for episode in range(num_episodes)
    ]


def evaluate(config: EvalConfig) -> list[float]:
    """Roll out the run's policy for config.num_episodes episodes; returns their returns."""
    run_dir = find_run(config.directory, config.run_name)
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
    with contextlib.closing(make_env(train_config, render_mode=render_mode)) as env:
        returns = play(env, run_dir, train_config, config)
    print(f"mean return {np.mean(returns):.1f} ± {np.std(returns):.1f} over {len(returns)} episodes", flush=True)
    return returns


def gif_frame_skip(env: gym.Env) -> int:
    """Every how many steps a GIF of the env keeps a frame: as few as play at MAX_GIF_FPS or slower."""
    return math.ceil(steps_per_second(env) / MAX_GIF_FPS)


def steps_per_second(env: gym.Env) -> float:
    """The env's own speed, at which its GIFs play in real time: one step per time step (`dt`) where the env
    has one (Pendulum's 0.05 s, a MuJoCo task's), else its render_fps, else MAX_GIF_FPS."""
    dt = getattr(env.unwrapped, "dt", None)
    return 1 / dt if dt else env.metadata.get("render_fps") or MAX_GIF_FPS


def play(env: gym.Env, run_dir: Path, train_config: TrainConfig, config: EvalConfig) -> list[float]:
    """The episodes of `evaluate`, printed (and recorded) one by one; returns their returns."""
    name = CHECKPOINT_FILES[config.checkpoint]
    policy, step = load_network(run_dir, train_config, env, name)
    print(f"the policy of step {step} from {run_dir / name}", flush=True)
    torch.manual_seed(config.seed)
    env_fps = steps_per_second(env)
    frame_skip = gif_frame_skip(env) if config.record else None
    video_dir = create_video_dir(run_dir) if config.record else None
    returns = []
    for episode in range(1, config.num_episodes + 1):
        # Seeding the first reset seeds the env's generator for all the episodes after it.
        seed = config.seed if episode == 1 else None
        episode_return, length, frames = rollout(
            env, policy, deterministic=config.deterministic, seed=seed, frame_skip=frame_skip
        )
        returns.append(episode_return)
        print(f"episode {episode}: return {episode_return:.1f}, length {length}", flush=True)
        if frames:
            path = video_dir / f"episode-{episode}.gif"
            write_gif(frames, path, env_fps / frame_skip)
            print(f"recorded {path}", flush=True)
    return returns
