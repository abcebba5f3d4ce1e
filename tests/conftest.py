"""What the tests share: the repository's root, a tiny train config and its flags, and readers of a run's
checkpoint, buffer and TensorBoard curves. Test files import the helpers from here by name."""

import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from soft_actor_critic.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
# train flags for a run of a few hundred steps that takes a second or two
TINY = ["--env-name", "Pendulum-v1", "--hidden-units", "32", "32", "--batch-size", "32", "--start-step", "100"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_configure(config):
    """Ctrl-C as Python's default, for this process and the runs it starts: a shell that runs the suite
    in the background (`pytest &` in a script) hands it SIGINT ignored, which train rightly keeps, and
    the tests of Ctrl-C would then fail."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


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


def read_checkpoint(run_dir: Path, name: str = "checkpoint.pt") -> dict:
    """The run's checkpoint, or its best.pt."""
    return torch.load(run_dir / name, weights_only=True)


def checkpoint_step(run_dir: Path) -> int:
    return read_checkpoint(run_dir)["step"]


def buffer_rows(run_dir: Path) -> int:
    """The rows of the replay buffer saved beside the run's checkpoint."""
    with np.load(run_dir / read_checkpoint(run_dir)["buffer_file"]) as arrays:
        return len(arrays["rewards"])


def logged_steps(run_dir: Path, tag: str) -> list[int]:
    """The steps TensorBoard shows for `tag`, after it drops what a resume purged."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
