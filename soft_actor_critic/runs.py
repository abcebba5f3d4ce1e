"""The run folder on disk: making new ones without ever reusing one, and reading them back.

Every failure here is a RunError with one line that names the path, never a traceback.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import re
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TypedDict, get_type_hints

import numpy as np
import torch

from soft_actor_critic.config import CHECKPOINT_FILES, RunError, TrainConfig, first_line, reported
from soft_actor_critic.flags import FIELD_TYPES
from soft_actor_critic.replay_buffer import ReplayBuffer

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = CHECKPOINT_FILES["last"]
STEP_FILE = "checkpoint_step.json"  # checkpoint.pt's step, for a sweep to read without loading the checkpoint
BUFFER_FILE = "replay_buffer-{step:09d}.npz"  # named by step: checkpoint.pt names the one that goes with it
BUFFER_FILE_PATTERN = re.compile(r"replay_buffer-\d{9}\.npz(\.tmp)?")  # what save_checkpoint may remove
LOCK_FILE = ".lock"
BEST_FILE = CHECKPOINT_FILES["best"]  # the policy of the best periodic eval so far
EVAL_FILE = "eval.csv"  # one row per periodic eval


class EvalRow(TypedDict):
    """A row of eval.csv, one periodic eval: the file's columns, in order, and their types."""

    step: int
    return_mean: float
    return_std: float
    episodes: int


EVAL_TYPES = get_type_hints(EvalRow)


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
    with reported(f"cannot create a run folder in {directory}", OSError):  # such as 'Not a directory' for a file
        if run_name is None:
            return create_unique_dir(root, f"{timestamp()}_{env_name.replace('/', '-')}")
        run_dir = root / run_name
        if run_dir.exists():
            raise RunError(
                f"run folder {run_dir} already exists; continue it with --resume or choose another --run-name"
            )
        run_dir.mkdir(parents=True)
        return run_dir


def find_run(directory: str, run_name: str) -> Path:
    """The existing run folder directory/run_name, or run_name itself where it is a path (it has a '/': a sweep's
    run, say); if there is none, the error lists the runs in the folder it was looked for in."""
    run_dir = Path(run_name) if "/" in run_name else Path(directory) / run_name
    if (run_dir / CONFIG_FILE).is_file():
        return run_dir
    if run_dir.exists():
        raise RunError(f"{run_dir} is not a run folder: it has no {CONFIG_FILE}")
    root = run_dir.parent
    runs = sorted(config.parent.name for config in root.glob(f"*/{CONFIG_FILE}"))  # none where root can't be read
    raise RunError(f"{run_dir} does not exist; " + (f"runs there: {', '.join(runs)}" if runs else "no runs there"))


def write_train_config(run_dir: Path, config: TrainConfig) -> None:
    """The run's resolved config, config.json, which --resume, eval and plot read back."""
    write_atomically(run_dir / CONFIG_FILE, lambda file: file.write(config.to_json().encode()))


