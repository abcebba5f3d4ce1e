import copy
import math

import numpy as np
import pytest
import torch

from soft_actor_critic import cuda_graphs
from soft_actor_critic.agent import Agent, polyak_update
from soft_actor_critic.config import TrainConfig
from soft_actor_critic.replay_buffer import Batch, ReplayBuffer

OBSERVATION_DIM, ACTION_DIM = 3, 2


def make_agent(**overrides) -> Agent:
    config = TrainConfig(hidden_units=(16, 16), **overrides)
    return Agent(OBSERVATION_DIM, ACTION_DIM, -np.ones(ACTION_DIM), np.ones(ACTION_DIM), config)


def make_batch(size: int = 8, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    arrays = (
        rng.standard_normal((size, OBSERVATION_DIM), dtype=np.float32),
        rng.uniform(-1, 1, (size, ACTION_DIM)).astype(np.float32),
        rng.standard_normal(size, dtype=np.float32),
        rng.standard_normal((size, OBSERVATION_DIM), dtype=np.float32),
        (rng.random(size) < 0.2).astype(np.float32),
    )
    return Batch(*map(torch.as_tensor, arrays))


def parameters(module: torch.nn.Module) -> list[torch.Tensor]:
    return [parameter.detach().clone() for parameter in module.parameters()]


@pytest.mark.parametrize("tau", [1.0, 0.0, 0.5])
def test_polyak_update(tau):
    agent = make_agent()
    before_target, source = parameters(agent.target_critic), parameters(agent.critic)
    with torch.no_grad():
        for parameter in agent.critic.parameters():
            parameter.add_(1.0)  # make the two differ
    source = parameters(agent.critic)
    polyak_update(agent.target_critic, agent.critic, tau)
    for after, old, new in zip(agent.target_critic.parameters(), before_target, source):
        torch.testing.assert_close(after, (1 - tau) * old + tau * new)


def test_target_critic_starts_as_a_copy_and_takes_no_gradient():
    agent = make_agent()
    for target, online in zip(agent.target_critic.parameters(), agent.critic.parameters()):
        assert torch.equal(target, online) and target.data_ptr() != online.data_ptr()
        assert not target.requires_grad


@pytest.mark.parametrize("alpha", [0.2, 0.05, 1.0])
def test_alpha_starts_where_the_user_said(alpha):
    agent = make_agent(alpha=alpha)
    assert agent.alpha.item() == pytest.approx(alpha)
    assert agent.log_alpha.item() == pytest.approx(math.log(alpha))
    assert not agent.alpha.requires_grad


def test_target_entropy_is_minus_action_dim():
    assert make_agent().target_entropy == -ACTION_DIM


def test_policy_step_gives_the_critic_no_gradient():
    agent = make_agent()
    observations = make_batch().observations
    agent.update_policy(observations)
    assert all(parameter.grad is None for parameter in agent.critic.parameters())
    assert all(parameter.grad is not None for parameter in agent.policy.parameters())
    assert agent.log_alpha.grad is None


def test_update_moves_every_part_in_order():
    agent = make_agent(tau=0.5)
    before = {name: parameters(getattr(agent, name)) for name in ("policy", "critic", "target_critic")}
    log_alpha = agent.log_alpha.item()
    metrics = agent.update(make_batch())
    expected = {"loss/critic", "loss/policy", "loss/temperature", "train/alpha", "train/entropy", "train/q"}
    assert set(metrics) == expected
    assert all(value.ndim == 0 and not value.requires_grad for value in metrics.values())
    for name, old in before.items():
        assert any(not torch.equal(a, b) for a, b in zip(getattr(agent, name).parameters(), old)), name
    assert agent.log_alpha.item() != log_alpha
    # target is Polyak-averaged toward the *updated* critic
    for target, online, old in zip(
        agent.target_critic.parameters(), agent.critic.parameters(), before["target_critic"]
    ):
        torch.testing.assert_close(target, 0.5 * old + 0.5 * online)


def test_same_seed_same_losses():
    results = []
    for _ in range(2):
        torch.manual_seed(3)
        agent = make_agent()
        results.append([agent.update(make_batch(seed=step)) for step in range(3)])
    for first, second in zip(*results):
        assert {k: v.item() for k, v in first.items()} == {k: v.item() for k, v in second.items()}


def test_save_then_load_gives_identical_actions_and_updates():
    agent = make_agent()
    agent.update(make_batch())
    clone = make_agent(alpha=0.7)
    clone.load_state_dict(copy.deepcopy(agent.state_dict()))
    observation = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    np.testing.assert_array_equal(
        agent.act(observation, deterministic=True), clone.act(observation, deterministic=True)
    )
    assert clone.alpha.item() == agent.alpha.item()
    torch.manual_seed(5)
    first = agent.update(make_batch(seed=1))
    torch.manual_seed(5)
    second = clone.update(make_batch(seed=1))
    assert {k: v.item() for k, v in first.items()} == {k: v.item() for k, v in second.items()}


class AgentWithAnExtraPart(Agent):
    """An Agent with one more part, declared in one place: a batch-norm layer, whose running statistics
    are buffers, not parameters (as CrossQ's batch renormalization will have)."""

    PARTS = (*Agent.PARTS, "extra")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.extra = torch.nn.BatchNorm1d(OBSERVATION_DIM)


def test_a_part_declared_once_reaches_the_checkpoint_the_finiteness_check_and_the_graph_capture(monkeypatch):
    config = TrainConfig(hidden_units=(16, 16))
    agent, clone = (AgentWithAnExtraPart(OBSERVATION_DIM, ACTION_DIM, -1, 1, config) for _ in range(2))
    agent.extra(torch.randn(8, OBSERVATION_DIM) + 3.0)  # training mode: moves the running mean
    clone.load_state_dict(copy.deepcopy(agent.state_dict()))
    assert torch.equal(clone.extra.running_mean, agent.extra.running_mean)
    assert not torch.equal(clone.extra.running_mean, torch.zeros(OBSERVATION_DIM))

    captured = []  # what GraphedUpdate hands the capture as the state to put back after its warm-up calls
    monkeypatch.setattr(cuda_graphs, "capture", lambda function, state: (captured.extend(state()), None))
    cuda_graphs.GraphedUpdate(agent, ReplayBuffer(10, OBSERVATION_DIM, ACTION_DIM, seed=0), batch_size=4)
    assert any(tensor is agent.extra.running_mean for tensor in captured)

    assert agent.is_finite()
    agent.extra.running_var[0] = math.inf
    assert not agent.is_finite()


def test_act_returns_one_action_in_bounds():
    low, high = np.zeros(ACTION_DIM), np.full(ACTION_DIM, 3.0)  # a box off zero: scale and bias both matter
    agent = Agent(OBSERVATION_DIM, ACTION_DIM, low, high, TrainConfig(hidden_units=(16, 16)))
    actions = np.array([agent.act(np.full(OBSERVATION_DIM, 0.1, np.float32)) for _ in range(50)])
    assert actions.shape == (50, ACTION_DIM) and np.all((actions >= low) & (actions <= high))
    assert actions.min() < 0.5 and actions.max() > 2.5  # the whole box is reached, not a scaled-down part


def constant_critic_heads(agent: Agent, q1: float, q2: float) -> None:
    """Make Q1 and Q2 constant functions, so which one a loss used shows in its value."""
    with torch.no_grad():
        last_layer = agent.critic.net[-1]
        last_layer.weight.zero_()
        last_layer.bias.copy_(torch.tensor([q1, q2]).view(2, 1, 1))


def test_policy_loss_goes_through_the_smaller_q():
    agent = make_agent(alpha=0.5)
    constant_critic_heads(agent, q1=100.0, q2=-100.0)
    metrics, log_probs = agent.update_policy(make_batch().observations)
    torch.testing.assert_close(metrics["loss/policy"], 0.5 * log_probs.mean() + 100.0)


def test_critic_target_uses_the_target_critic_and_fresh_policy_actions():
    agent = make_agent(alpha=0.3, gamma=0.9)
    with torch.no_grad():
        for parameter in agent.target_critic.parameters():
            parameter.mul_(2.0)  # target and online critic now differ
    batch = make_batch(size=16)
    observations, actions, rewards, next_observations, terminateds = batch
    torch.manual_seed(11)
    with torch.no_grad():
        next_actions, next_log_probs = agent.policy.sample(next_observations)
        next_q = torch.min(*agent.target_critic(next_observations, next_actions))
        targets = rewards + 0.9 * (1 - terminateds) * (next_q - 0.3 * next_log_probs)
        q1, q2 = agent.critic(observations, actions)
        expected = 0.5 * (((q1 - targets) ** 2).mean() + ((q2 - targets) ** 2).mean())
    torch.manual_seed(11)
    metrics = agent.update_critic(batch)
    torch.testing.assert_close(metrics["loss/critic"], expected)


def test_update_runs_critic_policy_temperature_then_target(monkeypatch):
    agent = make_agent()
    calls = []
    for name in ("update_critic", "update_policy", "update_temperature"):
        method = getattr(agent, name)
        monkeypatch.setattr(agent, name, lambda *args, _m=method, _n=name: calls.append(_n) or _m(*args))
    monkeypatch.setattr("soft_actor_critic.agent.polyak_update", lambda *args: calls.append("polyak_update"))
    agent.update(make_batch())
    assert calls == ["update_critic", "update_policy", "update_temperature", "polyak_update"]
