"""Checkpoints, resume, interruption and crash safety: a run is never lost."""

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import ROOT, TINY, buffer_rows, checkpoint_step, logged_steps, read_checkpoint, wait_for
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from soft_actor_critic.__main__ import main
from soft_actor_critic.agent import Agent
from soft_actor_critic.config import RunError
from soft_actor_critic.runs import find_run
from soft_actor_critic.training import resume_hint, train


def test_resume_continues_the_step_count_the_buffer_and_the_curves(small_config, capsys):
    config = dataclasses.replace(small_config, num_steps=300, memory_size=1000, run_name="run")
    run_dir = train(config)
    argv = ["train", "--resume", "--run-name", "run", "--directory", config.directory, "--num-steps", "700"]
    assert main(argv) == 0
    assert "resuming at step 300" in capsys.readouterr().out
    state = read_checkpoint(run_dir)
    assert state["step"] == 700 and buffer_rows(run_dir) == 700
    # Pendulum's episodes last 200 steps: one ended before the checkpoint, and the resume starts a new one
    assert logged_steps(run_dir, "episode/return") == [200, 500, 700]
    assert logged_steps(run_dir, "time/sps") == [250, 500]
    assert logged_steps(run_dir, "loss/critic") == [250, 500]
    assert '"num_steps": 700' in (run_dir / "config.json").read_text()
    assert len(EventAccumulator(str(run_dir)).Reload().Tensors("config/text_summary")) == 1  # the config once


def test_a_moved_run_resumes_where_it_is_now(small_config, tmp_path):
    old = train(dataclasses.replace(small_config, num_steps=150, run_name="run"))
    new_home = tmp_path / "moved"
    new_home.mkdir()
    old.rename(new_home / "run")
    assert main(["train", "--resume", "--run-name", "run", "--directory", str(new_home), "--num-steps", "200"]) == 0
    assert read_checkpoint(new_home / "run")["step"] == 200 and not old.exists()


def test_resume_refuses_flags_that_would_change_the_run(small_config, capsys):
    run_dir = train(dataclasses.replace(small_config, num_steps=150, run_name="run"))
    before = read_checkpoint(run_dir)["step"]
    resume = ["train", "--resume", "--run-name", "run", "--directory", small_config.directory, "--num-steps", "300"]
    for flags, name in (
        (["--hidden-units", "64"], "--hidden-units"),
        (["--env-name", "MountainCarContinuous-v0"], "--env-name"),
        (["--gamma", "0.9"], "--gamma"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*resume, *flags])
        error = capsys.readouterr().err
        assert exit_info.value.code == 2 and name in error and "differs from the run's" in error
    assert read_checkpoint(run_dir)["step"] == before
    assert main([*resume, "--hidden-units", "32", "32", "--seed", str(small_config.seed)]) == 0  # same values: fine


