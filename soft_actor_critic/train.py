"""The environment loop: act, store, update, log, and leave a run folder behind."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams
from tqdm import tqdm

from soft_actor_critic.agent import Agent
from soft_actor_critic.config import RunError, TrainConfig
from soft_actor_critic.environment import make_env
from soft_actor_critic.replay_buffer import ReplayBuffer
from soft_actor_critic.runs import CHECKPOINT_FILE, CONFIG_FILE, create_run_dir, save_checkpoint

LOG_INTERVAL = 250  # env steps between two points of the loss and SPS curves


def log_hyperparameters(writer: SummaryWriter, config: TrainConfig) -> None:
    """Write the config into TensorBoard's HPARAMS tab, in the run's own event file."""
    values = {
        key: value if isinstance(value, (int, float, str, bool)) else str(value)
        for key, value in dataclasses.asdict(config).items()
    }
    for summary in hparams(values, {"episode/return": 0.0}):
        writer.file_writer.add_summary(summary)


def resolve_device(name: str) -> torch.device:
    """--device as a torch device: auto takes CUDA when torch sees a GPU, and cuda insists on one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RunError("--device cuda: torch sees no CUDA GPU here (try --device cpu)")
    return torch.device(name)


def train(config: TrainConfig) -> Path:
    """Train a fresh agent for exactly config.num_steps env steps; returns the run folder."""
    device = resolve_device(config.device)
    env = make_env(config.env_name)
    try:
        torch.manual_seed(config.seed)
        observation_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
        low, high = env.action_space.low, env.action_space.high
        agent = Agent(observation_dim, action_dim, low, high, config, device)
        try:
            buffer = ReplayBuffer(config.memory_size, observation_dim, action_dim, config.seed, device)
        except (MemoryError, RuntimeError):  # torch reports a failed allocation as a RuntimeError
            raise RunError(f"--memory-size {config.memory_size} does not fit in memory") from None
        # Only now that everything is built: a run folder is never left behind by bad input.
        run_dir = create_run_dir(config.directory, config.run_name, config.env_name)
        config = dataclasses.replace(config, run_name=run_dir.name)
        (run_dir / CONFIG_FILE).write_text(config.to_json())
        print(f"run folder: {run_dir}", flush=True)
        with SummaryWriter(str(run_dir)) as writer:
            log_hyperparameters(writer, config)
            run_loop(config, env, agent, buffer, writer)
    finally:
        env.close()
    save_checkpoint(run_dir / CHECKPOINT_FILE, agent.state_dict() | {"step": config.num_steps})
    print(f"finished {config.num_steps} steps; run folder: {run_dir}", flush=True)
    return run_dir


def run_loop(config: TrainConfig, env: gym.Env, agent: Agent, buffer: ReplayBuffer, writer: SummaryWriter) -> None:
    """config.num_steps env steps: uniform warm-up actions, then config.updates_per_step updates per step."""
    low, high = env.action_space.low, env.action_space.high
    warmup_rng = np.random.default_rng(config.seed + 1)  # apart from the buffer's sampling stream
    with tqdm(total=config.num_steps, unit="step", dynamic_ncols=True, mininterval=1.0) as progress:
        observation, _ = env.reset(seed=config.seed)
        episode_return, episode_length, recent_returns = 0.0, 0, deque(maxlen=10)
        clock, clock_step = time.perf_counter(), 0
        for step in range(1, config.num_steps + 1):
            if step <= config.start_step:  # the policy knows nothing yet: explore uniformly
                action = warmup_rng.uniform(low, high).astype(np.float32)
            else:
                action = agent.act(observation)
            next_observation, reward, terminated, truncated, _ = env.step(action)
            # On truncation gymnasium returns the true last observation (there is no auto-reset here),
            # and only `terminated` is stored: a time limit must not cut the bootstrap.
            buffer.add(observation, action, reward, next_observation, terminated)
            observation = next_observation
            episode_return += float(reward)
            episode_length += 1

            if step > config.start_step:
                for _ in range(config.updates_per_step):
                    metrics = agent.update(buffer.sample(config.batch_size))
                if step % LOG_INTERVAL == 0:
                    for key, value in metrics.items():
                        writer.add_scalar(key, value.item(), step)
            if step % LOG_INTERVAL == 0:
                now = time.perf_counter()
                writer.add_scalar("time/sps", (step - clock_step) / (now - clock), step)
                clock, clock_step = now, step

            if terminated or truncated:
                writer.add_scalar("episode/return", episode_return, step)
                writer.add_scalar("episode/length", episode_length, step)
                recent_returns.append(episode_return)
                progress.set_postfix(recent_return=f"{np.mean(recent_returns):.1f}", refresh=False)
                observation, _ = env.reset()
                episode_return, episode_length = 0.0, 0
            progress.update()
