"""CrossQ (--algorithm crossq): batch renormalization, the joint critic pass, the delayed policy step,
and the defaults the flag changes."""

import copy
import json

import numpy as np
import pytest
import torch
from conftest import read_checkpoint
from test_agent import ACTION_DIM, OBSERVATION_DIM, make_batch, parameters

from soft_actor_critic import losses
from soft_actor_critic.__main__ import main
from soft_actor_critic.agent import CrossQAgent
from soft_actor_critic.config import ConfigError, TrainConfig
from soft_actor_critic.networks import BatchRenorm


def make_crossq(**overrides) -> CrossQAgent:
    config = TrainConfig(algorithm="crossq", hidden_units=(16, 16), critic_hidden_units=(32, 32), **overrides)
    return CrossQAgent(OBSERVATION_DIM, ACTION_DIM, -np.ones(ACTION_DIM), np.ones(ACTION_DIM), config)


def renorm_by_hand(x, running_mean, running_var, *, eps, r_max=3.0, d_max=5.0, renorm=True):
    """Ioffe 2017, algorithm 1, in numpy: (x - mu_B) / sigma_B * r + d, with r and d clipped."""
    mean, var = x.mean(0), x.var(0, ddof=1)
    std, running_std = np.sqrt(var + eps), np.sqrt(running_var + eps)
    r = np.clip(std / running_std, 1 / r_max, r_max) if renorm else 1.0
    d = np.clip((mean - running_mean) / running_std, -d_max, d_max) if renorm else 0.0
    return (x - mean) / std * r + d


@pytest.mark.parametrize("passes_before, renorm", [(0, False), (4, False), (5, True), (9, True)])
def test_batch_renorm_is_batch_norm_in_its_warm_up_and_renormalizes_after_it(passes_before, renorm):
    layer = BatchRenorm(3, momentum=0.1, eps=1e-3, warmup=5)
    running_mean, running_var = np.array([0.5, -1.0, 2.0]), np.array([0.25, 4.0, 1.0])
    with torch.no_grad():
        layer.running_mean.copy_(torch.tensor(running_mean))
        layer.running_var.copy_(torch.tensor(running_var))
        layer.passes.fill_(passes_before)
        layer.scale.copy_(torch.tensor([1.0, 2.0, 0.5]))
        layer.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    x = np.random.default_rng(0).normal([3.0, 0.0, -4.0], [0.2, 9.0, 1.0], size=(8, 3))  # far from the running stats
    output = layer(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    expected = renorm_by_hand(x, running_mean, running_var, eps=1e-3, renorm=renorm) * [1.0, 2.0, 0.5] + [0, 1, -1]
    np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        layer.running_mean.numpy()[0], running_mean + 0.1 * (x.mean(0) - running_mean), rtol=1e-5
    )
    np.testing.assert_allclose(
        layer.running_var.numpy()[0], running_var + 0.1 * (x.var(0, ddof=1) - running_var), rtol=1e-5
    )
    assert layer.passes.item() == passes_before + 1


@pytest.mark.parametrize("passes_before", [0, 5])  # in the warm-up (r = 1, d = 0), and renormalizing
def test_batch_renorms_backward_is_autograds_through_its_forward(passes_before):
    """Renormalize's closed-form gradients against autograd's through the same forward, in float64, with
    the batch statistics differentiated and r, d held constant."""
    layer = BatchRenorm(4, members=2, momentum=0.1, eps=1e-3, warmup=5).double()
    with torch.no_grad():
        layer.passes.fill_(passes_before)
        layer.running_mean.fill_(0.5), layer.running_var.fill_(2.0)
        layer.scale.uniform_(0.5, 2.0), layer.bias.uniform_(-1.0, 1.0)
    running_std = (layer.running_var + 1e-3).sqrt()
    x = (torch.randn(2, 16, 4, dtype=torch.float64) * 3 + 1).requires_grad_()
    weights = torch.randn(2, 16, 4, dtype=torch.float64)
    (layer(x) * weights).sum().backward()
    mean = x.mean(-2, keepdim=True)
    std = ((x - mean).square().sum(-2, keepdim=True) / 15 + 1e-3).sqrt()
    r = (std / running_std).clamp(1 / 3, 3).detach() if passes_before else 1.0
    d = ((mean - 0.5) / running_std).clamp(-5, 5).detach() if passes_before else 0.0
    expected = layer.scale * ((x - mean) / std * r + d) + layer.bias
    gradients = torch.autograd.grad((expected * weights).sum(), [x, layer.scale, layer.bias])
    for name, mine, autograd in zip(("x", "scale", "bias"), (x.grad, layer.scale.grad, layer.bias.grad), gradients):
        torch.testing.assert_close(mine, autograd, rtol=1e-10, atol=1e-12, msg=name)


