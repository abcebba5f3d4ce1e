"""Sweeps end to end, with tiny runs: the grid, names, manifest, summary, continuing, refusals, a killed
worker, Ctrl-C, and the Ray backend on a local Ray instance."""

import contextlib
import csv
import dataclasses
import fcntl
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, checkpoint_step, logged_steps, wait_for

from soft_actor_critic.__main__ import main
from soft_actor_critic.config import TrainConfig
from soft_actor_critic.sweep import task
from soft_actor_critic.sweep.task import packed_groups

TINY = ["--env-name", "Pendulum-v1", "--hidden-units", "8,8", "--batch-size", "16", "--memory-size", "500"]
TINY += ["--start-step", "100", "--num-steps", "150", "--eval-every", "150", "--eval-episodes", "1", "--device", "cpu"]


def sweep(directory: Path, *flags: str) -> list[str]:
    return ["sweep", "--sweep-name", "study", "--directory", str(directory), *TINY, *flags]


def summary(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "summary.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_a_grid_of_runs_named_by_their_settings_with_a_manifest_and_a_summary(tmp_path, capsys):
    assert main(sweep(tmp_path, "--seed", "1", "2", "--learning-rate", "0.001", "0.003", "--workers", "2")) == 0
    sweep_dir = tmp_path / "study"
    names = {"learning-rate=0.001_seed=1", "learning-rate=0.001_seed=2"}
    names |= {"learning-rate=0.003_seed=1", "learning-rate=0.003_seed=2"}
    assert {path.name for path in sweep_dir.iterdir() if (path / "config.json").is_file()} == names
    for name in names:
        config = json.loads((sweep_dir / name / "config.json").read_text())
        assert f"learning-rate={config['learning_rate']}_seed={config['seed']}" == name
        assert checkpoint_step(sweep_dir / name) == 150
        assert b"\r" not in (sweep_dir / "logs" / f"{name}.log").read_bytes()  # no progress bar's redraws
    grid = json.loads((sweep_dir / "sweep.json").read_text())["grid"]
    assert grid["seed"] == [1, 2] and grid["learning_rate"] == [0.001, 0.003] and grid["hidden_units"] == [[8, 8]]
    rows = summary(sweep_dir)
    assert [row["setting"] for row in rows] == ["learning-rate=0.001", "learning-rate=0.003"]
    for row in rows:
        assert row["seeds"] == "2" and len(row["per_seed"].split(" / ")) == 2
        finals = [float(value) for value in row["per_seed"].split(" / ")]
        assert float(row["mean"]) == pytest.approx(sum(finals) / 2, abs=0.06)
        assert float(row["iqm_low"]) <= float(row["iqm"]) <= float(row["iqm_high"])
    printed = capsys.readouterr().out
    assert "| learning-rate=0.001 | 2 of 2 |" in printed

    # plot finds a sweep's runs in the folder that holds it, and eval takes the path of one of them
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path)]) == 0
    plotted = capsys.readouterr()
    assert f"wrote {tmp_path / 'plot.png'} (4 runs)" in plotted.out
    assert plotted.err == ""
    assert main(["eval", "--run-name", str(sweep_dir / "learning-rate=0.001_seed=1"), "--num-episodes", "1"]) == 0

    # The same command again trains nothing; --summary alone prints the table again.
    before = {name: (sweep_dir / name / "checkpoint.pt").stat().st_mtime_ns for name in names}
    assert main(sweep(tmp_path, "--seed", "1", "2", "--learning-rate", "0.001", "0.003")) == 0
    assert "4 runs, 4 finished already" in capsys.readouterr().out
    assert {name: (sweep_dir / name / "checkpoint.pt").stat().st_mtime_ns for name in names} == before
    assert main(["sweep", "--sweep-name", "study", "--directory", str(tmp_path), "--summary"]) == 0
    assert "| learning-rate=0.003 | 2 of 2 |" in capsys.readouterr().out