def load_train_config(run_dir: Path) -> TrainConfig:
    path = run_dir / CONFIG_FILE
    try:
        values = json.loads(path.read_text())
        if not isinstance(values, dict):
            raise TypeError(f"it holds a {type(values).__name__}, not an object of settings")
        known = {field.name: field.type for field in fields(TrainConfig)}
        for name, value in values.items():
            if name in known and not FIELD_TYPES[known[name]].fits(value):
                raise TypeError(f"{name} is {json.dumps(value)}, which is not a valid {known[name]}")
        return TrainConfig(**{key: value for key, value in values.items() if key in known})
    except FileNotFoundError:
        raise RunError(f"{path} is missing: is {run_dir} a run folder?") from None
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise RunError(f"{path} is not a valid run config: {error}") from None


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run folder for one training process: a second one (a --resume started while the run
    still trains, a requeued job) is refused instead of writing the same files."""
    with open(run_dir / LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInUse(f"{run_dir} is in use by another training process") from None
        yield


class RunInUse(RunError):
    """Another process holds the run folder (locked)."""


def wait_until_free(run_dir: Path, seconds: float) -> None:
    """Wait up to `seconds` for another process to let go of the run folder, such as a worker of a killed
    sweep that is writing its last checkpoint; RunInUse if it still holds it then."""
    deadline = time.monotonic() + seconds
    while run_dir.is_dir():
        try:
            with locked(run_dir):
                return
        except RunInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """write(file) into a temporary file beside `path`, fsync it, then rename it over `path`.

    A rename within a folder is atomic: at every instant `path` is either the old complete file or
    the new complete one, even if the process is killed (kill -9 included) or the machine dies.
    """
    temporary = path.with_name(path.name + ".tmp")
    try:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:  # a full disk, say: the previous file stays, the partial one goes
        temporary.unlink(missing_ok=True)
        raise RunError(f"cannot write {path}: {error.strerror or first_line(error)}") from None
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # make the rename itself durable
    finally:
        os.close(folder)


def save_checkpoint(run_dir: Path, state: dict, buffer_state: dict | None = None) -> None:
    """checkpoint.pt, and the replay buffer beside it, so that a kill at any instant leaves a matching pair.

    The buffer goes first, into a file named by its step; then checkpoint.pt, which names that file,
    replaces the old checkpoint in one rename; then checkpoint_step.json, its step and which checkpoint.pt
    it belongs to (a kill before it leaves the previous one's, which checkpoint_step ignores); only then
    are older buffer files removed.
    """
    buffer_file = None
    if buffer_state is not None:
        buffer_file = BUFFER_FILE.format(step=state["step"])
        write_atomically(run_dir / buffer_file, lambda file: np.savez(file, **buffer_state))
    write_atomically(run_dir / CHECKPOINT_FILE, lambda file: torch.save(state | {"buffer_file": buffer_file}, file))
    step = json.dumps([int(state["step"]), *file_identity(run_dir / CHECKPOINT_FILE)])  # [step, *identity]
    write_atomically(run_dir / STEP_FILE, lambda file: file.write(step.encode()))
    for path in run_dir.iterdir():
        if BUFFER_FILE_PATTERN.fullmatch(path.name) and path.name != buffer_file:
            path.unlink()


def file_identity(path: Path) -> list[int]:
    """What tells a file from the one that replaced it: its inode (a rename brings the new file's), its
    modification time and its size."""
    status = path.stat()
    return [status.st_ino, status.st_mtime_ns, status.st_size]


def checkpoint_step(run_dir: Path) -> int | None:
    """The step of the run's checkpoint.pt; None if it has none. Read from checkpoint_step.json where that
    belongs to this very checkpoint.pt; else (a run from before that file, or killed between the two
    writes) from the checkpoint itself."""
    with contextlib.suppress(OSError, ValueError, TypeError):
        step, *identity = json.loads((run_dir / STEP_FILE).read_text())
        if identity == file_identity(run_dir / CHECKPOINT_FILE):
            return int(step)
    return int(load_checkpoint(run_dir)["step"]) if (run_dir / CHECKPOINT_FILE).is_file() else None


def load_buffer(run_dir: Path, buffer_file: str, buffer: ReplayBuffer) -> None:
    """Fill `buffer` from the file a checkpoint names; read with allow_pickle=False, so never code."""
    path = run_dir / Path(buffer_file).name
    if not path.is_file():
        raise RunError(f"{path} is missing: the checkpoint's replay buffer is gone")
    try:
        if not zipfile.is_zipfile(path):  # np.load would take any other file for a pickle
            raise ValueError("not an .npz archive, the file is damaged")
        with np.load(path, allow_pickle=False) as arrays:
            buffer.load_state_dict(arrays)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise RunError(f"cannot load the replay buffer {path}: {first_line(error)}") from None


def load_checkpoint(run_dir: Path, name: str = CHECKPOINT_FILE) -> dict:
    """The run's checkpoint (or best.pt), read with weights_only=True: tensors and plain containers, never code."""
    path = run_dir / name
    if not path.is_file():
        if name == BEST_FILE:
            raise RunError(f"{path} is missing: only the periodic evals of train (--eval-every) write it")
        raise RunError(f"{path} is missing: the run has no checkpoint yet")
    with reported(f"cannot load {path}", Exception):  # torch raises many types for a bad file; all mean the same
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise RunError(f"cannot load {path}: it holds a {type(state).__name__}, not a checkpoint's dict")
    return state


def save_best(run_dir: Path, state: dict) -> None:
    write_atomically(run_dir / BEST_FILE, lambda file: torch.save(state, file))


def read_eval_rows(run_dir: Path) -> list[EvalRow]:
    """The rows of the run's eval.csv as numbers ([] if it has none); a damaged file is a RunError."""
    path = run_dir / EVAL_FILE
    if not path.is_file():
        return []
    errors = (OSError, KeyError, TypeError, ValueError, csv.Error)
    with reported(f"{path} is not a valid eval log", *errors), open(path, newline="") as file:
        return [{name: kind(row[name]) for name, kind in EVAL_TYPES.items()} for row in csv.DictReader(file)]


def write_eval_rows(run_dir: Path, rows: list[EvalRow]) -> None:
    """Replace eval.csv with `rows`, atomically."""
    write_csv(run_dir / EVAL_FILE, list(EVAL_TYPES), rows)


def write_csv(path: Path, columns: Sequence[str], rows: list[dict]) -> None:
    """Replace `path` with a CSV file of `rows` (dicts; keys not in `columns` are left out), atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, lambda file: file.write(text.getvalue().encode()))
