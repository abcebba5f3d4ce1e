"""The squashed-Gaussian policy and the twin soft Q-function of SAC.

References: Haarnoja et al. 2018, "Soft Actor-Critic" (arXiv:1801.01290), appendix C for the
tanh change of variables; Haarnoja et al. 2019, "Soft Actor-Critic Algorithms and Applications"
(arXiv:1812.05905), section 4 for the twin Q-functions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


def mlp(
    input_dim: int,
    hidden_units: tuple[int, ...],
    output_dim: int,
    linear: Callable[[int, int], nn.Module] = nn.Linear,
    normalize: Callable[[int], nn.Module] | None = None,
) -> nn.Sequential:
    """`linear(in, out)` layers with ReLU between them and no activation on the output; with
    `normalize` (CrossQ's batch renormalization), a `normalize(in)` before every linear layer.

    The ReLUs work in place (one fewer activation to allocate): a linear layer's backward needs
    its input, never its output.
    """
    widths = (input_dim, *hidden_units, output_dim)
    layers: list[nn.Module] = []
    for width_in, width_out in zip(widths[:-1], widths[1:]):
        layers += [*([normalize(width_in)] if normalize else []), linear(width_in, width_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers[:-1])  # no ReLU on the output


class BatchRenorm(nn.Module):
    """Batch renormalization (Ioffe 2017, arXiv:1702.03275), the normalization of CrossQ's networks
    (Bhatt et al. 2024, section 4.2): y = scale * x_hat + bias, over the batch dimension -2.

    In training mode, x_hat = (x - mu_B) / sigma_B * r + d (Ioffe's eq. in algorithm 1), with the batch's
    mean and standard deviation and r = clip(sigma_B / sigma, 1/R_MAX, R_MAX), d = clip((mu_B - mu) / sigma,
    -D_MAX, D_MAX) held constant for backprop, mu and sigma the running statistics; each pass moves those
    towards the batch's by `momentum`. For the first `warmup` passes r = 1 and d = 0: batch norm. In eval
    mode, x_hat = (x - mu) / sigma and nothing changes. `members` keeps the statistics of an ensemble's
    members apart, for inputs of shape (members, batch, features).
    """

    R_MAX, D_MAX = 3.0, 5.0  # sb3-contrib's and SBX's clips, without the paper's gradual relaxation

    def __init__(self, features: int, *, members: int | None = None, momentum: float, eps: float, warmup: int) -> None:
        super().__init__()
        shape = (*([members] if members else []), 1, features)
        self.momentum, self.eps, self.warmup = momentum, eps, warmup
        self.scale = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))
        self.register_buffer("passes", torch.zeros((), dtype=torch.long))  # training passes so far

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        running_std = (self.running_var + self.eps).sqrt()
        if not self.training:  # scale * (x - mu) / sigma + bias as one multiply-add, the factors folded first
            factor = self.scale / running_std
            return torch.addcmul(self.bias - self.running_mean * factor, inputs, factor)
        with torch.no_grad():  # the statistics; their gradients are Renormalize's
            mean = inputs.mean(-2, keepdim=True)  # two passes: on a CPU, torch.var_mean over dim -2 is 6x slower
            var = (inputs - mean).square().sum(-2, keepdim=True) / (inputs.shape[-2] - 1)  # unbiased, as sb3-contrib
            std = (var + self.eps).sqrt()
            # a tensor condition, not a Python one: no host sync, and a CUDA graph holds it
            renorm = self.passes >= self.warmup
            r = torch.where(renorm, (std / running_std).clamp(1 / self.R_MAX, self.R_MAX), 1.0)
            d = torch.where(renorm, ((mean - self.running_mean) / running_std).clamp(-self.D_MAX, self.D_MAX), 0.0)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var, self.momentum)
            self.passes += 1
        return Renormalize.apply(inputs, self.scale, self.bias, mean, std, r, d)


class Renormalize(torch.autograd.Function):
    """y = scale * ((x - mu_B) / sigma_B * r + d) + bias, mu_B and sigma_B the batch's mean and (unbiased)
    standard deviation over dimension -2, with gradients through them as batch norm has, r and d constant.

    The backward pass is batch norm's in closed form (Ioffe and Szegedy 2015, section 3, with the unbiased
    variance): with x_hat = (x - mu_B) / sigma_B and g = scale * r / sigma_B,
        dx = g * (dy - mean(dy) - x_hat * sum(dy * x_hat) / (n - 1)),
    two reductions and two multiply-adds over the batch, where autograd's graph of the same forward makes
    several more passes; and no dx at all for a first layer, whose inputs need none. A CrossQ update is
    1.08x faster for it on 2 CPU threads. `tests/test_crossq.py` checks it against autograd.
    """

    @staticmethod
    def forward(ctx, x, scale, bias, mean, std, r, d):
        ctx.save_for_backward(x, scale, mean, std, r, d)
        factor = scale * r / std  # y = factor * x + (bias + scale * d - mean * factor), one multiply-add
        return torch.addcmul(bias + scale * d - mean * factor, x, factor)

    @staticmethod
    def backward(ctx, dy):
        x, scale, mean, std, r, d = ctx.saved_tensors
        dy_sum = dy.sum(-2, keepdim=True)
        dy_x_hat = ((dy * x).sum(-2, keepdim=True) - dy_sum * mean) / std  # sum(dy * x_hat)
        dx = None
        if ctx.needs_input_grad[0]:  # not for the first layer, whose inputs are the batch's
            g = scale * r / std
            coef = g * dy_x_hat / (std * (x.shape[-2] - 1))
            # g * dy - g * mean(dy) - coef * (x - mu_B), in two multiply-adds
            dx = torch.addcmul(coef * mean - g * dy_sum / x.shape[-2], x, coef, value=-1).addcmul_(dy, g)
        return dx, dy_x_hat * r + dy_sum * d, dy_sum, None, None, None, None


def tanh_log_det(pre_squash: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(u)^2), elementwise, as 2 (log 2 - u - softplus(-2u)): it stays finite where tanh(u)
    rounds to +-1, where the naive form gives log(0)."""
    return 2 * (math.log(2) - pre_squash - F.softplus(-2 * pre_squash))


class SquashedGaussianPolicy(nn.Module):
    """pi(a|s): a Gaussian over pre-squash actions u, squashed by tanh and scaled to the env's Box.

    Log-probabilities are those of the squashed action in [-1, 1]^d, before the affine scaling to
    the env's bounds: the scaling is a constant shift of the entropy, and leaving it out keeps the
    target entropy -dim(A) meaning the same thing on every env whatever its bounds.
    """

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        hidden_units: tuple[int, ...],
        action_low,
        action_high,
        normalize: Callable[[int], nn.Module] | None = None,
        linear: Callable[[int, int], nn.Module] = nn.Linear,
    ) -> None:
        super().__init__()
        self.net = mlp(observation_dim, hidden_units, 2 * action_dim, linear, normalize)
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float32))
        high = torch.as_tensor(np.asarray(action_high, dtype=np.float32))
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and clamped log-std of the pre-squash Gaussian, each (batch, action_dim)."""
        mean, log_std = self.net(observations).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized action a = scale * tanh(mean + std * eps) + bias and log pi(a|s), (batch,).

        log pi(a|s) = log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2)   (1801.01290, eq. 21).
        """
        mean, log_std = self(observations)
        std = log_std.exp()
        noise = torch.randn_like(mean)
        pre_squash = mean + std * noise  # rsample: gradients flow to mean and std
        gaussian_log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_det_jacobian = tanh_log_det(pre_squash).sum(-1)
        action = torch.tanh(pre_squash) * self.action_scale + self.action_bias
        return action, gaussian_log_prob - log_det_jacobian

    def act(self, observations: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """An action to take in the env: tanh(mean) scaled when deterministic, else a sample."""
        if not deterministic:
            return self.sample(observations)[0]
        mean, _ = self(observations)
        return torch.tanh(mean) * self.action_scale + self.action_bias


class EnsembleLinear(nn.Module):
    """`ensemble_size` independent linear layers applied side by side as one batched matmul.

    Weights are (ensemble_size, in, out) and inputs (ensemble_size, batch, in); each member is
    initialized as `nn.Linear` would be: uniform in +-1/sqrt(in).
    """

    def __init__(self, ensemble_size: int, input_dim: int, output_dim: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(input_dim)
        self.weight = nn.Parameter(torch.empty(ensemble_size, input_dim, output_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, output_dim).uniform_(-bound, bound))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(ensemble_size, batch, input_dim) -> (ensemble_size, batch, output_dim)."""
        if self.weight.shape[-1] == 1:  # a dot product per row: a one-column matmul is several times slower
            return (inputs * self.weight.transpose(1, 2)).sum(-1, keepdim=True) + self.bias
        return torch.baddbmm(self.bias, inputs, self.weight)


class TwinCritic(nn.Module):
    """Two independent soft Q-functions Q1(s, a), Q2(s, a); the min of the two fights overestimation.

    The two are stored as one ensemble of two, so each layer of both runs as a single batched
    matmul instead of two; member k of every layer belongs to Q_{k+1} alone. With `seeds` (packed.py),
    the ensemble holds the twin critics of that many seeds: member i * seeds + k is seed k's Q_{i+1}.
    """

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        hidden_units: tuple[int, ...],
        normalize: Callable[..., nn.Module] | None = None,
        seeds: int = 1,
    ) -> None:
        super().__init__()
        linear = functools.partial(EnsembleLinear, 2 * seeds)
        members_apart = functools.partial(normalize, members=2 * seeds) if normalize else None
        self.net = mlp(observation_dim + action_dim, hidden_units, 1, linear, members_apart)

    def forward(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q1 and Q2 stacked, (2, batch), or (2, seeds, batch) for inputs (seeds, batch, dim):
        `q1, q2 = critic(observations, actions)` unpacks them."""
        inputs = torch.cat([observations, actions], dim=-1)  # (batch, observation_dim + action_dim)
        members = inputs.expand(2, *inputs.shape).reshape(-1, *inputs.shape[-2:])  # (2 [x seeds], batch, dim)
        return self.net(members).view(2, *inputs.shape[:-1])