def test_another_grid_in_the_same_sweep_is_refused(tmp_path, capsys):
    assert main(sweep(tmp_path, "--seed", "1")) == 0
    manifest = (tmp_path / "study" / "sweep.json").read_text()
    capsys.readouterr()
    assert main(sweep(tmp_path, "--seed", "1", "2")) == 1
    error = capsys.readouterr().err
    assert "sweep of another grid (--seed [1] there, [1, 2] now)" in error and error.count("\n") == 1
    assert (tmp_path / "study" / "sweep.json").read_text() == manifest
    assert not (tmp_path / "study" / "seed=2").exists()


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--batch-size", "16", "0"], "--batch-size must be positive"),
        (["--seed", "1", "1"], "--seed lists a value twice"),
        (["--hidden-units", "8,x"], "not a list of widths"),
        (["--sweep-name", "a/b"], "--sweep-name 'a/b' must be a plain folder name"),
    ],
)
def test_bad_values_are_refused_before_anything_starts(flags, words, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*sweep(tmp_path), *flags])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert words in error and error.count("\n") == 1
    assert not (tmp_path / "study").exists()


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--env-name", "Pendulum-v1", "Pendulm-v1"], "unknown environment 'Pendulm-v1'; did you mean Pendulum-v1"),
        (["--env-name", "Pendulum-v1", "CartPole-v1"], "CartPole-v1 has actions of type Discrete(2)"),
        (["--sweep-name", "taken"], "taken is a file, not a sweep"),
    ],
)
def test_a_bad_env_or_a_file_in_the_way_is_refused_before_anything_is_written(flags, words, tmp_path, capsys):
    (tmp_path / "taken").write_text("a user's file")
    assert main([*sweep(tmp_path), *flags]) == 1
    error = capsys.readouterr().err
    assert words in error and error.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken"]
    assert (tmp_path / "taken").read_text() == "a user's file"