def test_batch_renorm_in_eval_mode_uses_and_changes_no_statistic():
    layer = BatchRenorm(2, members=2, momentum=0.1, eps=1e-3, warmup=0)
    layer(torch.randn(2, 16, 2) * 3 + 1)  # one training pass: running statistics that are not the initial ones
    layer.eval()
    before = {name: buffer.clone() for name, buffer in layer.named_buffers()}
    x = torch.randn(2, 5, 2)
    output = layer(x)
    for name, buffer in layer.named_buffers():
        assert torch.equal(buffer, before[name]), name
    expected = (x - before["running_mean"]) / (before["running_var"] + 1e-3).sqrt()
    torch.testing.assert_close(output, expected)  # scale 1, bias 0


def test_an_ensembles_members_keep_their_statistics_apart():
    layer = BatchRenorm(1, members=2, momentum=1.0, eps=0.0, warmup=100)
    x = torch.stack([torch.arange(4.0), 10 * torch.arange(4.0)])[..., None]  # (2 members, 4 rows, 1 feature)
    layer(x)
    torch.testing.assert_close(layer.running_mean.flatten(), torch.tensor([1.5, 15.0]))


def test_the_joint_pass_gives_the_target_no_gradient_and_learns_statistics_of_both_batches(monkeypatch):
    agent = make_crossq()
    seen = {}
    critic_loss = losses.critic_loss

    def record(q1, q2, targets):
        seen.update(q_grad=q1.requires_grad, target_grad=targets.requires_grad, rows=len(targets))
        return critic_loss(q1, q2, targets)

    monkeypatch.setattr(losses, "critic_loss", record)
    batch = make_batch(size=8)
    first_layer = agent.critic.net[0]
    agent.update(batch, policy_step=False)
    assert seen == {"q_grad": True, "target_grad": False, "rows": 8}
    assert first_layer.passes.item() == 1  # one pass over (s, a) and (s', a') together, not two
    joint = torch.cat([batch.observations, batch.next_observations])[:, 0]
    # momentum 0.01 from 0: the running mean of the first input moved towards the mean of both halves
    torch.testing.assert_close(first_layer.running_mean[0, 0, 0], 0.01 * joint.mean(), rtol=1e-5, atol=1e-7)
    assert not agent.critic.training and not agent.policy.training  # both back on their running statistics


def test_the_policy_and_temperature_step_only_when_asked():
    agent = make_crossq()
    policy, critic, alpha = parameters(agent.policy), parameters(agent.critic), agent.log_alpha.item()
    policy_statistics = [buffer.clone() for buffer in agent.policy.buffers()]
    metrics = agent.update(make_batch(), policy_step=False)
    assert all(torch.equal(a, b) for a, b in zip(parameters(agent.policy), policy))
    assert all(torch.equal(a, b) for a, b in zip(agent.policy.buffers(), policy_statistics))
    assert agent.log_alpha.item() == alpha and set(metrics) == {"loss/critic", "train/q"}
    assert not all(torch.equal(a, b) for a, b in zip(parameters(agent.critic), critic))
    metrics = agent.update(make_batch(seed=1), policy_step=True)
    assert not all(torch.equal(a, b) for a, b in zip(parameters(agent.policy), policy))
    assert agent.log_alpha.item() != alpha and "loss/policy" in metrics
    renorms = [module for module in agent.policy.modules() if isinstance(module, BatchRenorm)]
    assert len(renorms) == 3 and all(layer.passes.item() == 1 for layer in renorms)  # it learned the batch's statistics


