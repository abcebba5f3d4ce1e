"""Where one env step's time goes on a GPU: the update (eager and as a CUDA graph), acting, the env, the buffer.

    python3 benchmarks/gpu_step.py        # needs a CUDA GPU; HalfCheetah-v5, the default networks and batch

Each figure is the mean over many calls after 10 warm-up calls, in microseconds, with the GPU synchronized
at the end of the timing (and, where it says so, after every call). It also counts the CUDA kernels of one
eager update with torch.profiler: the launches a CUDA graph replays with one call.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from soft_actor_critic.agent import Agent  # noqa: E402  (after the path that finds it)
from soft_actor_critic.config import TrainConfig  # noqa: E402
from soft_actor_critic.cuda_graphs import GraphedAct, GraphedUpdate  # noqa: E402
from soft_actor_critic.replay_buffer import ReplayBuffer  # noqa: E402


def microseconds(function, calls: int) -> float:
    for _ in range(10):
        function()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        function()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    env = gym.make("HalfCheetah-v5")
    observation_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    config = TrainConfig()
    agent = Agent(observation_dim, action_dim, env.action_space.low, env.action_space.high, config, "cuda")
    buffer = ReplayBuffer(100_000, observation_dim, action_dim, seed=0, device="cuda")
    observation, _ = env.reset(seed=0)

    def step() -> None:
        nonlocal observation
        next_observation, _, terminated, truncated, _ = env.step(env.action_space.sample())
        observation = env.reset()[0] if terminated or truncated else next_observation

    for _ in range(5000):  # random transitions to sample from
        previous = observation
        step()
        buffer.add(previous, env.action_space.sample(), 0.0, observation, terminated=False)

    batch_size = config.batch_size
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"eager update: {microseconds(lambda: agent.update(buffer.sample(batch_size)), 300):.0f} us")
    with profile(activities=[ProfilerActivity.CUDA]) as profiler:
        agent.update(buffer.sample(batch_size))
        torch.cuda.synchronize()
    kernels = [event for event in profiler.events() if event.device_type == torch.autograd.DeviceType.CUDA]
    print(f"CUDA kernels in one eager update: {len(kernels)}")
    update = GraphedUpdate(agent, buffer, batch_size)
    print(f"graph update (replays back to back): {microseconds(update, 1000):.0f} us")
    synchronized = microseconds(lambda: (update(), torch.cuda.synchronize()), 500)
    print(f"graph update (synchronized after each): {synchronized:.0f} us")
    act = GraphedAct(agent, observation_dim)
    print(f"eager act: {microseconds(lambda: agent.act(observation), 500):.0f} us")
    print(f"graph act: {microseconds(lambda: act(observation), 1000):.0f} us")
    print(f"env step (gymnasium HalfCheetah-v5): {microseconds(step, 2000):.0f} us")
    action = np.zeros(action_dim, np.float32)
    add = lambda: buffer.add(observation, action, 1.0, observation, terminated=False)  # noqa: E731
    print(f"buffer add: {microseconds(add, 2000):.0f} us")

    def env_step() -> None:
        action = act(observation)
        previous = observation
        step()
        buffer.add(previous, action, 1.0, observation, terminated=False)
        update()

    print(f"act + env step + add + graph update: {microseconds(env_step, 1000):.0f} us per env step")


if __name__ == "__main__":
    main()
