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


class ReplayBuffer:
    """Holds the newest `capacity` transitions; once full, each new one replaces the oldest.

    The storage is allocated once, up front, on the device the updates run on (so a buffer that
    can't fit fails at once, not hours in), and sampling draws its indices there too: on a GPU a
    batch never crosses to the host.
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
        self.observations = torch.zeros(capacity, observation_dim, device=self.device)
        self.actions = torch.zeros(capacity, action_dim, device=self.device)
        self.rewards = torch.zeros(capacity, device=self.device)
        self.next_observations = torch.zeros(capacity, observation_dim, device=self.device)
        self.terminateds = torch.zeros(capacity, device=self.device)
        self.position = 0  # the row the next transition goes to
        self.size = 0
        self.generator = torch.Generator(self.device)
        if seed is not None:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    def storage(self) -> Batch:
        return Batch(self.observations, self.actions, self.rewards, self.next_observations, self.terminateds)

    def add(self, observation: np.ndarray, action: np.ndarray, reward: float, next_observation, terminated) -> None:
        row = self.position
        self.observations[row] = torch.as_tensor(observation)
        self.actions[row] = torch.as_tensor(action)
        self.rewards[row] = float(reward)
        self.next_observations[row] = torch.as_tensor(next_observation)
        self.terminateds[row] = float(terminated)
        self.position = (row + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The filled rows and the write position as numpy arrays, for np.savez."""
        rows = {name: tensor[: self.size].cpu().numpy() for name, tensor in zip(Batch._fields, self.storage())}
        return rows | {"position": np.array(self.position)}

    def load_state_dict(self, state) -> None:
        """Restore what state_dict returned; a ValueError if it doesn't fit this buffer."""
        size = len(state["rewards"])
        if size > self.capacity:
            raise ValueError(f"it holds {size} transitions, more than the capacity of {self.capacity}")
        for name, tensor in zip(Batch._fields, self.storage()):
            rows = np.asarray(state[name], dtype=np.float32)
            if rows.shape != (size, *tensor.shape[1:]):
                raise ValueError(f"its {name} have shape {rows.shape}, not {(size, *tensor.shape[1:])}")
            tensor[:size] = torch.from_numpy(rows)
        position = int(state["position"])
        if not (0 <= position < self.capacity and (position == size or size == self.capacity)):
            raise ValueError(f"its write position {position} doesn't fit {size} rows in a capacity of {self.capacity}")
        self.position, self.size = position, size

    def sample(self, batch_size: int) -> Batch:
        """batch_size transitions drawn uniformly, with replacement, from the filled rows only."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        rows = torch.randint(0, self.size, (batch_size,), device=self.device, generator=self.generator)
        return Batch(*(tensor.index_select(0, rows) for tensor in self.storage()))
