"""Each --algorithm in one place: its agent classes, the defaults it gives the flags left at None, and the
space `tune` searches by default. Loaded without torch: the agent classes are named by module."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class SameAs:
    """A default that is another field's value: SAC's critic is as wide as --hidden-units."""

    field: str


@dataclass(frozen=True)
class Algorithm:
    """An --algorithm: its agent classes, named by module so that this one loads no torch; whether its
    networks batch-renormalize; the values it gives the fields left at None; and tune's default space, each
    flag's part as `tune --space` writes it."""

    agent: str  # in agent.py
    packed_agent: str  # in packed.py: its seeds stacked
    defaults: dict
    space: dict[str, str]
    batch_renorm: bool = False

    def agent_class(self, *, packed: bool = False) -> type:
        """The agent class (of packed seeds, with `packed`), imported now."""
        module, _, name = (self.packed_agent if packed else self.agent).rpartition(".")
        return getattr(importlib.import_module(f"soft_actor_critic.{module}"), name)


# tune's default spaces keep to what a few CPU cores train in reasonable time: layers at most 256 wide (CrossQ's
# critic 1024), one update per env step (--space updates-per-step=1,2,4 adds more), and start-step choices above
# a quarter of --num-steps left out (tune.space.search_space). Within that, RL Zoo's ranges where they overlap.
GAMMAS = "0.9,0.95,0.98,0.99,0.995,0.999"
START_STEPS = "100,300,1000,3000,10000"

# CrossQ's defaults are sb3-contrib 2.9.2's (its critic is 1024 wide; the paper's 2048 costs four times the
# compute), but for the starting temperature, which stays at 0.2: see the README's CrossQ results.
ALGORITHMS = {
    "sac": Algorithm(
        "agent.Agent",
        "packed.PackedAgent",
        defaults={
            "learning_rate": 3e-4,
            "start_step": 1000,
            "critic_hidden_units": SameAs("hidden_units"),
            "adam_beta1": 0.9,
            "policy_delay": 1,
        },
        space={
            "learning-rate": "1e-5..1e-2:log",
            "batch-size": "64,128,256,512",
            "tau": "0.001..0.05:log",
            "gamma": GAMMAS,
            "start-step": START_STEPS,
            "hidden-units": "64,64/128,128/256,256",
            "alpha": "0.01..1:log",
        },
    ),
    "crossq": Algorithm(  # no target critic, so no --tau; its critic is searched apart from the policy
        "agent.CrossQAgent",
        "packed.PackedCrossQAgent",
        defaults={
            "learning_rate": 1e-3,
            "start_step": 100,
            "critic_hidden_units": (1024, 1024),
            "adam_beta1": 0.5,
            "policy_delay": 3,
        },
        space={
            "learning-rate": "1e-4..1e-2:log",
            "batch-size": "64,128,256,512",
            "gamma": GAMMAS,
            "start-step": START_STEPS,
            "hidden-units": "64,64/256,256",
            "critic-hidden-units": "256,256/512,512/1024,1024",
            "alpha": "0.01..1:log",
            "policy-delay": "1,3",
        },
        batch_renorm=True,
    ),
}
