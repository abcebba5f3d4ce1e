"""A preallocated float32 ring buffer of transitions, sampled uniformly by index."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    observations: np.ndarray  # (batch, observation_dim)
    actions: np.ndarray  # (batch, action_dim)
    rewards: np.ndarray  # (batch,)
    next_observations: np.ndarray  # (batch, observation_dim)
    terminateds: np.ndarray  # (batch,) 1.0 where the episode really ended, 0.0 otherwise


class ReplayBuffer:
    """Holds the newest `capacity` transitions; once full, each new one replaces the oldest.

    The arrays are allocated once, up front; numpy's zeros only takes memory pages as rows get
    written, so a large capacity costs nothing until it fills.
    """

    def __init__(self, capacity: int, observation_dim: int, action_dim: int, seed: int | None = None) -> None:
        self.capacity = capacity
        self.observations = np.zeros((capacity, observation_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, action_dim), dtype=np.float32)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.next_observations = np.zeros((capacity, observation_dim), dtype=np.float32)
        self.terminateds = np.zeros(capacity, dtype=np.float32)
        self.position = 0  # the row the next transition goes to
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, observation, action, reward: float, next_observation, terminated: bool) -> None:
        row = self.position
        self.observations[row] = observation
        self.actions[row] = action
        self.rewards[row] = reward
        self.next_observations[row] = next_observation
        self.terminateds[row] = terminated
        self.position = (row + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """batch_size transitions drawn uniformly, with replacement, from the filled rows only."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        rows = self.rng.integers(0, self.size, size=batch_size)
        return Batch(
            self.observations[rows],
            self.actions[rows],
            self.rewards[rows],
            self.next_observations[rows],
            self.terminateds[rows],
        )