def test_a_run_another_process_trains_is_waited_for_then_reported_busy_not_removed(tmp_path, monkeypatch):
    assert main(sweep(tmp_path, "--seed", "1", "2", "--workers", "1")) == 0
    run_dir = tmp_path / "study" / "seed=1"
    (run_dir / "checkpoint.pt").unlink()  # as before its first checkpoint: the sweep would start it over
    (run_dir / "checkpoint_step.json").unlink()
    (run_dir / "events.out").write_text("another process's curves")
    monkeypatch.setattr(task, "BUSY_SECONDS", 1.0)
    run = TrainConfig(env_name="Pendulum-v1", num_steps=150, directory=str(tmp_path / "study"), run_name="seed=1")
    with open(run_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a training process holds it
        started = time.monotonic()
        [(_, _, outcome)] = task.train_in_sweep([run])
    assert time.monotonic() - started >= 1.0  # waited for it first
    assert outcome == f"busy: {run_dir} is in use by another training process"
    assert (run_dir / "events.out").read_text() == "another process's curves"


def test_a_run_locked_by_a_process_that_soon_lets_go_is_trained_not_failed(tmp_path, capsys):
    """As after a kill -9 of a sweep: its workers, told by the kernel, write their checkpoints and exit, and the
    same command started at once meets their runs still locked for a moment."""
    assert main(sweep(tmp_path, "--seed", "1", "2", "--workers", "1")) == 0
    run_dir = tmp_path / "study" / "seed=1"
    for name in ("checkpoint.pt", "checkpoint_step.json"):  # as if stopped before its first checkpoint
        (run_dir / name).unlink()
    with open(run_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        threading.Timer(3.0, fcntl.flock, (lock, fcntl.LOCK_UN)).start()  # lets go in 3 s, while the sweep waits
        assert main(sweep(tmp_path, "--seed", "1", "2", "--workers", "1")) == 0
    assert checkpoint_step(run_dir) == 150


def test_one_run_is_counted_in_the_singular(tmp_path, capsys):
    assert main(sweep(tmp_path, "--seed", "1", "--workers", "1", "--num-steps", "110", "--eval-every", "0")) == 0
    printed = capsys.readouterr().out
    assert "study: 1 run, 0 finished already" in printed and "1 run to train, 1 at a time, each with" in printed


def test_the_command_that_continues_a_sweep_is_the_one_main_was_given(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["soft_actor_critic"])  # as `python3 soft_actor_critic sweep ...` sets it
    argv = sweep(tmp_path, "--hidden-units", "100000000,100000000", "--workers", "1")  # a run that cannot start
    assert main(argv) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    program = f"{Path(sys.executable).name} soft_actor_critic"
    assert error == (
        f"{program} sweep: error: 1 of 1 runs did not finish; the same command continues them: "
        f"{program} {shlex.join(argv)}"
    )


def test_a_damaged_record_of_wall_times_is_one_line(tmp_path, capsys):
    assert main(sweep(tmp_path, "--seed", "1")) == 0
    (tmp_path / "study" / "wall_times.json").write_text('{"seed=1": 1')
    capsys.readouterr()
    assert main(["sweep", "--sweep-name", "study", "--directory", str(tmp_path), "--summary"]) == 1
    error = capsys.readouterr().err
    assert "wall_times.json is not a valid record of wall times" in error and error.count("\n") == 1


def test_several_layer_widths_and_envs_name_the_runs(tmp_path, capsys):
    flags = ["--hidden-units", "8,8", "16", "--env-name", "Pendulum-v1", "MountainCarContinuous-v0"]
    assert main([*sweep(tmp_path), *flags, "--num-steps", "120", "--eval-every", "0"]) == 0
    assert capsys.readouterr().out.count("| 0 of 1 | no evals (--eval-every 0) |") == 4  # finished, yet no eval
    runs = {path.name for path in (tmp_path / "study").iterdir() if (path / "config.json").is_file()}
    assert runs == {
        f"{env}_hidden-units={units}" for env in ("Pendulum-v1", "MountainCarContinuous-v0") for units in ("8,8", "16")
    }


def long_sweep(directory: Path, *flags: str) -> list[str]:
    return sweep(directory, "--num-steps", "3000", "--checkpoint-every", "500", "--eval-every", "0", *flags)


@pytest.fixture
def start_sweep():
    """Starts a sweep in a process group of its own; whatever is left of it is killed after the test,
    workers included, so that a failed test leaves no training behind."""
    processes = []

    def start(directory: Path, *flags: str, env: dict | None = None) -> subprocess.Popen:
        command = [sys.executable, "-m", "soft_actor_critic", *long_sweep(directory, *flags)]
        processes.append(
            subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
            )
        )
        return processes[-1]

    yield start
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def workers(pid: int) -> list[int]:
    """The sweep's worker processes: its children started by multiprocessing's spawn (Linux /proc)."""
    children = [int(task) for task in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [child for child in children if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text()]


@pytest.mark.parametrize(
    "flags, processes, unfinished",
    [(("--workers", "2"), 2, 1), (("--seeds-per-process", "2"), 1, 2)],  # a run each; both runs packed in one
)
def test_a_killed_worker_costs_its_runs_one_checkpoint_and_the_same_command_finishes_them(
    start_sweep, tmp_path, flags, processes, unfinished
):
    process = start_sweep(tmp_path, "--seed", "1", "2", *flags)
    runs = [tmp_path / "study" / f"seed={seed}" for seed in (1, 2)]
    wait_for(lambda: all((run / "checkpoint.pt").is_file() for run in runs) and len(workers(process.pid)) == processes)
    # past the checkpoint, so that the killed runs have curves to purge (until the next checkpoint, 500 steps on)
    wait_for(lambda: all(logged_steps(run, "time/sps")[-1:] > [checkpoint_step(run)] for run in runs))
    os.kill(workers(process.pid)[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=300)
    message = f"{unfinished} of 2 runs did not finish; the same command continues them"
    assert process.returncode == 1 and message in stderr.decode()
    killed = [checkpoint_step(run) for run in runs if checkpoint_step(run) < 3000]
    assert len(killed) == unfinished and all(step > 0 and step % 500 == 0 for step in killed)
    argv = sweep(tmp_path, "--num-steps", "3000", "--checkpoint-every", "500", "--eval-every", "0", "--seed", "1", "2")
    assert main([*argv, *flags]) == 0
    for run in runs:
        assert checkpoint_step(run) == 3000
        assert logged_steps(run, "time/sps") == list(range(250, 3001, 250))


def test_ctrl_c_checkpoints_every_running_run_and_says_how_to_continue(start_sweep, tmp_path):
    process = start_sweep(tmp_path, "--seed", "1", "2", "3", "--workers", "2")
    output = bytearray()

    def training() -> bool:  # the sweep's bar counts the runs' steps: a run is in its training loop
        output.extend(process.stderr.read1())
        return re.search(rb"\| *[1-9][0-9]*/[0-9]+ \[", bytes(output)) is not None

    wait_for(training)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it: to the sweep and its workers
    _, stderr = process.communicate(timeout=20)  # at once: the queued run is not waited for
    assert process.returncode == 130
    message = stderr.decode().strip().splitlines()[-1]
    assert ": Ctrl-C: the running runs checkpointed; continue with: " in message
    assert f"continue with: {Path(sys.executable).name} -m soft_actor_critic sweep --sweep-name study" in message
    started = [path for path in (tmp_path / "study").iterdir() if (path / "checkpoint.pt").is_file()]
    assert started and all(0 < checkpoint_step(run) < 3000 for run in started)
    assert not (tmp_path / "study" / "seed=3").exists()  # queued, never started
    assert main(shlex.split(message.split("continue with: ")[1])[3:]) == 0  # the command less its program
    assert [checkpoint_step(tmp_path / "study" / f"seed={seed}") for seed in (1, 2, 3)] == [3000] * 3


def test_each_worker_starts_with_its_share_of_threads_in_its_environment(start_sweep, tmp_path):
    process = start_sweep(tmp_path, "--seed", "1", "2", "--workers", "2")
    wait_for(lambda: len(workers(process.pid)) == 2)
    threads = str(max(1, len(os.sched_getaffinity(0)) // 2))
    for pid in workers(process.pid):  # the environment the worker's interpreter started with
        variables = dict(item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if item)
        assert variables[b"OMP_NUM_THREADS"] == variables[b"MKL_NUM_THREADS"] == threads.encode()


def test_a_thread_count_the_user_set_wins_over_the_share_of_cores(start_sweep, tmp_path):
    process = start_sweep(tmp_path, "--seed", "1", "--workers", "1", env=os.environ | {"OMP_NUM_THREADS": "1"})
    wait_for(lambda: len(workers(process.pid)) == 1)
    (pid,) = workers(process.pid)
    variables = dict(item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if item)
    assert variables[b"OMP_NUM_THREADS"] == variables[b"MKL_NUM_THREADS"] == b"1"  # not one worker's 2 cores


def test_ctrl_c_while_the_workers_start_is_an_interruption_not_an_error(start_sweep, tmp_path):
    """A terminal's Ctrl-C reaches the sweep's whole process group, workers still importing torch included:
    from its start, a worker holds SIGINT blocked, then ignores it. (Whether a worker that does not shows a
    KeyboardInterrupt is a race with the sweep's SIGTERM, hence the look at its signal masks.)"""
    process = start_sweep(tmp_path, "--seed", "1", "2", "--workers", "2")
    wait_for(lambda: len(workers(process.pid)) == 2)  # spawned, still importing torch
    for pid in workers(process.pid):
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        assert (int(status["SigBlk"], 16) | int(status["SigIgn"], 16)) & 1 << (signal.SIGINT - 1)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "continue with:" in stderr.decode()
    assert "Traceback" not in stderr.decode() and "stopped on an error" not in stdout.decode()
    assert sorted(json.loads((tmp_path / "study" / "wall_times.json").read_text())) == ["seed=1", "seed=2"]


def test_ray_backend_on_a_local_instance_counts_every_step(tmp_path, capsys):
    pytest.importorskip("ray")
    assert main(sweep(tmp_path, "--seed", "1", "2", "--ray-address", "local")) == 0
    for seed in (1, 2):
        assert checkpoint_step(tmp_path / "study" / f"seed={seed}") == 150
    assert "300/300" in capsys.readouterr().err  # the bar's last count: every step, not only whole hundreds
    assert [row["seeds"] for row in summary(tmp_path / "study")] == ["2"]


def test_ctrl_c_on_ray_cancels_each_task_once_and_every_run_checkpoints_where_it_stopped(start_sweep, tmp_path):
    """Ray's cancel reaches a running task's train as a Ctrl-C, and a second one would abort the checkpoint
    that the first asked for. With --checkpoint-every 0 only a stop writes a checkpoint; networks 2048 wide
    make the stop's last step and checkpoint take longer than the second a cancel sent every second took."""
    pytest.importorskip("ray")
    flags = ["--ray-address", "local", "--checkpoint-every", "0", "--eval-every", "100", "--hidden-units", "2048,2048"]
    process = start_sweep(tmp_path, "--seed", "1", "2", *flags)
    runs = [tmp_path / "study" / f"seed={seed}" for seed in (1, 2)]
    wait_for(lambda: all((run / "eval.csv").is_file() for run in runs))  # both in their training loops
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "continue with:" in stderr.decode()
    assert all((run / "checkpoint.pt").is_file() and 100 <= checkpoint_step(run) < 3000 for run in runs)
    assert sorted(json.loads((tmp_path / "study" / "wall_times.json").read_text())) == ["seed=1", "seed=2"]


@pytest.mark.parametrize(
    ("address", "words"),
    [("justtext", "none of auto, local"), ("127.0.0.1:1", "cannot reach"), ("auto", "no running Ray cluster")],
)
def test_a_wrong_ray_address_is_one_line_and_writes_nothing(address, words, tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if address == "auto" and Path("/tmp/ray/ray_current_cluster").exists():
        pytest.skip("this machine has a Ray cluster started by `ray start`")
    assert main(sweep(tmp_path, "--ray-address", address)) == 1
    error = capsys.readouterr().err
    assert words in error and error.count("\n") == 1
    assert not (tmp_path / "study").exists()


def test_seeds_packed_into_one_process_write_the_runs_a_sweep_of_single_runs_writes(tmp_path, capsys):
    argv = sweep(tmp_path, "--seed", "1", "2", "3", "--learning-rate", "0.001", "0.003", "--seeds-per-process", "2")
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "6 runs to train, packed up to 2 to a process" in printed
    runs = [path for path in (tmp_path / "study").iterdir() if (path / "config.json").is_file()]
    assert len(runs) == 6 and all(checkpoint_step(run) == 150 for run in runs)
    logs = sorted(path.name for path in (tmp_path / "study" / "logs").iterdir())
    # per setting, seeds 1 and 2 packed (logged under the first), seed 3 alone
    assert logs == [f"learning-rate={rate}_seed={seed}.log" for rate in ("0.001", "0.003") for seed in (1, 3)]
    assert (
        "packed in one process: learning-rate=0.001_seed=1, learning-rate=0.001_seed=2"
        in (tmp_path / "study" / "logs" / "learning-rate=0.001_seed=1.log").read_text()
    )
    assert all(row["seeds"] == "3" for row in summary(tmp_path / "study"))
    assert main(argv) == 0 and "6 runs, 6 finished already" in capsys.readouterr().out


def test_seeds_per_process_below_one_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(sweep(tmp_path, "--seed", "1", "2", "--seeds-per-process", "0"))
    assert exit_info.value.code == 2 and "--seeds-per-process must be positive" in capsys.readouterr().err
    assert not (tmp_path / "study").exists()


def test_a_packed_group_is_one_ray_task_and_crossq_packs_too(tmp_path, capsys):
    """On Ray, seeds 1 and 2 of each algorithm train as one task; each run is recorded as its own."""
    pytest.importorskip("ray")
    argv = sweep(tmp_path, "--seed", "1", "2", "--algorithm", "sac", "crossq", "--critic-hidden-units", "32")
    assert main([*argv, "--seeds-per-process", "2", "--ray-address", "local"]) == 0
    study = tmp_path / "study"
    names = [f"algorithm={algorithm}_seed={seed}" for algorithm in ("sac", "crossq") for seed in (1, 2)]
    assert all(checkpoint_step(study / name) == 150 for name in names)
    assert sorted(path.name for path in (study / "logs").iterdir()) == sorted(f"{names[i]}.log" for i in (0, 2))
    assert "packed in one process" in (study / "logs" / f"{names[2]}.log").read_text()
    assert b"\r" not in (study / "logs" / f"{names[2]}.log").read_bytes()  # no progress bar's redraws
    assert sorted(json.loads((study / "wall_times.json").read_text())) == sorted(names)
    assert "600/600" in capsys.readouterr().err


def test_ctrl_c_checkpoints_every_seed_of_a_packed_process(start_sweep, tmp_path):
    process = start_sweep(tmp_path, "--seed", "1", "2", "--seeds-per-process", "2")
    runs = [tmp_path / "study" / f"seed={seed}" for seed in (1, 2)]
    wait_for(lambda: all((run / "checkpoint.pt").is_file() for run in runs))  # training, past its first
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "continue with:" in stderr.decode()
    steps = [checkpoint_step(run) for run in runs]
    assert steps[0] == steps[1] and 0 < steps[0] < 3000  # both stopped at the same step, each checkpointed


def test_a_sweep_whose_manifest_an_older_version_wrote_continues(tmp_path, capsys):
    """Before --algorithm, a manifest held no algorithm's fields, and the learning rate's default as a
    value (0.0003), where the grid now holds None: the same command must still continue that sweep."""
    argv = sweep(tmp_path, "--seed", "1")
    assert main(argv) == 0
    path = tmp_path / "study" / "sweep.json"
    manifest = json.loads(path.read_text())
    for name in ("algorithm", "critic_hidden_units", "adam_beta1", "policy_delay", "renorm_momentum", "renorm_eps"):
        manifest["grid"].pop(name)
    manifest["grid"].pop("renorm_warmup")
    manifest["grid"]["learning_rate"] = [0.0003]
    path.write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(argv) == 0 and "1 run, 1 finished already" in capsys.readouterr().out
    assert main(sweep(tmp_path, "--seed", "1", "--learning-rate", "0.001")) == 1  # another grid is still refused


def test_a_sweep_reads_the_steps_of_its_runs_without_loading_their_checkpoints(tmp_path, capsys, monkeypatch):
    argv = sweep(tmp_path, "--seed", "1", "2", "--seeds-per-process", "2")
    assert main(argv) == 0
    loaded, load = [], torch.load
    monkeypatch.setattr(
        torch, "load", lambda path, **options: loaded.append(Path(path).parent.name) or load(path, **options)
    )
    capsys.readouterr()
    assert main(argv) == 0 and "2 runs, 2 finished already" in capsys.readouterr().out
    assert loaded == []
    for seed in (1, 2):  # as a run from before checkpoint_step.json: its checkpoint is loaded, once
        (tmp_path / "study" / f"seed={seed}" / "checkpoint_step.json").unlink()
    assert main(argv) == 0 and "2 runs, 2 finished already" in capsys.readouterr().out
    assert sorted(loaded) == ["seed=1", "seed=2"]


def test_only_seeds_of_one_setting_carried_out_alike_at_one_step_are_packed():
    run = TrainConfig(env_name="Pendulum-v1", directory="runs")
    runs = {
        dataclasses.replace(run, seed=1, run_name="a"): 500,
        dataclasses.replace(run, seed=2, run_name="b", checkpoint_every=100): 500,  # carried out otherwise
        dataclasses.replace(run, seed=3, run_name="c"): 1000,  # at another step
        dataclasses.replace(run, seed=4, run_name="d", learning_rate=1e-3): 500,  # another setting
        dataclasses.replace(run, seed=5, run_name="e"): 500,
    }
    assert [[run.run_name for run in group] for group in packed_groups(runs, 4)] == [["a", "e"], ["b"], ["c"], ["d"]]
