import pytest
import torch

from soft_actor_critic.config import TrainConfig


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def small_config(tmp_path) -> TrainConfig:
    """A config small enough to train in seconds, writing into a temporary folder."""
    return TrainConfig(
        env_name="Pendulum-v1",
        hidden_units=(32, 32),
        directory=str(tmp_path / "runs"),
        batch_size=32,
        memory_size=1000,
        num_steps=300,
        start_step=100,
        eval_episodes=2,
    )
