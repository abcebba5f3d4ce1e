"""The SAC objectives as pure tensor functions; equation numbers are those of arXiv:1812.05905.

Every argument is a tensor of shape (batch,) unless named otherwise, or (seeds, batch) for seeds packed
into one process (packed.py): each loss is a mean over the batch, one per seed. Callers decide what
carries gradients: these functions only compute.
"""

from __future__ import annotations

import torch


def soft_q_target(
    rewards: torch.Tensor,
    terminateds: torch.Tensor,
    next_q1: torch.Tensor,
    next_q2: torch.Tensor,
    next_log_probs: torch.Tensor,
    alpha: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """The soft Bellman backup y = r + gamma (1 - terminated) (min(Q1', Q2') - alpha log pi(a'|s')).

    Eqs. 2-3 with the clipped double-Q of section 4; a' ~ pi(.|s') comes from the *current* policy and
    Q' from the target critic. Only `terminated` cuts the bootstrap: a time-limit truncation is not
    the end of the task, so its next state still has value.
    """
    soft_next_value = torch.min(next_q1, next_q2) - alpha * next_log_probs
    return rewards + gamma * (1.0 - terminateds) * soft_next_value


def critic_loss(q1: torch.Tensor, q2: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """J_Q = E[1/2 (Q1(s,a) - y)^2] + E[1/2 (Q2(s,a) - y)^2]   (eq. 5, once per Q-function)."""
    return 0.5 * ((q1 - targets).pow(2).mean(-1) + (q2 - targets).pow(2).mean(-1))


def policy_loss(log_probs: torch.Tensor, q_min: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """J_pi = E[alpha log pi(a|s) - min(Q1, Q2)(s, a)] with a reparameterized   (eqs. 7 and 9)."""
    return (alpha * log_probs - q_min).mean(-1)


def temperature_loss(log_alpha: torch.Tensor, log_probs: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """J = E[-log_alpha (log pi(a|s) + H_target)]: eq. 18 with log alpha, the variable optimized, in place
    of alpha, as in the authors' code (softlearning) and SB3; only log_alpha gets a gradient.

    Its gradient, -E[log pi + H_target], is the same at any alpha; eq. 18's own, -alpha E[log pi +
    H_target], shrinks with alpha, so Adam's step would lag whenever alpha falls faster than Adam's
    running moments follow. Both forms learned alike over 10 Pendulum seeds (docs/results.md, "Temperature update").
    """
    return -(log_alpha * (log_probs.detach() + target_entropy)).mean(-1)
