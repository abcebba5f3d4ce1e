"""runs.py on its own: run folders that are never reused, atomic writes, the lock, and the files read back."""

import errno
import os

import pytest
import torch

from soft_actor_critic.config import RunError, TrainConfig
from soft_actor_critic.runs import (
    checkpoint_step,
    create_run_dir,
    find_run,
    load_train_config,
    locked,
    read_eval_rows,
    save_checkpoint,
    write_atomically,
    write_eval_rows,
    write_train_config,
)


def test_run_names_never_collide(tmp_path):
    first = create_run_dir(str(tmp_path), None, "ALE/Pong-v5")
    second = create_run_dir(str(tmp_path), None, "ALE/Pong-v5")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.parent == tmp_path and "ALE-Pong-v5" in first.name


def test_existing_run_is_refused_and_left_alone(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(RunError, match="already exists"):
        create_run_dir(str(tmp_path), "mine", "Pendulum-v1")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_missing_run_is_an_error_that_lists_the_runs_there(tmp_path):
    for name in ("b", "a"):
        run_dir = tmp_path / name
        run_dir.mkdir()
        write_train_config(run_dir, TrainConfig(run_name=name))
    (tmp_path / "not-a-run").mkdir()
    assert find_run(str(tmp_path), "a") == tmp_path / "a"
    with pytest.raises(RunError, match=r"/c does not exist; runs there: a, b$"):
        find_run(str(tmp_path), "c")
    with pytest.raises(RunError, match=r"not-a-run is not a run folder: it has no config.json$"):
        find_run(str(tmp_path), "not-a-run")
    with pytest.raises(RunError, match=r"/x/c does not exist; no runs there$"):
        find_run(str(tmp_path / "x"), "c")


def test_the_config_round_trips_and_a_value_of_the_wrong_type_is_refused(tmp_path):
    config = TrainConfig(env_name="Pendulum-v1", hidden_units=(64, 32), run_name="run", device="cpu")
    write_train_config(tmp_path, config)
    assert load_train_config(tmp_path) == config
    (tmp_path / "config.json").write_text(config.to_json().replace('"batch_size": 256', '"batch_size": "256"'))
    with pytest.raises(RunError, match='batch_size is "256", which is not a valid int'):
        load_train_config(tmp_path)


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "file"
    write_atomically(path, lambda file: file.write(b"old"))

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(RunError, match="cannot write .*file: No space left on device"):
        write_atomically(path, lambda file: file.write(b"new"))
    assert path.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [path]


def test_a_run_folder_is_held_by_one_process_at_a_time(tmp_path):
    with locked(tmp_path), pytest.raises(RunError, match="in use by another training process"), locked(tmp_path):
        pass
    with locked(tmp_path):  # released: free again
        pass


def test_eval_rows_round_trip_and_a_damaged_file_is_an_error(tmp_path):
    rows = [{"step": 100, "return_mean": -150.5, "return_std": 3.25, "episodes": 10}]
    assert read_eval_rows(tmp_path) == []
    write_eval_rows(tmp_path, rows)
    assert read_eval_rows(tmp_path) == rows
    (tmp_path / "eval.csv").write_text("step,return_mean\nten,1\n")
    with pytest.raises(RunError, match="eval.csv is not a valid eval log"):
        read_eval_rows(tmp_path)


def test_the_checkpoint_step_is_read_beside_it_but_never_from_another_checkpoint(tmp_path, monkeypatch):
    loaded, load = [], torch.load
    monkeypatch.setattr(torch, "load", lambda path, **options: loaded.append(path) or load(path, **options))
    assert checkpoint_step(tmp_path) is None
    save_checkpoint(tmp_path, {"step": 100})
    assert checkpoint_step(tmp_path) == 100 and loaded == []
    # killed after the new checkpoint.pt but before its step: what is beside it is the previous one's
    write_atomically(tmp_path / "checkpoint.pt", lambda file: torch.save({"step": 200}, file))
    assert checkpoint_step(tmp_path) == 200 and len(loaded) == 1
