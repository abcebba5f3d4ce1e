import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import TimeLimit
from torch.utils.tensorboard import SummaryWriter

from soft_actor_critic.agent import Agent
from soft_actor_critic.checkpoints import Progress, Seeds
from soft_actor_critic.config import RunError
from soft_actor_critic.replay_buffer import ReplayBuffer
from soft_actor_critic.training import Training, build_agent_and_buffer, resolve_device, training_loop


class CounterEnv(gym.Env):
    """Observation t counts the steps of the episode; it terminates at `terminate_at` if set."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, terminate_at: int | None = None):
        self.terminate_at, self.t = terminate_at, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = self.terminate_at is not None and self.t >= self.terminate_at
        return np.array([self.t], np.float32), 1.0, terminated, False, {}


def loop(config, env: gym.Env, agent, buffer: ReplayBuffer, tmp_path) -> None:
    """training.training_loop of one run, without evals; none of its steps falls due for a checkpoint."""
    seeds = Seeds.of(config.seed)
    envs = gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    with SummaryWriter(str(tmp_path / "events")) as writer:
        run = Training(config, seeds, envs.envs[0], agent, buffer, writer, Progress.start(config, seeds), tmp_path)
        training_loop([run], envs)


def collect(env: gym.Env, small_config, tmp_path, steps: int) -> ReplayBuffer:
    config = dataclasses.replace(small_config, num_steps=steps, start_step=steps)
    agent = Agent(1, 1, env.action_space.low, env.action_space.high, config)
    buffer = ReplayBuffer(config.memory_size, 1, 1, seed=0)
    loop(config, env, agent, buffer, tmp_path)
    return buffer


def test_truncation_keeps_the_bootstrap_and_the_true_last_observation(small_config, tmp_path):
    buffer = collect(TimeLimit(CounterEnv(), max_episode_steps=3), small_config, tmp_path, steps=7)
    np.testing.assert_array_equal(buffer.observations[:7, 0], [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(buffer.next_observations[:7, 0], [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(buffer.terminateds[:7], np.zeros(7))


def test_termination_cuts_the_bootstrap(small_config, tmp_path):
    buffer = collect(TimeLimit(CounterEnv(terminate_at=3), max_episode_steps=100), small_config, tmp_path, steps=7)
    np.testing.assert_array_equal(buffer.observations[:7, 0], [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(buffer.terminateds[:7], [0, 0, 1, 0, 0, 1, 0])


def test_exactly_num_steps_env_steps(small_config, tmp_path):
    buffer = collect(TimeLimit(CounterEnv(), max_episode_steps=5), small_config, tmp_path, steps=13)
    assert len(buffer) == 13


class CountingAgent:
    """Stands in for Agent in training_loop: records when it is asked to act and to update."""

    device = torch.device("cpu")

    def __init__(self, buffer: ReplayBuffer):
        self.buffer, self.acted, self.updated_at, self.policy_steps = buffer, 0, [], []

    def act(self, observations):
        self.acted += 1
        return np.zeros((len(observations), 1), np.float32)

    def update(self, batch, policy_step=True):
        self.updated_at.append(len(self.buffer))
        self.policy_steps.append(policy_step)
        return {}


def test_uniform_warm_up_then_one_update_per_step(small_config, tmp_path):
    config = dataclasses.replace(small_config, num_steps=13, start_step=5)
    buffer = ReplayBuffer(config.memory_size, 1, 1, seed=0)
    agent = CountingAgent(buffer)
    env = TimeLimit(CounterEnv(), max_episode_steps=4)
    loop(config, env, agent, buffer, tmp_path)
    assert agent.acted == 8  # steps 6..13 act with the policy
    assert agent.updated_at == list(range(6, 14))  # one update per step, each after storing that step
    warm_up_actions = buffer.actions[:5, 0].numpy()
    assert np.all(warm_up_actions != 0) and np.all(np.abs(warm_up_actions) <= 1)
    assert len(set(warm_up_actions)) == 5  # uniform draws, not one action repeated
    np.testing.assert_array_equal(buffer.actions[5:13, 0], np.zeros(8))


def test_updates_per_step_repeats_the_update(small_config, tmp_path):
    config = dataclasses.replace(small_config, num_steps=8, start_step=5, updates_per_step=3)
    buffer = ReplayBuffer(config.memory_size, 1, 1, seed=0)
    agent = CountingAgent(buffer)
    env = TimeLimit(CounterEnv(), max_episode_steps=4)
    loop(config, env, agent, buffer, tmp_path)
    assert agent.updated_at == [6, 6, 6, 7, 7, 7, 8, 8, 8]
    assert all(agent.policy_steps)  # --policy-delay 1: every update steps the policy


def test_the_policy_steps_every_policy_delay_updates(small_config, tmp_path):
    config = dataclasses.replace(small_config, num_steps=9, start_step=5, updates_per_step=2, policy_delay=3)
    buffer = ReplayBuffer(config.memory_size, 1, 1, seed=0)
    agent = CountingAgent(buffer)
    loop(config, TimeLimit(CounterEnv(), max_episode_steps=4), agent, buffer, tmp_path)
    assert agent.policy_steps == [False, False, True] * 2 + [False, False]  # the 3rd and 6th of 8 updates


NO_KERNEL = "CUDA error: no kernel image is available for execution on the device"
CPU_ALLOCATION = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 40000000000000 bytes."
SIZES = "do not fit in memory: --hidden-units 32 32 (critic 32 32), --memory-size 1000"


@pytest.mark.parametrize(
    "error, message",
    [
        (
            RuntimeError(f"{NO_KERNEL}\nCompile with `TORCH_USE_CUDA_DSA`"),
            f"cannot build the agent on cpu: {NO_KERNEL}",
        ),
        (RuntimeError(CPU_ALLOCATION), f"the networks and the replay buffer {SIZES} ({CPU_ALLOCATION})"),
        (
            torch.OutOfMemoryError("CUDA out of memory."),
            f"the networks and the replay buffer {SIZES} (CUDA out of memory.)",
        ),
        (MemoryError(), f"the networks and the replay buffer {SIZES} (MemoryError)"),
    ],
    ids=["no kernel image", "cpu allocation", "cuda out of memory", "MemoryError"],
)
def test_only_a_failed_allocation_blames_the_sizes_and_every_error_keeps_its_cause(
    small_config, monkeypatch, error, message
):
    """A GPU that this torch has no kernels for must not read as networks too large for memory."""

    def build_fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(Agent, "__init__", build_fails)
    with pytest.raises(RunError) as raised:
        build_agent_and_buffer(small_config, CounterEnv(), torch.device("cpu"), Seeds.of(1))
    assert str(raised.value) == message


@pytest.mark.parametrize("cuda_available", [False, True])
def test_device_auto_takes_cuda_only_when_there_is_one(cuda_available, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_available)
    assert resolve_device("auto") == torch.device("cuda" if cuda_available else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    if cuda_available:
        assert resolve_device("cuda") == torch.device("cuda")
    else:
        with pytest.raises(RunError, match="--device cuda"):
            resolve_device("cuda")


@pytest.mark.parametrize("load, noted", [(0.1, False), (64.0, True)])
def test_a_busy_machine_is_noted_when_torchs_threads_would_spin_on_it(load, noted, monkeypatch, capsys):
    from soft_actor_critic import training as train_module

    monkeypatch.setattr(train_module.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(train_module.torch, "get_num_threads", lambda: 2)
    train_module.note_a_busy_machine(torch.device("cpu"))
    assert ("OMP_NUM_THREADS=1" in capsys.readouterr().err) == noted
