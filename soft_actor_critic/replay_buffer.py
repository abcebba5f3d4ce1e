"""A preallocated float32 ring buffer of transitions, sampled uniformly by index."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    observations: torch.Tensor  # (batch, observation_dim)
    actions: torch.Tensor  # (batch, action_dim)
    rewards: torch.Tensor  # (batch,)
    next_observations: torch.Tensor  # (batch, observation_dim)
    terminateds: torch.Tensor  # (batch,) 1.0 where the episode really ended, 0.0 otherwise


def stack(batches: list[Batch]) -> Batch:
    """Batches of packed seeds (packed.py), one per seed, as one: each field (seeds, batch, ...)."""
    return Batch(*map(torch.stack, zip(*batches)))


class ReplayBuffer:
    """Holds the newest `capacity` transitions; once full, each new one replaces the oldest.

    The storage is one (capacity, width) tensor, a transition per row (observation, action, reward,
    next observation, terminated side by side), allocated once, up front, on the device the updates
    run on: a buffer that can't fit fails at once, not hours in. Storing a transition is one copy
    and gathering a batch one indexing op; on a GPU a batch never crosses to the host.
    """

    def __init__(
        self,
        capacity: int,
        observation_dim: int,
        action_dim: int,
        seed: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.capacity, self.device = capacity, torch.device(device)
        self.widths = Batch(observation_dim, action_dim, 1, observation_dim, 1)  # columns of each field
        self.transitions = torch.zeros(capacity, sum(self.widths), device=self.device)
        # Each field as a view of its columns: buffer.rewards is (capacity,), buffer.actions (capacity, action_dim).
        self.observations, self.actions, self.rewards, self.next_observations, self.terminateds = self.fields(
            self.transitions
        )
        self.position = 0  # the row the next transition goes to
        self.size = 0
        self.generator = torch.Generator(self.device)
        if seed is not None:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    def fields(self, rows: torch.Tensor) -> Batch:
        """Rows of transitions, (n, width), as a Batch of column views (no copy)."""
        observations, actions, rewards, next_observations, terminateds = rows.split(list(self.widths), dim=-1)
        return Batch(observations, actions, rewards.squeeze(-1), next_observations, terminateds.squeeze(-1))

    def add(self, observation: np.ndarray, action: np.ndarray, reward: float, next_observation, terminated) -> None:
        row = np.concatenate([observation, action, [reward], next_observation, [terminated]], dtype=np.float32)
        self.transitions[self.position] = torch.from_numpy(row)  # one host-to-device copy on a GPU
        self.position = (self.position + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The filled rows of each field and the write position as numpy arrays, for np.savez."""
        columns = self.fields(self.transitions[: self.size].cpu())._asdict()
        return {name: column.numpy() for name, column in columns.items()} | {"position": np.array(self.position)}

    def load_state_dict(self, state) -> None:
        """Restore what state_dict returned; a ValueError if it doesn't fit this buffer."""
        size = len(state["rewards"])
        if size > self.capacity:
            raise ValueError(f"it holds {size} transitions, more than the capacity of {self.capacity}")
        for name, column in zip(Batch._fields, self.fields(self.transitions)):
            rows = np.asarray(state[name], dtype=np.float32)
            if rows.shape != (size, *column.shape[1:]):
                raise ValueError(f"its {name} have shape {rows.shape}, not {(size, *column.shape[1:])}")
            column[:size] = torch.from_numpy(rows)
        position = int(state["position"])
        if not (0 <= position < self.capacity and (position == size or size == self.capacity)):
            raise ValueError(f"its write position {position} doesn't fit {size} rows in a capacity of {self.capacity}")
        self.position, self.size = position, size

    def sample_rows(self, batch_size: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """batch_size row indices drawn uniformly, with replacement, from the filled rows only."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return torch.randint(0, self.size, (batch_size,), device=self.device, generator=self.generator, out=out)

    def gather(self, rows: torch.Tensor) -> Batch:
        return self.fields(self.transitions.index_select(0, rows))

    def sample(self, batch_size: int) -> Batch:
        """batch_size transitions drawn uniformly, with replacement, from the filled rows only."""
        return self.gather(self.sample_rows(batch_size))