def test_crossq_has_no_target_critic_and_its_checkpoint_holds_the_statistics():
    agent = make_crossq()
    assert not hasattr(agent, "target_critic") and "target_critic" not in agent.state_dict()
    for _ in range(3):
        agent.update(make_batch(), policy_step=True)
    clone = make_crossq()
    clone.load_state_dict(copy.deepcopy(agent.state_dict()))
    for name, buffer in agent.critic.named_buffers():
        assert torch.equal(buffer, dict(clone.critic.named_buffers())[name]), name
    torch.manual_seed(5)
    first = agent.update(make_batch(seed=1))
    torch.manual_seed(5)
    second = clone.update(make_batch(seed=1))
    assert {k: v.item() for k, v in first.items()} == {k: v.item() for k, v in second.items()}


def test_adam_has_crossqs_beta1_for_the_networks_and_its_own_for_the_temperature():
    agent = make_crossq()
    assert agent.policy_optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    assert agent.critic_optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    assert agent.alpha_optimizer.param_groups[0]["betas"] == (0.9, 0.999)


def test_crossq_changes_its_defaults_and_a_given_flag_wins():
    sac, crossq = TrainConfig(), TrainConfig(algorithm="crossq")
    assert (sac.learning_rate, sac.start_step, sac.critic_hidden_units, sac.adam_beta1, sac.policy_delay) == (
        3e-4,
        1000,
        (256, 256),
        0.9,
        1,
    )
    assert (crossq.learning_rate, crossq.start_step, crossq.critic_hidden_units) == (1e-3, 100, (1024, 1024))
    assert (crossq.adam_beta1, crossq.policy_delay, crossq.hidden_units) == (0.5, 3, (256, 256))
    assert TrainConfig(algorithm="crossq", learning_rate=3e-4, policy_delay=1).learning_rate == 3e-4
    with pytest.raises(ConfigError, match="--batch-size must be 2 or more"):  # a batch of one has no variance
        TrainConfig(algorithm="crossq", batch_size=1)


def test_a_crossq_run_records_its_resolved_config_evaluates_and_resumes(tmp_path, capsys):
    flags = [
        "--algorithm",
        "crossq",
        "--env-name",
        "Pendulum-v1",
        "--hidden-units",
        "16",
        "--critic-hidden-units",
        "32",
    ]
    flags += ["--batch-size", "16", "--learning-rate", "2e-3", "--directory", str(tmp_path), "--run-name", "cq"]
    assert main(["train", *flags, "--num-steps", "300", "--eval-every", "150", "--eval-episodes", "1"]) == 0
    config = json.loads((tmp_path / "cq" / "config.json").read_text())
    assert config["algorithm"] == "crossq" and config["learning_rate"] == 2e-3  # the flag given wins
    assert (config["start_step"], config["policy_delay"], config["adam_beta1"]) == (100, 3, 0.5)  # crossq's
    assert "critic.net.0.running_mean" not in read_checkpoint(tmp_path / "cq")  # the parts hold them:
    assert "net.0.running_mean" in read_checkpoint(tmp_path / "cq")["critic"]
    argv = ["eval", "--run-name", str(tmp_path / "cq"), "--num-episodes", "1", "--deterministic"]
    capsys.readouterr()
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out == first  # eval mode: the running statistics, the same episode again
    assert main(["train", "--resume", "--run-name", "cq", "--directory", str(tmp_path), "--num-steps", "400"]) == 0
    assert read_checkpoint(tmp_path / "cq")["step"] == 400
