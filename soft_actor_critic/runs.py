"""The run folder on disk: making new ones without ever reusing one, and reading them back.

Every failure here is a RunError with one line that names the path, never a traceback.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from datetime import datetime
from pathlib import Path

import torch

from soft_actor_critic.config import RunError, TrainConfig, first_line

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"


def timestamp() -> str:
    return f"{datetime.now():%Y-%m-%d_%H-%M-%S}"


def create_unique_dir(root: Path, stem: str) -> Path:
    """Make root/stem, or root/stem_2, stem_3, ... if taken: a new, empty folder every time."""
    for attempt in range(1, 1000):
        path = root / (stem if attempt == 1 else f"{stem}_{attempt}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            if not root.is_dir():
                raise
    raise RunError(f"cannot find a free name for {stem} in {root}")


def create_run_dir(directory: str, run_name: str | None, env_name: str) -> Path:
    """A new run folder: directory/run_name, or a date_time_env name that no run has yet."""
    root = Path(directory)
    try:
        if run_name is None:
            return create_unique_dir(root, f"{timestamp()}_{env_name.replace('/', '-')}")
        run_dir = root / run_name
        if run_dir.exists():
            raise RunError(f"run folder {run_dir} already exists; choose another --run-name")
        run_dir.mkdir(parents=True)
        return run_dir
    except (FileExistsError, NotADirectoryError):
        raise RunError(f"--directory {directory} is not a folder") from None
    except OSError as error:
        raise RunError(f"cannot create a run folder in {directory}: {error.strerror}") from None


def find_run(directory: str, run_name: str) -> Path:
    """The existing run folder directory/run_name; if there is none, the error lists the runs there."""
    run_dir = Path(directory) / run_name
    if run_dir.is_dir():
        return run_dir
    root = Path(directory)
    runs = sorted(path.name for path in root.iterdir() if (path / CONFIG_FILE).is_file()) if root.is_dir() else []
    listing = f"runs there: {', '.join(runs)}" if runs else "it holds no runs"
    raise RunError(f"no run {run_name!r} in {root}; {listing}")


def load_train_config(run_dir: Path) -> TrainConfig:
    path = run_dir / CONFIG_FILE
    try:
        values = json.loads(path.read_text())
        known = {field.name for field in fields(TrainConfig)}
        return TrainConfig(**{key: value for key, value in values.items() if key in known})
    except FileNotFoundError:
        raise RunError(f"{path} is missing: is {run_dir} a run folder?") from None
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise RunError(f"{path} is not a valid run config: {error}") from None


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        torch.save(state, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def load_checkpoint(run_dir: Path) -> dict:
    """The run's checkpoint, read with weights_only=True: tensors and plain containers, never code."""
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        raise RunError(f"{path} is missing: the run has no checkpoint yet")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file; all mean the same here
        raise RunError(f"cannot load {path}: {first_line(error)}") from None
