import torch
from torch.distributions import Normal

from soft_actor_critic.networks import LOG_STD_MAX, LOG_STD_MIN, SquashedGaussianPolicy, TwinCritic, mlp

LOW, HIGH = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 1.0])


def make_policy() -> SquashedGaussianPolicy:
    return SquashedGaussianPolicy(4, 2, (16, 16), LOW.numpy(), HIGH.numpy())


def test_mlp_shape():
    net = mlp(5, (7, 9), 3)
    assert [layer.out_features for layer in net if isinstance(layer, torch.nn.Linear)] == [7, 9, 3]
    assert net(torch.zeros(11, 5)).shape == (11, 3)


def test_log_prob_matches_a_float64_reference_even_where_tanh_saturates(monkeypatch):
    policy = make_policy()
    observations = torch.randn(61, 4)
    with torch.no_grad():
        mean, log_std = policy(observations)
    grid = torch.linspace(-15.0, 15.0, 61)  # beyond |u| ~ 9, tanh(u) rounds to +-1 in float32
    pre_squash = torch.stack([grid, grid.roll(20)], dim=1)  # not (u, -u): an error odd in u would cancel
    noise = (pre_squash - mean) / log_std.exp()  # the noise that gives those u
    monkeypatch.setattr(torch, "randn_like", lambda tensor: noise)
    _, log_probs = policy.sample(observations)
    mean, std, noise = mean.double(), log_std.double().exp(), noise.double()
    u = mean + std * noise
    # log pi(a|s) = log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2) in the naive form, which float64
    # keeps finite up to |u| ~ 18; at |u| = 15 it is off by ~3e-4 itself, hence atol
    expected = Normal(mean, std).log_prob(u).sum(-1) - torch.log1p(-(torch.tanh(u) ** 2)).sum(-1)
    torch.testing.assert_close(log_probs.double(), expected, rtol=1e-5, atol=1e-3)


def test_log_prob_stays_finite_when_tanh_saturates():
    policy = make_policy()
    with torch.no_grad():
        policy.net[-1].bias.copy_(torch.tensor([30.0, -30.0, -5.0, -5.0]))  # means far out, small std
    _, log_probs = policy.sample(torch.zeros(8, 4))
    assert torch.isfinite(log_probs).all()


def test_actions_inside_the_bounds():
    policy = make_policy()
    with torch.no_grad():
        policy.net[-1].weight.mul_(100)  # wild means, both tails of tanh
    observations = torch.randn(1000, 4) * 10
    for actions in (policy.sample(observations)[0], policy.act(observations, deterministic=True)):
        assert (actions >= LOW).all() and (actions <= HIGH).all()
        assert actions[:, 0].min() < -1.5 and actions[:, 0].max() > 1.5  # the full range is used


def test_deterministic_action_is_squashed_mean():
    policy = make_policy()
    observations = torch.randn(5, 4)
    mean, _ = policy(observations)
    expected = torch.tanh(mean) * (HIGH - LOW) / 2 + (HIGH + LOW) / 2
    torch.testing.assert_close(policy.act(observations, deterministic=True), expected)


def test_log_std_is_clamped():
    policy = make_policy()
    with torch.no_grad():
        policy.net[-1].bias.copy_(torch.tensor([0.0, 0.0, 100.0, -100.0]))
    _, log_std = policy(torch.zeros(3, 4))
    assert (log_std[:, 0] == LOG_STD_MAX).all() and (log_std[:, 1] == LOG_STD_MIN).all()


def test_gradients_reach_the_policy_through_the_sample():
    policy = make_policy()
    actions, _ = policy.sample(torch.randn(16, 4))
    # the actions alone: the log-prob's -log(std) term would give every weight a gradient anyway
    assert actions.requires_grad, "the sample is detached from the policy"
    actions.sum().backward()
    last = policy.net[-1]  # outputs (mean, log_std), two rows each
    for rows in (slice(0, 2), slice(2, 4)):  # through a = tanh(mean + std * noise): both heads learn
        assert (last.bias.grad[rows] != 0).all() and (last.weight.grad[rows] != 0).any(dim=1).all()
    assert all(parameter.grad.abs().sum() > 0 for parameter in policy.parameters())


def test_twin_critic_heads_are_independent():
    critic = TwinCritic(4, 2, (16, 16))
    observations, actions = torch.randn(10, 4), torch.randn(10, 2)
    q1, q2 = critic(observations, actions)
    assert q1.shape == q2.shape == (10,)
    assert not torch.allclose(q1, q2)
    # each head has weights of its own, and no weight that moves Q1 moves Q2
    parameters = list(critic.parameters())
    q1_grads = torch.autograd.grad(q1.sum(), parameters, retain_graph=True)
    q2_grads = torch.autograd.grad(q2.sum(), parameters)
    for grads in (q1_grads, q2_grads):
        assert any(grad.any() for grad in grads)
    assert not any(((grad1 != 0) & (grad2 != 0)).any() for grad1, grad2 in zip(q1_grads, q2_grads))
