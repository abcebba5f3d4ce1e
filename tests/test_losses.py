import math

import torch

from soft_actor_critic import losses


def test_soft_q_target_by_hand():
    rewards = torch.tensor([1.0, 1.0, 2.0])
    terminateds = torch.tensor([0.0, 0.0, 1.0])
    next_q1, next_q2 = torch.tensor([10.0, 4.0, 5.0]), torch.tensor([8.0, 6.0, 7.0])  # the min is Q2, then Q1
    next_log_probs = torch.tensor([-1.0, 1.0, 3.0])
    targets = losses.soft_q_target(rewards, terminateds, next_q1, next_q2, next_log_probs, torch.tensor(0.5), 0.9)
    # row 0: 1 + 0.9 * (min(10, 8) - 0.5 * -1) = 1 + 0.9 * 8.5 = 8.65
    # row 1: 1 + 0.9 * (min(4, 6) - 0.5 * 1) = 1 + 0.9 * 3.5 = 4.15; row 2 terminated: reward only
    torch.testing.assert_close(targets, torch.tensor([8.65, 4.15, 2.0]))


def test_critic_loss_by_hand():
    q1, q2 = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])
    targets = torch.tensor([2.0, 2.0])
    # 0.5 * (mean(1, 0) + mean(4, 4)) = 0.5 * (0.5 + 4) = 2.25
    torch.testing.assert_close(losses.critic_loss(q1, q2, targets), torch.tensor(2.25))


def test_policy_loss_by_hand():
    log_probs, q_min = torch.tensor([-1.0, 2.0]), torch.tensor([3.0, -1.0])
    # mean(0.2 * -1 - 3, 0.2 * 2 + 1) = mean(-3.2, 1.4) = -0.9
    torch.testing.assert_close(losses.policy_loss(log_probs, q_min, torch.tensor(0.2)), torch.tensor(-0.9))


def test_temperature_loss_and_its_gradient_by_hand():
    log_probs = torch.tensor([1.0, 3.0], requires_grad=True)  # log pi + H_target = 0 and 2 with H_target = -1
    for alpha in (2.0, 0.5):
        log_alpha = torch.tensor(math.log(alpha), requires_grad=True)
        loss = losses.temperature_loss(log_alpha, log_probs, target_entropy=-1.0)
        # -log_alpha * mean(0, 2) = -log(alpha); eq. 18's literal -alpha * mean(0, 2) would be -alpha
        torch.testing.assert_close(loss, torch.tensor(-math.log(alpha)))
        loss.backward()
        # d/dlog_alpha = -mean(log pi + H_target) = -1 at every alpha (eq. 18's gradient would be -alpha):
        # the entropy (-2) is below the target (-1), so a descent step raises alpha
        torch.testing.assert_close(log_alpha.grad, torch.tensor(-1.0))
    assert log_probs.grad is None
