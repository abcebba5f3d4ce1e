import numpy as np
import pytest
import torch

from soft_actor_critic.replay_buffer import Batch, ReplayBuffer


def fill(buffer: ReplayBuffer, count: int) -> None:
    """Row i encodes i in every field, so a sampled row tells where it came from."""
    for i in range(count):
        buffer.add(np.full(3, i), np.full(2, -i), float(i), np.full(3, i + 0.5), i % 2 == 0)


def test_fields_and_dtypes():
    buffer = ReplayBuffer(capacity=10, observation_dim=3, action_dim=2, seed=0)
    fill(buffer, 4)
    batch = buffer.sample(64)
    assert all(tensor.dtype == torch.float32 for tensor in batch)
    batch = Batch(*(tensor.numpy() for tensor in batch))
    assert batch.observations.shape == (64, 3) and batch.actions.shape == (64, 2)
    assert batch.rewards.shape == (64,) and batch.terminateds.shape == (64,)
    index = batch.rewards
    np.testing.assert_array_equal(batch.observations, np.repeat(index[:, None], 3, axis=1))
    np.testing.assert_array_equal(batch.actions, -np.repeat(index[:, None], 2, axis=1))
    np.testing.assert_array_equal(batch.next_observations, np.repeat(index[:, None] + 0.5, 3, axis=1))
    np.testing.assert_array_equal(batch.terminateds, (index % 2 == 0).astype(np.float32))


def test_never_samples_unfilled_rows():
    buffer = ReplayBuffer(capacity=100, observation_dim=3, action_dim=2, seed=0)
    fill(buffer, 5)
    batch = buffer.sample(10_000)
    assert len(buffer) == 5
    assert set(np.unique(batch.rewards.numpy())) == {0.0, 1.0, 2.0, 3.0, 4.0}
    # an unfilled row is all zeros: its reward looks like transition 0's, its next observation does not
    np.testing.assert_array_equal(batch.next_observations[:, 0], batch.rewards + 0.5)


def test_wraps_around_and_keeps_the_newest():
    buffer = ReplayBuffer(capacity=4, observation_dim=3, action_dim=2, seed=0)
    fill(buffer, 10)
    assert len(buffer) == 4
    assert buffer.position == 10 % 4
    # rows 0..3 now hold transitions 8, 9, 6, 7
    assert buffer.rewards.tolist() == [8.0, 9.0, 6.0, 7.0]
    assert set(np.unique(buffer.sample(10_000).rewards.numpy())) == {6.0, 7.0, 8.0, 9.0}


def test_empty_buffer_refuses_to_sample():
    with pytest.raises(ValueError, match="cannot sample from an empty replay buffer"):
        ReplayBuffer(capacity=4, observation_dim=1, action_dim=1).sample(1)


def test_same_seed_same_samples():
    buffers = [ReplayBuffer(capacity=50, observation_dim=3, action_dim=2, seed=seed) for seed in (7, 7, 8)]
    for buffer in buffers:
        fill(buffer, 50)
    first, same_seed, other_seed = (buffer.sample(32).rewards for buffer in buffers)
    assert torch.equal(first, same_seed)
    assert not torch.equal(first, other_seed)  # the seed is used, not a generator's fixed default
