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
train.train_runs trains them, in the loop of every run.
"""

from __future__ import annotations

import torch

from soft_actor_critic.agent import Agent, CrossQAgent
from soft_actor_critic.networks import BatchRenorm

# How seed k's tensor sits in the packed one (PackedAgent.how_packed says which applies): the packed tensor
# from every seed's own, in seed order, and seed k's own from the packed one (of `seeds`).
PACKINGS = {
    "shared": (lambda tensors: tensors[0], lambda tensor, k, seeds: tensor),
    "transposed": (lambda tensors: torch.stack([tensor.T for tensor in tensors]), lambda tensor, k, seeds: tensor[k].T),
    "member": (torch.stack, lambda tensor, k, seeds: tensor[k]),
    "row": (lambda tensors: torch.stack(tensors).unsqueeze(1), lambda tensor, k, seeds: tensor[k, 0]),
    "critic": (
        lambda tensors: torch.stack(tensors, dim=1).flatten(0, 1),
        lambda tensor, k, seeds: tensor.view(2, seeds, *tensor.shape[1:])[:, k],
    ),
}


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
        if isinstance(states[0], torch.Tensor):
            pack, unpack = PACKINGS[self.how_packed(*path)]
            return pack(states) if seed is None else unpack(states[0], seed, self.seeds)
        if isinstance(states[0], dict):
            return {key: self.rebuilt([state[key] for state in states], seed, (*path, key)) for key in states[0]}
        return states[0]

    def how_packed(self, part: str, *path) -> str:
        """How seed k's tensor at `path` in `part` of a single run's state dict sits in the packed one:
        nn.Linear's (out, in) weight is EnsembleLinear's (in, out) member k ("transposed"); its (out,) bias,
        and a temperature, row k ("row"); batch renormalization's (1, features) tensors member k ("member");
        a twin critic's member i is the packed critic's member i * seeds + k ("critic"); the action bounds
        and batch renormalization's count of passes are the same for every seed ("shared"). Adam's moments
        follow their parameter; its step count is shared."""
        if part.endswith("_optimizer"):  # path: ("state", the parameter's index, "exp_avg", say)
            if path[-1] == "step":
                return "shared"
            if part == "alpha_optimizer":  # of log_alpha alone
                return "row"
            module = part.removesuffix("_optimizer")
            names = [name for name, _ in getattr(self, module).named_parameters()]
            return self.how_packed(module, names[path[1]])
        if not path:  # log_alpha
            return "row"
        name = path[0]
        if name.startswith("action_") or name.endswith("passes"):
            return "shared"
        if part != "policy":
            return "critic"
        if isinstance(self.policy.get_submodule(name.rpartition(".")[0]), BatchRenorm):
            return "member"
        return "row" if name.endswith("bias") else "transposed"


class PackedCrossQAgent(PackedAgent, CrossQAgent):
    """N seeds' CrossQ agents as one: PackedAgent's networks, packing and acting, CrossQAgent's updates,
    in which (s, a) and (s', a') join along the batch dimension, and each seed's batch renormalization
    keeps its own statistics (a member per seed, over that seed's batch alone)."""
