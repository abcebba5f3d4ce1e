"""The SAC agent: policy, twin critic, target critic, temperature, and one gradient update; and
CrossQ, SAC with batch renormalization and without a target critic.

`Agent.update` follows the algorithm box of Haarnoja et al. 2019 (arXiv:1812.05905): critic step,
policy step against the updated critic, temperature step, then Polyak averaging of the target.
`CrossQAgent` replaces three of its methods (Bhatt et al. 2024, "CrossQ", arXiv:1902.05605).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from soft_actor_critic import losses
from soft_actor_critic.config import ALGORITHMS, TrainConfig
from soft_actor_critic.networks import BatchRenorm, EnsembleLinear, SquashedGaussianPolicy, TwinCritic
from soft_actor_critic.replay_buffer import Batch


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor, inputs: list[torch.Tensor] | None = None) -> None:
    """One optimizer step down `loss`, with gradients for `inputs` alone if given. A packed agent's loss
    is one per seed (packed.py): their sum gives each seed the gradient of its own loss, and no other."""
    optimizer.zero_grad(set_to_none=True)
    loss.sum().backward(inputs=inputs)
    optimizer.step()


def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """theta_target <- (1 - tau) theta_target + tau theta_source, in place."""
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


class Agent:
    """SAC's learner: the policy, the twin critic and its Polyak-averaged target, the temperature log_alpha,
    and an Adam optimizer for each of the three; `act` picks an action, `update` takes one gradient step
    on a batch. It touches no env, file or log: training.py drives it, checkpoints.py saves it."""

    # Every part that training changes, declared once (as SB3's _get_torch_save_params): a tensor added
    # here reaches the checkpoint, the finiteness check and the CUDA-graph capture alike.
    PARTS = (
        "policy",
        "critic",
        "target_critic",
        "log_alpha",
        "policy_optimizer",
        "critic_optimizer",
        "alpha_optimizer",
    )

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
        config: TrainConfig,
        device: str | torch.device = "cpu",
        seeds: int | None = None,
    ) -> None:
        """With `seeds`, the agents of that many seeds stacked (packed.py): one temperature each."""
        self.gamma, self.tau, self.device, self.seeds = config.gamma, config.tau, torch.device(device), seeds
        bounds = (action_low, action_high)
        self.policy = policy_network(config, observation_dim, action_dim, *bounds, self.seeds).to(self.device)
        self.critic = critic_network(config, observation_dim, action_dim, self.seeds).to(self.device)
        if "target_critic" in self.PARTS:
            self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        shape = (seeds, 1) if seeds else ()  # (seeds, 1) against packed (seeds, batch) log-probabilities
        self.log_alpha = torch.full(shape, math.log(config.alpha), device=self.device, requires_grad=True)
        self.target_entropy = -float(action_dim)  # -dim(A): the hyperparameter table in the appendix of 1812.05905
        # fused: one kernel per step for all of a network's tensors, instead of a dozen per tensor;
        # capturable (on a GPU): the step count lives there too, so a CUDA graph can hold the step
        self.capturable = self.device.type == "cuda"
        adam = functools.partial(torch.optim.Adam, lr=config.learning_rate, fused=True, capturable=self.capturable)
        betas = (config.adam_beta1, 0.999)
        self.policy_optimizer = adam(self.policy.parameters(), betas=betas)
        self.critic_optimizer = adam(self.critic.parameters(), betas=betas)
        self.alpha_optimizer = adam([self.log_alpha])  # Adam's own betas, as in sb3-contrib's CrossQ too

    @property
    def alpha(self) -> torch.Tensor:
        """The temperature as a constant: it multiplies other losses, which must not move it
        (rail-berkeley/softlearning#60)."""
        return self.log_alpha.detach().exp()

    @torch.inference_mode()
    def act(self, observation: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """One action for one observation, in the env's units, (observation_dim,) -> (action_dim,), or for a
        row of one, (1, observation_dim) -> (1, action_dim); packed seeds' (packed.py), one for each seed's,
        (seeds, observation_dim) -> (seeds, action_dim)."""
        batch = 0 if self.seeds is None else 1  # the dimension of the policy's batch, here of one row
        observations = torch.as_tensor(observation, dtype=torch.float32, device=self.device).unsqueeze(batch)
        return self.policy.act(observations, deterministic).squeeze(batch).cpu().numpy()

    def update(self, batch: Batch, policy_step: bool = True) -> dict[str, torch.Tensor]:
        """One SAC gradient step on a batch; returns detached scalars to log (no host sync here).
        Without `policy_step` (--policy-delay), only the critic and its target move."""
        metrics = self.update_critic(batch)
        if policy_step:
            policy_metrics, log_probs = self.update_policy(batch.observations)
            metrics |= policy_metrics | self.update_temperature(log_probs)
        self.update_target()
        return metrics

    def update_critic(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The critic step: both Q-functions regress on the soft Bellman backup (`q_values` says of which critic)."""
        q, next_q, next_log_probs = self.q_values(batch)
        targets = losses.soft_q_target(
            batch.rewards, batch.terminateds, *next_q, next_log_probs, self.alpha, self.gamma
        )
        loss = losses.critic_loss(*q, targets)
        descend(self.critic_optimizer, loss)
        return {"loss/critic": loss.detach(), "train/q": q.detach().min(0).values.mean(-1)}

    def q_values(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Q1 and Q2 of (s, a), (2, batch), and, without gradients, the target critic's of (s', a') with
        log pi(a'|s'): a' ~ pi(.|s') comes from the *current* policy."""
        with torch.no_grad():
            next_actions, next_log_probs = self.policy.sample(batch.next_observations)
            next_q = self.target_critic(batch.next_observations, next_actions)
        return self.critic(batch.observations, batch.actions), next_q, next_log_probs

    def update_policy(self, observations: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The policy step; the critic is only a function here, so it gets no gradient."""
        actions, log_probs = self.policy.sample(observations)
        q1, q2 = self.critic(observations, actions)
        loss = losses.policy_loss(log_probs, torch.min(q1, q2), self.alpha)
        # Only the policy's gradients: backward skips the critic's weight gradients altogether
        # (computing them anyway, into the critic's .grad, is openai/spinningup#329).
        descend(self.policy_optimizer, loss, inputs=list(self.policy.parameters()))
        log_probs = log_probs.detach()
        return {"loss/policy": loss.detach(), "train/entropy": -log_probs.mean(-1)}, log_probs

    def update_temperature(self, log_probs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The temperature step, reusing the policy step's log-probabilities (no third forward)."""
        loss = losses.temperature_loss(self.log_alpha, log_probs, self.target_entropy)
        descend(self.alpha_optimizer, loss)
        return {"loss/temperature": loss.detach(), "train/alpha": self.alpha}

    def update_target(self) -> None:
        polyak_update(self.target_critic, self.critic, self.tau)

    def parts(self) -> dict[str, nn.Module | torch.Tensor | torch.optim.Optimizer]:
        """The parts of PARTS by name: the checkpoint saves them under these names, the finiteness check
        and the CUDA-graph capture read their tensors."""
        return {name: getattr(self, name) for name in self.PARTS}

    def tensors(self) -> list[torch.Tensor]:
        """Every tensor of every part, the optimizers' moments and step counts included: all an update writes."""
        return [tensor for part in self.parts().values() for tensor in tensors_of(part)]

    def is_finite(self) -> bool:
        """No NaN or infinity in any part (one host sync: call it rarely)."""
        return bool(torch.stack([tensor.isfinite().all() for tensor in self.tensors()]).all())

    def state_dict(self) -> dict:
        return {
            name: part.detach().clone() if isinstance(part, torch.Tensor) else part.state_dict()
            for name, part in self.parts().items()
        }

    def load_state_dict(self, state: dict) -> None:
        for name, part in self.parts().items():
            if isinstance(part, torch.Tensor):
                with torch.no_grad():
                    part.copy_(state[name])
                continue
            part.load_state_dict(state[name])
            if isinstance(part, torch.optim.Optimizer):
                for group in part.param_groups:  # a checkpoint from the other kind of device says otherwise
                    group["capturable"] = self.capturable


class CrossQAgent(Agent):
    """CrossQ (Bhatt et al. 2024): SAC with batch renormalization before every linear layer of both
    networks (section 4.2), no target critic (section 4.1), Adam with beta1 0.5, a wider critic and a
    policy step every third update (config.ALGORITHMS). The losses are SAC's."""

    PARTS = tuple(part for part in Agent.PARTS if part != "target_critic")

    def q_values(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SAC's, with the critic itself in place of its target: (s, a) and (s', a') go through it as one
        batch, so that batch renormalization's statistics are those of both (section 4.1); the targets are
        its detached outputs for (s', a')."""
        with torch.no_grad():
            next_actions, next_log_probs = self.policy.sample(batch.next_observations)
        observations = torch.cat([batch.observations, batch.next_observations], dim=-2)  # along the batch
        actions = torch.cat([batch.actions, next_actions], dim=-2)
        with train_mode(self.critic):
            q, next_q = self.critic(observations, actions).chunk(2, dim=-1)  # (2, batch) each: Q1 and Q2
        return q, next_q.detach(), next_log_probs

    def update_policy(self, observations: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """SAC's policy step, the policy learning its statistics from the batch's states and the critic
        judging on its running ones."""
        with train_mode(self.policy):
            return super().update_policy(observations)

    def update_target(self) -> None:
        pass  # there is none


def batch_renorm(config: TrainConfig, members: int | None = None) -> Callable[..., BatchRenorm] | None:
    """The run's normalization layer for a width (an ensemble's `members` apart), None where its
    --algorithm has none."""
    if not ALGORITHMS[config.algorithm].batch_renorm:
        return None
    momentum, eps, warmup = config.renorm_momentum, config.renorm_eps, config.renorm_warmup
    return functools.partial(BatchRenorm, members=members, momentum=momentum, eps=eps, warmup=warmup)


def policy_network(
    config: TrainConfig, observation_dim: int, action_dim: int, action_low, action_high, seeds: int | None = None
) -> SquashedGaussianPolicy:
    """The run's policy, untrained and in eval mode; with `seeds`, each layer an ensemble, a member per seed.
    Networks with batch renormalization rest in eval mode, on their running statistics, and an update puts
    one in training mode for the one pass that learns them."""
    linear = functools.partial(EnsembleLinear, seeds) if seeds else nn.Linear
    widths, normalize = config.hidden_units, batch_renorm(config, seeds)
    return SquashedGaussianPolicy(
        observation_dim, action_dim, widths, action_low, action_high, normalize, linear
    ).eval()


def critic_network(config: TrainConfig, observation_dim: int, action_dim: int, seeds: int | None = None) -> TwinCritic:
    """The run's twin critic (with `seeds`, every seed's), untrained and in eval mode."""
    critic = TwinCritic(observation_dim, action_dim, config.critic_hidden_units, batch_renorm(config), seeds=seeds or 1)
    return critic.eval()


@contextlib.contextmanager
def train_mode(network: nn.Module) -> Iterator[None]:
    """The network in training mode for the passes inside, and back in eval mode after them."""
    network.train()
    try:
        yield
    finally:
        network.eval()


def tensors_of(part: nn.Module | torch.Tensor | torch.optim.Optimizer) -> list[torch.Tensor]:
    """A part's own tensors, the same objects at every call: a module's parameters and buffers, an
    optimizer's state, or the tensor itself."""
    if isinstance(part, nn.Module):
        return [*part.parameters(), *part.buffers()]
    if isinstance(part, torch.optim.Optimizer):
        return [value for state in part.state.values() for value in state.values() if torch.is_tensor(value)]
    return [part]
