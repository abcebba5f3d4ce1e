"""Soft Actor-Critic (Haarnoja et al., arXiv:1801.01290 and arXiv:1812.05905) in PyTorch.

From Python, as from the command line: `train(env_name="Pendulum-v1", num_steps=20_000)` trains a run with
train's flags as keyword arguments and returns its folder; `load_policy(folder).predict(observation)` acts
with its policy. Importing the package loads neither torch nor gymnasium: they load when these are called.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"
__all__ = ["load_policy", "train"]


def train(**settings) -> Path:
    """Train a new run as `train` on the command line does, each flag a keyword argument (`--num-steps 20000`
    is num_steps=20_000; layer widths a tuple); returns the run folder. A bad setting raises ConfigError,
    a bad env or run folder RunError; `train --resume` continues a run."""
    from soft_actor_critic.config import TrainConfig
    from soft_actor_critic.training import train as train_run

    return train_run(TrainConfig(**settings))


def __getattr__(name: str):
    if name in ("load_policy", "Policy"):  # they load torch and gymnasium
        from soft_actor_critic import policy

        return getattr(policy, name)
    raise AttributeError(f"module 'soft_actor_critic' has no attribute {name!r}")
