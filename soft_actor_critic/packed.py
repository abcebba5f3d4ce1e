"""Many seeds in one process: the agents of N seeds stacked along a leading dimension and updated
together, with one forward, one backward and one Adam step per update for all of them.

Each seed's agent is built as its single run builds it (its initial weights from its own stream);
`PackedAgent.pack` stacks N of them, and `unpack` writes each seed's slice back into its own agent,
which checkpoints, evaluates and resumes as any run's does. The update is the single agent's
(`Agent.update`, or CrossQ's), unchanged: the networks are ensembles with a member per seed (per seed
and Q-function for the critic; CrossQ's batch renormalization too), every batch tensor has a leading
seed dimension, the temperature is one per seed, and each loss is one per seed (losses.py), summed
before the backward pass (agent.descend). So no gradient, statistic or temperature crosses from one
seed to another, and Adam, which works element by element, steps each seed as its own Adam would.
training.train_runs trains them, in the loop of every run.
"""

from __future__ import annotations

import torch

from soft_actor_critic.agent import Agent, CrossQAgent
from soft_actor_critic.networks import BatchRenorm

# How seed k's tensor sits in the packed one (PackedAgent.how_packed says which applies): `pack` makes the packed
# tensor of every seed's own, in seed order, and `unpack` gives seed k's own back from the packed one.


class Transposed:
    """nn.Linear's (out, in) weight, as member k of EnsembleLinear's (seeds, in, out) one."""

    @staticmethod
    def pack(tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([tensor.T for tensor in tensors])

    @staticmethod
    def unpack(tensor: torch.Tensor, seed: int) -> torch.Tensor:
        return tensor[seed].T


class Member:
    """A tensor as member k of the packed one: batch renormalization's (1, features) statistics."""

    @staticmethod
    def pack(tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(tensors)

    @staticmethod
    def unpack(tensor: torch.Tensor, seed: int) -> torch.Tensor:
        return tensor[seed]


class Row:
    """nn.Linear's (out,) bias as row k of EnsembleLinear's (seeds, 1, out) one; log_alpha's () as (seeds, 1)."""

    @staticmethod
    def pack(tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(tensors).unsqueeze(1)

    @staticmethod
    def unpack(tensor: torch.Tensor, seed: int) -> torch.Tensor:
        return tensor[seed, 0]


class TwinCritic:
    """Member i of a twin critic's (2, ...) tensor as member i * seeds + k of the packed critic's."""

    @staticmethod
    def pack(tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(tensors, dim=1).flatten(0, 1)  # (2, seeds, ...), then (2 * seeds, ...)

    @staticmethod
    def unpack(tensor: torch.Tensor, seed: int) -> torch.Tensor:
        return tensor.unflatten(0, (2, -1))[:, seed]


Layout = type[Transposed | Member | Row | TwinCritic]
SHARED = None  # the same tensor for every seed: as it is, as the state's values that are not tensors


class PackedAgent(Agent):
    """N seeds' SAC agents as one: `act` takes (seeds, observation_dim), `update` a Batch of
    (seeds, batch, ...) tensors, and its metrics are one per seed. PackedCrossQAgent packs CrossQ's."""

    def pack(self, agents: list[Agent]) -> None:
        """Take each seed's state from its own agent: its networks, temperature and Adam's moments."""
        if len(agents) != self.seeds:
            raise ValueError(f"{len(agents)} agents for {self.seeds} seeds")
        self.load_state_dict(self.rebuilt([agent.state_dict() for agent in agents]))

    def unpack(self, agents: list[Agent]) -> None:
        """Give each seed's agent its slice of the packed state, to checkpoint or evaluate as a single run."""
        state = self.state_dict()
        for seed, agent in enumerate(agents):
            agent.load_state_dict(self.rebuilt([state], seed))

    def rebuilt(self, states: list, seed: int | None = None, path: tuple = ()):
        """states[0] with each tensor replaced by the packed one of the tensors at its place in every state, or
        with `seed`, by that seed's own of the packed state's: its dicts rebuilt, so that no state changes,
        and its other values shared."""
        if isinstance(states[0], dict):
            return {key: self.rebuilt([state[key] for state in states], seed, (*path, key)) for key in states[0]}
        layout = self.how_packed(*path) if isinstance(states[0], torch.Tensor) else SHARED
        if layout is SHARED:
            return states[0]
        return layout.pack(states) if seed is None else layout.unpack(states[0], seed)

    def how_packed(self, part: str, *path) -> Layout | None:
        """How seed k's tensor at `path` in `part` of a single run's state dict sits in the packed one: nn.Linear's
        weight Transposed, its bias and a temperature a Row, batch renormalization's statistics a Member, a
        critic's tensors TwinCritic; the action bounds and batch renormalization's count of passes are SHARED.
        Adam's moments follow their parameter; its step count is SHARED."""
        if part.endswith("_optimizer"):  # path: ("state", the parameter's index, "exp_avg", say)
            if path[-1] == "step":
                return SHARED
            if part == "alpha_optimizer":  # of log_alpha alone
                return Row
            module = part.removesuffix("_optimizer")
            names = [name for name, _ in getattr(self, module).named_parameters()]
            return self.how_packed(module, names[path[1]])
        if not path:  # log_alpha
            return Row
        name = path[0]
        if name.startswith("action_") or name.endswith("passes"):
            return SHARED
        if part != "policy":
            return TwinCritic
        if isinstance(self.policy.get_submodule(name.rpartition(".")[0]), BatchRenorm):
            return Member
        return Row if name.endswith("bias") else Transposed


class PackedCrossQAgent(PackedAgent, CrossQAgent):
    """N seeds' CrossQ agents as one: PackedAgent's networks, packing and acting, CrossQAgent's updates,
    in which (s, a) and (s', a') join along the batch dimension, and each seed's batch renormalization
    keeps its own statistics (a member per seed, over that seed's batch alone)."""