def test_resume_needs_a_run_name(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--resume", "--directory", str(tmp_path)])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--run-name" in error and error.count("\n") == 1


def test_a_run_resumes_by_the_path_to_its_folder_as_eval_takes_it(small_config, tmp_path, capsys):
    """A sweep's run, say: --run-name runs/sweep/seed=1 finds it wherever --directory points."""
    run_dir = train(dataclasses.replace(small_config, num_steps=150, run_name="seed=1"))
    capsys.readouterr()
    argv = ["train", "--resume", "--run-name", str(run_dir), "--directory", str(tmp_path / "elsewhere")]
    assert main([*argv, "--num-steps", "200"]) == 0
    assert read_checkpoint(run_dir)["step"] == 200
    assert json.loads((run_dir / "config.json").read_text())["directory"] == small_config.directory


@pytest.mark.parametrize("run_name", ["..", "a" * 300])
def test_resume_checks_the_run_name_before_looking_for_it(run_name, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--resume", "--run-name", run_name, "--directory", str(tmp_path)])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--run-name" in error and error.count("\n") == 1


def test_resume_of_a_missing_run_lists_the_runs(small_config, capsys):
    train(dataclasses.replace(small_config, num_steps=150, run_name="there"))
    capsys.readouterr()
    assert main(["train", "--resume", "--run-name", "elsewhere", "--directory", small_config.directory]) == 1
    error = capsys.readouterr().err
    assert "elsewhere does not exist; runs there: there\n" in error and error.count("\n") == 1


def test_resume_of_a_finished_run_asks_for_more_steps(small_config, capsys):
    train(dataclasses.replace(small_config, num_steps=150, run_name="run"))
    assert main(["train", "--resume", "--run-name", "run", "--directory", small_config.directory]) == 1
    assert "raise --num-steps" in capsys.readouterr().err


def test_resume_without_a_saved_buffer_refills_before_updating(small_config, capsys, monkeypatch):
    run_dir = train(dataclasses.replace(small_config, num_steps=150, save_buffer=False, run_name="run"))
    assert read_checkpoint(run_dir)["buffer_file"] is None and not list(run_dir.glob("replay_buffer-*"))
    updated_at = []
    update = Agent.update
    monkeypatch.setattr(
        Agent,
        "update",
        lambda agent, batch, policy_step: updated_at.append(len(batch.rewards)) or update(agent, batch, policy_step),
    )
    argv = ["train", "--resume", "--run-name", "run", "--directory", small_config.directory, "--num-steps", "200"]
    assert main([*argv, "--no-cuda-graphs"]) == 0  # a CUDA graph would replay the update, not this wrapper
    assert "no replay buffer" in capsys.readouterr().err
    assert len(updated_at) == 200 - 150 - small_config.batch_size  # the policy refills one batch first


def test_corrupt_files_are_one_line_errors_and_stay_untouched(small_config, capsys):
    run_dir = train(dataclasses.replace(small_config, num_steps=150, run_name="run"))
    capsys.readouterr()
    resume = ["train", "--resume", "--run-name", "run", "--directory", small_config.directory, "--num-steps", "300"]
    buffer_file = run_dir / read_checkpoint(run_dir)["buffer_file"]
    buffer_file.rename(run_dir / "kept-aside.npz")
    assert main(resume) == 1
    assert f"{buffer_file.name} is missing" in capsys.readouterr().err
    buffer_file.write_bytes(b"not a zip file")
    assert main(resume) == 1
    error = capsys.readouterr().err
    assert buffer_file.name in error and error.count("\n") == 1
    (run_dir / "checkpoint.pt").write_bytes(b"\x80\x02 truncated")
    assert main(resume) == 1
    error = capsys.readouterr().err
    assert "checkpoint.pt" in error and error.count("\n") == 1
    assert (run_dir / "checkpoint.pt").read_bytes() == b"\x80\x02 truncated"


def test_a_checkpoint_that_does_not_fit_or_a_broken_config_is_refused(small_config, capsys):
    run_dir = train(dataclasses.replace(small_config, num_steps=150, run_name="run"))
    other = train(dataclasses.replace(small_config, num_steps=150, hidden_units=(8,), run_name="other"))
    capsys.readouterr()
    resume = ["train", "--resume", "--run-name", "run", "--directory", small_config.directory, "--num-steps", "300"]
    (run_dir / "checkpoint.pt").write_bytes((other / "checkpoint.pt").read_bytes())
    assert main(resume) == 1
    error = capsys.readouterr().err
    assert "checkpoint.pt does not fit the run's config" in error and error.count("\n") == 1
    (run_dir / "config.json").write_text("{ not json")
    assert main(resume) == 1
    error = capsys.readouterr().err
    assert "config.json" in error and error.count("\n") == 1


@pytest.mark.parametrize(
    "name, value",
    [("seed", 1.5), ("memory_size", 1000.0), ("batch_size", "32"), ("hidden_units", [32.0]), ("cuda_graphs", 1)],
)
def test_a_config_value_of_the_wrong_type_is_refused_before_anything_runs(name, value, small_config, capsys):
    run_dir = train(dataclasses.replace(small_config, num_steps=150, run_name="run"))
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps(config | {name: value}))
    before = read_checkpoint(run_dir)["step"]
    capsys.readouterr()
    resume = ["train", "--resume", "--run-name", "run", "--directory", small_config.directory, "--num-steps", "300"]
    assert main(resume) == 1
    error = capsys.readouterr().err
    assert f"config.json is not a valid run config: {name} is" in error and error.count("\n") == 1
    assert read_checkpoint(run_dir)["step"] == before


def test_a_checkpoint_that_is_not_a_dict_is_one_line(small_config, capsys):
    run_dir = train(dataclasses.replace(small_config, num_steps=150, run_name="run"))
    torch.save(torch.zeros(3), run_dir / "checkpoint.pt")
    capsys.readouterr()
    for argv in (["eval", "--run-name", "run"], ["train", "--resume", "--run-name", "run", "--num-steps", "300"]):
        assert main([*argv, "--directory", small_config.directory]) == 1
        error = capsys.readouterr().err
        assert "checkpoint.pt: it holds a Tensor, not a checkpoint's dict" in error and error.count("\n") == 1


def test_a_nan_loss_stops_training_and_keeps_the_last_checkpoint(small_config, monkeypatch):
    # cuda_graphs off: a CUDA graph would replay the update as captured, not this Python wrapper
    config = dataclasses.replace(small_config, num_steps=1000, checkpoint_every=200, run_name="run", cuda_graphs=False)
    update = Agent.update

    def update_that_diverges(agent, batch, policy_step):
        metrics = update(agent, batch, policy_step)
        if len(updated) >= 300:  # from step 400 on
            with torch.no_grad():
                agent.critic.net[0].weight.fill_(float("nan"))
        updated.append(1)
        return metrics

    updated = []
    monkeypatch.setattr(Agent, "update", update_that_diverges)
    with pytest.raises(RunError, match="nan"):
        train(config)
    assert read_checkpoint(Path(config.directory) / "run")["step"] == 400  # the last good one, not a NaN one


def test_same_seed_same_run(small_config):
    runs = [train(dataclasses.replace(small_config, num_steps=450, run_name=name)) for name in ("a", "b")]
    first, second = (read_checkpoint(run_dir) for run_dir in runs)
    for name in ("policy", "critic", "target_critic"):
        for key, tensor in first[name].items():
            assert torch.equal(tensor, second[name][key]), f"{name}.{key}"
    other = read_checkpoint(train(dataclasses.replace(small_config, num_steps=250, seed=2, run_name="c")))
    assert not torch.equal(other["policy"]["net.0.weight"], first["policy"]["net.0.weight"])  # the seed counts
    returns = [[event.value for event in EventAccumulator(str(run)).Reload().Scalars("episode/return")] for run in runs]
    assert returns[0] == returns[1] and len(returns[0]) == 2


def start_training(directory: Path, *flags: str) -> subprocess.Popen:
    argv = ["train", *TINY, "--memory-size", "5000", "--run-name", "run", "--directory", str(directory), *flags]
    return subprocess.Popen(
        [sys.executable, "-m", "soft_actor_critic", *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def wait_for_checkpoint(process: subprocess.Popen, run_dir: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (run_dir / "checkpoint.pt").exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.05)


def freeze_past_its_checkpoint(process: subprocess.Popen, run_dir: Path) -> None:
    """Stop the training `process` (SIGSTOP) once its events hold curves past its checkpoint: frozen, it
    cannot write the next checkpoint between the look at its files and a kill."""

    def frozen_past_it() -> bool:
        assert process.poll() is None, "the run ended before it was stopped"
        os.kill(process.pid, signal.SIGSTOP)
        _, status = os.waitpid(process.pid, os.WUNTRACED)  # returns once it has stopped
        assert os.WIFSTOPPED(status)
        if logged_steps(run_dir, "time/sps")[-1] > checkpoint_step(run_dir):  # a point logged after it, on disk
            return True
        os.kill(process.pid, signal.SIGCONT)
        return False

    wait_for(frozen_past_it)


def test_kill_9_then_resume_finishes_the_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    process = start_training(tmp_path, "--num-steps", "5000", "--checkpoint-every", "400")
    wait_for_checkpoint(process, run_dir)
    resume = ["train", "--resume", "--run-name", "run", "--directory", str(tmp_path)]
    assert main(resume) == 1  # the run still trains: a second process is refused, not let in to write
    assert "in use by another training process" in capsys.readouterr().err
    freeze_past_its_checkpoint(process, run_dir)
    process.kill()  # SIGKILL: no handler runs
    process.wait()
    saved = read_checkpoint(run_dir)["step"]
    assert saved % 400 == 0 and saved < 5000
    assert buffer_rows(run_dir) == saved
    assert logged_steps(run_dir, "time/sps")[-1] > saved  # curves past the checkpoint, for the resume to purge
    assert main(resume) == 0
    assert read_checkpoint(run_dir)["step"] == 5000 and buffer_rows(run_dir) == 5000
    steps = logged_steps(run_dir, "time/sps")
    assert steps == list(range(250, 5001, 250))  # each point once: what the killed run logged after `saved` is gone


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_checkpoints_and_tells_how_to_resume(tmp_path, signum):
    run_dir = tmp_path / "run"
    process = start_training(tmp_path, "--num-steps", "100000", "--checkpoint-every", "0")
    deadline = time.monotonic() + 120
    while "step" not in process.stderr.read1().decode():  # the progress bar is up: the loop runs
        assert time.monotonic() < deadline
    os.kill(process.pid, signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    message = stderr.decode().strip().splitlines()[-1]
    python = Path(sys.executable).name
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"  # as a terminal's user knows it
    assert message.startswith(f"{python} -m soft_actor_critic train: stopped by {name} at step ")
    assert "checkpoint saved; continue with: " in message
    assert message.endswith(f"{python} -m soft_actor_critic train --resume --run-name {tmp_path / 'run'}")
    state = read_checkpoint(run_dir)
    assert 0 < state["step"] < 100000 and buffer_rows(run_dir) == state["step"]


def test_the_resume_hint_names_the_run_by_a_path_even_in_directory_dot(tmp_path, monkeypatch):
    """A '/' makes --run-name a path: the hint resumes the run whatever --directory it was made in."""
    directories = (".", "", "a/", "my runs")  # "" is the working folder too
    runs = [
        SimpleNamespace(config=SimpleNamespace(directory=directory), run_dir=Path("x")) for directory in directories
    ]
    commands = resume_hint(runs, "prog").removeprefix("checkpoints saved; continue with: ").split("; ")
    names = ["./x", "./x", "a/x", "'my runs/x'"]
    assert commands == [f"prog train --resume --run-name {name}" for name in names]
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert find_run("runs", "./x") == Path("x")


def test_a_failed_write_is_one_line_and_keeps_the_previous_checkpoint(small_config, monkeypatch):
    run_dir = train(dataclasses.replace(small_config, num_steps=150, run_name="run"))
    before = {name: (run_dir / name).read_bytes() for name in ("checkpoint.pt", "config.json")}

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(RunError, match="cannot write .*config.json: No space left on device"):
        train(dataclasses.replace(small_config, num_steps=300, run_name="run"), resume=True)
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    assert not list(run_dir.glob("*.tmp"))
