import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from soft_actor_critic.networks import LOG_STD_MAX, LOG_STD_MIN, SquashedGaussianPolicy, TwinCritic, mlp

LOW, HIGH = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 1.0])


def make_policy() -> SquashedGaussianPolicy:
    return SquashedGaussianPolicy(4, 2, (16, 16), LOW.numpy(), HIGH.numpy())


def test_mlp_shape():
    net = mlp(5, (7, 9), 3)
    assert [layer.out_features for layer in net if isinstance(layer, torch.nn.Linear)] == [7, 9, 3]
    assert net(torch.zeros(11, 5)).shape == (11, 3)


def test_log_prob_matches_torch_distributions_reference():
    policy = make_policy()
    observations = torch.randn(64, 4)
    actions, log_probs = policy.sample(observations)
    mean, log_std = policy(observations)
    reference = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
    squashed = (actions - policy.action_bias) / policy.action_scale  # back to [-1, 1]
    squashed = squashed.clamp(-1 + 1e-6, 1 - 1e-6)
    expected = reference.log_prob(squashed).sum(-1)
    torch.testing.assert_close(log_probs, expected, rtol=1e-3, atol=1e-3)


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
    actions, log_probs = policy.sample(torch.randn(16, 4))
    (actions.sum() + log_probs.sum()).backward()
    assert all(parameter.grad is not None and parameter.grad.abs().sum() > 0 for parameter in policy.parameters())


def test_twin_critic_heads_are_independent():
    critic = TwinCritic(4, 2, (16, 16))
    observations, actions = torch.randn(10, 4), torch.randn(10, 2)
    q1, q2 = critic(observations, actions)
    assert q1.shape == q2.shape == (10,)
    assert not torch.allclose(q1, q2)
    with torch.no_grad():  # moving every weight of Q2 leaves Q1 as it was
        for parameter in critic.parameters():
            parameter[1].add_(1.0)
    new_q1, new_q2 = critic(observations, actions)
    assert torch.equal(new_q1, q1) and not torch.allclose(new_q2, q2)
