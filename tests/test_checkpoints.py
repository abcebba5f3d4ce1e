"""checkpoints.py on its own: the run's random streams, what a checkpoint holds, and restoring from one."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import buffer_rows, read_checkpoint

from soft_actor_critic.agent import Agent
from soft_actor_critic.checkpoints import Progress, Seeds, random_states, restore, save_run, set_random_states
from soft_actor_critic.config import RunError, TrainConfig
from soft_actor_critic.environment import make_env
from soft_actor_critic.replay_buffer import ReplayBuffer
from soft_actor_critic.training import train


def test_a_seed_splits_into_independent_streams_alike_every_time():
    seeds = Seeds.of(1)
    assert seeds == Seeds.of(1) and seeds != Seeds.of(2)
    assert len(set(seeds)) == len(Seeds._fields)  # no two consumers draw the same bits


def test_a_checkpoint_holds_everything_needed_to_continue(small_config):
    run_dir = train(dataclasses.replace(small_config, num_steps=250, checkpoint_every=100, run_name="run"))
    state = read_checkpoint(run_dir)
    assert {"policy", "critic", "target_critic", "log_alpha"} <= set(state)
    assert {"policy_optimizer", "critic_optimizer", "alpha_optimizer"} <= set(state)
    assert state["step"] == 250 and state["first_update_after"] == small_config.start_step
    random_states = {"torch", "cuda", "buffer", "buffer_device", "warmup", "env"}  # every stream a run draws from
    assert set(state["rng"]) == random_states
    assert state["buffer_file"] == "replay_buffer-000000250.npz" and buffer_rows(run_dir) == 250
    assert sorted(path.name for path in run_dir.glob("replay_buffer-*")) == [state["buffer_file"]]  # old ones gone


def test_random_states_round_trip_through_a_checkpoint_file(small_config, tmp_path):
    env = make_env(TrainConfig(env_name="Pendulum-v1"))
    agent = Agent(3, 1, env.action_space.low, env.action_space.high, small_config)
    buffer = ReplayBuffer(100, 3, 1, seed=0)
    buffer.add(np.zeros(3), np.zeros(1), 0.0, np.zeros(3), False)
    progress = Progress.start(small_config, Seeds.of(small_config.seed))
    env.reset(seed=3)
    torch.save(random_states(env, agent, buffer, progress), tmp_path / "states.pt")

    def draws() -> list:
        return [
            torch.rand(1).item(),
            buffer.sample(4).rewards.tolist(),
            progress.warmup_rng.random(),
            env.unwrapped.np_random.random(),
        ]

    first = draws()
    set_random_states(torch.load(tmp_path / "states.pt", weights_only=True), env, agent, buffer, progress)
    assert draws() == first


def test_resume_restores_every_random_stream(small_config):
    run_dir = train(dataclasses.replace(small_config, num_steps=250, run_name="run"))
    env = make_env(TrainConfig(env_name="Pendulum-v1"))
    agent = Agent(3, 1, env.action_space.low, env.action_space.high, small_config)
    buffer = ReplayBuffer(small_config.memory_size, 3, 1, seed=0)
    torch.manual_seed(123)  # states a fresh process could be in, all unlike the run's
    env.reset(seed=123)
    progress = restore(run_dir, dataclasses.replace(small_config, num_steps=300), env, agent, buffer)
    restored, saved = random_states(env, agent, buffer, progress), read_checkpoint(run_dir)["rng"]
    assert set(restored) == set(saved)
    for name, state in saved.items():
        same = torch.equal(restored[name], state) if isinstance(state, torch.Tensor) else restored[name] == state
        assert same, name


def test_a_checkpoint_is_refused_while_a_part_is_not_finite(small_config, tmp_path):
    env = make_env(TrainConfig(env_name="Pendulum-v1"))
    agent = Agent(3, 1, env.action_space.low, env.action_space.high, small_config)
    with torch.no_grad():
        agent.log_alpha.fill_(math.nan)
    progress = Progress.start(small_config, Seeds.of(small_config.seed))
    buffer = ReplayBuffer(10, 3, 1, seed=0)
    with pytest.raises(RunError, match="NaN or infinite values at step 0: the last checkpoint is kept"):
        save_run(tmp_path, small_config, env, agent, buffer, progress)
    assert list(tmp_path.iterdir()) == []
