"""A run's trained policy for Python code: `load_policy(run).predict(observation)`, as Stable-Baselines3's
`model.predict`; and the network that `export` writes as ONNX."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from soft_actor_critic.config import CHECKPOINT_FILES, ConfigError, TrainConfig, check_run_reference
from soft_actor_critic.environment import make_env
from soft_actor_critic.evaluate import load_network
from soft_actor_critic.networks import SquashedGaussianPolicy
from soft_actor_critic.runs import find_run, load_train_config


@dataclasses.dataclass
class Policy:
    """A run's policy on the CPU, acting on the env's own observations (a Dict or Tuple one is flattened as the
    run flattened it) with actions in the env's bounds."""

    network: SquashedGaussianPolicy  # in eval mode
    observation_space: gym.Space  # the env's own, before flattening
    config: TrainConfig  # the run's
    step: int | None  # at which the policy was saved
    run_dir: Path

    def predict(self, observation, deterministic: bool = True) -> np.ndarray:
        """The action for one observation, as the env returns it: (action_dim,); or the actions for a batch of
        them (an array with a leading batch dimension, or a Dict whose parts each have one): (batch, action_dim).
        Deterministic: tanh of the mean, as the evals act; else a sample."""
        observations, single = self.flattened(observation)
        with torch.inference_mode():
            actions = self.network.act(torch.as_tensor(observations, dtype=torch.float32), deterministic).numpy()
        return actions[0] if single else actions

    def flattened(self, observation) -> tuple[np.ndarray, bool]:
        """The observation(s) as a (batch, observation_dim) array, and whether it was a single one; a ValueError
        for one whose shape is neither the space's nor a batch of it."""
        space = self.observation_space
        if isinstance(space, gym.spaces.Box):
            array = np.asarray(observation, dtype=np.float32)
            if array.shape != space.shape and array.shape[1:] != space.shape:
                raise ValueError(
                    f"observations of shape {array.shape}; the env's are {space.shape}, or a batch of them"
                )
            return array.reshape(-1, *space.shape), array.shape == space.shape
        if isinstance(observation, list):  # a batch of the env's own observations
            return np.stack([gym.spaces.flatten(space, each) for each in observation]), False
        return self.flattened_parts(observation)

    def flattened_parts(self, observation) -> tuple[np.ndarray, bool]:
        """flattened() of a Dict or Tuple observation: each part of the space's shape (one observation), or each
        with a leading batch dimension of one size (a batch)."""
        space = self.observation_space
        keys = list(space.spaces) if isinstance(space, gym.spaces.Dict) else range(len(space.spaces))
        given = [np.shape(observation[key]) for key in keys]
        expected = [space.spaces[key].shape for key in keys]
        if given == expected:
            return gym.spaces.flatten(space, observation)[None], True
        if [shape[1:] for shape in given] != expected or len({shape[:1] for shape in given}) > 1:
            raise ValueError(
                f"observation parts of shapes {given}; the env's are {expected}, or batches of them, all of one size"
            )
        rows = [{key: observation[key][row] for key in keys} for row in range(given[0][0])]
        if isinstance(space, gym.spaces.Tuple):
            rows = [tuple(row.values()) for row in rows]
        return np.stack([gym.spaces.flatten(space, row) for row in rows]), False


def load_policy(run: str | Path, checkpoint: str = "best", *, directory: str | Path = "runs") -> Policy:
    """The policy of a run: `run` is its folder (a Path, such as `train` returns), or its name inside `directory`
    (a str; one with a '/' is a path); `checkpoint` is best (the best periodic eval's policy) or last (the latest
    checkpoint's)."""
    if checkpoint not in CHECKPOINT_FILES:
        raise ConfigError(f"checkpoint must be one of {', '.join(CHECKPOINT_FILES)}, got {checkpoint!r}")
    if isinstance(run, Path):  # a folder, wherever it is
        run_dir = find_run(str(run.parent), run.name)
    else:
        check_run_reference(run)
        run_dir = find_run(str(directory), run)
    config = load_train_config(run_dir)
    with contextlib.closing(make_env(config)) as env:
        network, step = load_network(run_dir, config, env, CHECKPOINT_FILES[checkpoint])
        flattened = isinstance(env, gym.wrappers.FlattenObservation)
        observation_space = env.env.observation_space if flattened else env.observation_space
    return Policy(network.cpu(), observation_space, config, step, run_dir)
