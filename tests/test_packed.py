"""packed.py: N seeds' agents stacked and updated as one, each seed as its own."""

import numpy as np
import pytest
import torch
from test_agent import ACTION_DIM, OBSERVATION_DIM, make_batch

from soft_actor_critic.agent import Agent
from soft_actor_critic.config import TrainConfig
from soft_actor_critic.packed import PackedAgent
from soft_actor_critic.replay_buffer import Batch

SEEDS = 3
CONFIG = TrainConfig(hidden_units=(16, 16), alpha=0.3)
LOW, HIGH = -np.ones(ACTION_DIM), np.ones(ACTION_DIM)


def single_agents() -> list[Agent]:
    agents = []
    for seed in range(SEEDS):
        torch.manual_seed(seed)  # each seed's initial weights from its own stream, as its single run's
        agents.append(Agent(OBSERVATION_DIM, ACTION_DIM, LOW, HIGH, CONFIG))
    return agents


def packed_agent(agents: list[Agent]) -> PackedAgent:
    packed = PackedAgent(SEEDS, OBSERVATION_DIM, ACTION_DIM, LOW, HIGH, CONFIG)
    packed.pack(agents)
    return packed


def stacked(batches: list[Batch]) -> Batch:
    return Batch(*(torch.stack(tensors) for tensors in zip(*batches)))


def states_equal(one: dict, other: dict) -> bool:
    if isinstance(one, torch.Tensor):
        return torch.equal(one, other)
    if isinstance(one, dict):
        return one.keys() == other.keys() and all(states_equal(one[key], other[key]) for key in one)
    return one == other


def test_unpacking_gives_each_seed_back_its_own_agent():
    agents = single_agents()
    for agent in agents:  # Adam's moments exist
        agent.update(make_batch(seed=5))
    packed = packed_agent(agents)
    copies = single_agents()
    packed.unpack(copies)
    for agent, copy in zip(agents, copies):
        assert states_equal(agent.state_dict(), copy.state_dict())


def test_a_packed_update_is_each_seeds_own_update(monkeypatch):
    """Given the same batch and the same policy noise, seed k's slice moves as its single agent does."""
    agents = single_agents()
    packed = packed_agent(agents)
    batches = [make_batch(seed=seed) for seed in range(SEEDS)]
    noise = [torch.randn(SEEDS, 8, ACTION_DIM) for _ in range(4)]  # two samples per update, two updates
    calls = []

    def drawn(like: torch.Tensor) -> torch.Tensor:
        step = noise[len(calls) % len(noise)]
        calls.append(1)
        return step if like.dim() == 3 else step[current_seed]

    monkeypatch.setattr(torch, "randn_like", drawn)
    for current_seed, agent in enumerate(agents):
        calls.clear()
        single = [agent.update(batches[current_seed]) for _ in range(2)]
    calls.clear()
    current_seed = None
    packed_metrics = [packed.update(stacked(batches)) for _ in range(2)]
    unpacked = single_agents()
    packed.unpack(unpacked)
    for agent, own in zip(agents, unpacked):
        for mine, theirs in zip(agent.tensors(), own.tensors(), strict=True):
            torch.testing.assert_close(theirs, mine, rtol=1e-5, atol=1e-6)
    assert packed_metrics[-1]["loss/critic"].shape == (SEEDS,)  # one metric per seed
    torch.testing.assert_close(packed_metrics[-1]["loss/critic"][-1], single[-1]["loss/critic"])


@pytest.mark.parametrize("leak", [False, True])
def test_no_gradient_crosses_from_one_seed_to_another(monkeypatch, leak):
    """Seed 0's batch changes; seed 1's state after the update must not. With `leak`, targets that mix
    the seeds (each seed's plus the mean over seeds) are planted, and the check must catch them."""
    if leak:
        from soft_actor_critic import losses

        soft_q_target = losses.soft_q_target
        monkeypatch.setattr(losses, "soft_q_target", lambda *args: soft_q_target(*args) + soft_q_target(*args).mean(0))
    results = []
    for reward in (0.0, 100.0):
        torch.manual_seed(0)
        packed = packed_agent(single_agents())
        batches = [make_batch(seed=seed) for seed in range(SEEDS)]
        batches[0] = batches[0]._replace(rewards=batches[0].rewards + reward)
        torch.manual_seed(1)
        packed.update(stacked(batches))
        unpacked = single_agents()
        packed.unpack(unpacked)
        results.append(unpacked[1].state_dict())
    assert states_equal(*results) != leak


def test_packed_actions_are_each_seeds_own():
    agents = single_agents()
    packed = packed_agent(agents)
    observations = np.random.default_rng(0).standard_normal((SEEDS, OBSERVATION_DIM)).astype(np.float32)
    actions = packed.act(observations, deterministic=True)
    assert actions.shape == (SEEDS, ACTION_DIM)
    for agent, observation, action in zip(agents, observations, actions):
        np.testing.assert_allclose(action, agent.act(observation, deterministic=True), rtol=1e-5, atol=1e-6)
