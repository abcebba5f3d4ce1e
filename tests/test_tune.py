"""`tune` end to end, with tiny studies: its runs, storage and report; pruning; continuing after kill -9;
bad input; Ray on a local instance."""

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, checkpoint_step, wait_for

from soft_actor_critic.__main__ import main

optuna = pytest.importorskip("optuna")  # requirements-tune.txt

TINY = ["--env-name", "Pendulum-v1", "--hidden-units", "8", "8", "--memory-size", "1000", "--eval-episodes", "1"]
TINY += ["--start-step", "50", "--num-steps", "300", "--eval-every", "100", "--device", "cpu"]
SPACE = ["--space", "learning-rate=1e-4..1e-2:log", "batch-size=16,32"]  # with the default space's other flags


def tune(directory: Path, *flags: str, name: str = "study") -> list[str]:
    return ["tune", "--study-name", name, "--directory", str(directory), *TINY, "--seeds", "1", "2", *flags]


def load(study_dir: Path, name: str = "study") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{study_dir / 'study.db'}")


def exit_code(argv: list[str]) -> int:
    """main's return value, or the code of its SystemExit (a usage error exits 2 from argparse)."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


def test_a_study_trains_ordinary_runs_and_reports_its_best_setting(tmp_path, capsys):
    assert main(tune(tmp_path, "--trials", "3", "--workers", "2", *SPACE, "--updates-per-step", "1")) == 0
    study_dir, study = tmp_path / "study", load(tmp_path / "study")
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    # the flags given are fixed (--updates-per-step, --hidden-units, --start-step), the rest searched
    assert set(study.trials[0].params) == {"learning_rate", "batch_size", "tau", "gamma", "alpha"}
    for trial in study.trials:
        runs = [study_dir / f"trial={trial.number}_seed={seed}" for seed in (1, 2)]
        configs = [json.loads((run / "config.json").read_text()) for run in runs]
        assert [config["seed"] for config in configs] == [1, 2] and all(checkpoint_step(run) == 300 for run in runs)
        assert configs[0]["learning_rate"] == trial.params["learning_rate"]
        assert configs[0]["critic_hidden_units"] == configs[0]["hidden_units"]  # the critic follows a searched width
        assert configs[0]["updates_per_step"] == 1 and configs[0]["num_steps"] == 300
        evals = [[float(row.split(",")[1]) for row in (run / "eval.csv").read_text().split()[1:]] for run in runs]
        assert trial.value == pytest.approx(sum(sum(each) / 3 for each in evals) / 2)  # each seed's last 3 evals
        assert set(trial.intermediate_values) == {100, 200, 300}
    out = capsys.readouterr().out
    best = max(study.trials, key=lambda trial: trial.value)
    command = next(line for line in out.splitlines() if line.startswith(f"best, trial {best.number}: "))
    assert f"--learning-rate {best.params['learning_rate']} " in command and "--num-steps 300" in command
    assert "--critic-hidden-units" not in command and "--seed" not in command
    with open(study_dir / "trials.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["state"] for row in rows] == ["complete"] * 3 and float(rows[0]["value"]) == study.trials[0].value
    assert (study_dir / "history.png").stat().st_size > 0 and (study_dir / "importances.png").stat().st_size > 0

    # eval, resume and plot take its runs as any run
    assert main(["eval", "--run-name", str(study_dir / "trial=0_seed=1"), "--num-episodes", "1"]) == 0
    assert main(["plot", str(study_dir)]) == 0
    assert f"wrote {study_dir / 'plot.png'} (6 runs)" in capsys.readouterr().out

    # The same command again trains nothing and prints the report; so does --report.
    before = {path: path.stat().st_mtime_ns for path in study_dir.glob("trial=*/checkpoint.pt")}
    assert main(tune(tmp_path, "--trials", "3", *SPACE, "--updates-per-step", "1")) == 0
    assert main(tune(tmp_path, "--report", *SPACE, "--updates-per-step", "1")) == 0
    assert capsys.readouterr().out.count(command) == 2
    assert {path: path.stat().st_mtime_ns for path in study_dir.glob("trial=*/checkpoint.pt")} == before
    assert len(load(study_dir).trials) == 3


def test_a_pruned_trial_stops_at_once_keeps_its_checkpoint_and_is_marked_pruned(tmp_path, monkeypatch, capsys):
    # Planted: every trial is bad (Pendulum's returns are all below 0), from its first eval on.
    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda **_: optuna.pruners.ThresholdPruner(lower=0.0))
    flags = ["--trials", "2", "--workers", "2", "--num-steps", "3000", "--checkpoint-every", "0"]
    assert main(tune(tmp_path, *flags)) == 0
    study = load(tmp_path / "study")
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    for trial in study.trials:
        assert trial.last_step == 100 and trial.value == trial.intermediate_values[100]
        steps = [checkpoint_step(tmp_path / "study" / f"trial={trial.number}_seed={seed}") for seed in (1, 2)]
        assert all(100 <= step < 1000 for step in steps)  # stopped soon after the eval that pruned it
        assert trial.user_attrs["saved_steps"] == sum(3000 - step for step in steps)
    assert "(0 complete, 2 pruned, 0 fail, 0 running); pruning spared" in capsys.readouterr().out


def test_a_study_in_a_storage_of_its_own_keeps_its_runs_in_the_study_folder(tmp_path):
    storage = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert main(tune(tmp_path, "--trials", "1", *SPACE, "--storage", storage, name="new")) == 0
    study = optuna.load_study(study_name="new", storage=storage)
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE]
    assert checkpoint_step(tmp_path / "new" / "trial=0_seed=2") == 300 and (tmp_path / "new" / "trials.csv").is_file()
    assert not (tmp_path / "new" / "study.db").exists()


def test_a_study_killed_mid_trial_continues_with_the_same_command_and_tells_each_trial_once(tmp_path):
    argv = tune(tmp_path, "--trials", "2", "--workers", "2", "--num-steps", "600", "--checkpoint-every", "100")
    command = [sys.executable, "-m", "soft_actor_critic", *argv]
    driver = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    study_dir = tmp_path / "study"
    runs = [study_dir / f"trial=0_seed={seed}" for seed in (1, 2)]
    try:
        # both runs checkpointed: a worker that starts late (torch still loading) has no run folder yet
        wait_for(lambda: all((run / "checkpoint_step.json").is_file() for run in runs), timeout=120)
        driver.kill()  # SIGKILL: the driver gets no say; its workers are told by the kernel (SIGTERM)
        driver.wait()
        assert [trial.state for trial in load(study_dir).trials] == [optuna.trial.TrialState.RUNNING]
        # The same command at once, while the dying workers may still hold their runs: it waits for them.
        again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    assert again.returncode == 0, again.stderr
    study = load(study_dir)
    assert [trial.number for trial in study.trials] == [0, 1]  # the one left running is not asked again
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)
    assert all(checkpoint_step(study_dir / f"trial=0_seed={seed}") == 600 for seed in (1, 2))
    logs = [(study_dir / "logs" / f"{run.name}.log").read_text() for run in runs]
    assert any("resuming at step" in log for log in logs) and not any("error" in log for log in logs)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--space", "learning-rat=1e-4..1e-3"], "tune cannot search --learning-rat"),
        (["--space", "learning-rate=1e-3..1e-4"], "an empty or inverted range (0.001 is not below 0.0001)"),
        (["--space", "batch-size=0..64"], "--batch-size must be positive, got 0"),
        (["--space", "seed=1,2"], "tune cannot search --seed"),
        (["--space", "learning-rate"], "write FLAG=LOW..HIGH"),
        (["--space", "tau=0.01,0.02", "--tau", "0.01"], "--tau is both given (fixed) and in --space"),
        (["--seeds", "1", "1"], "--seeds must list distinct seeds"),
        (["--seeds", "-1", "2"], "--seeds must be in [0, 4294967295], got -1"),
        (["--confirm-seeds", "-3"], "--confirm-seeds must be in [0, 4294967295], got -3"),
        (["--space", "batch-size=16,2000"], "--batch-size (2000) must not exceed --memory-size (1000)"),
        (["--space", "critic-hidden-units=8,8/0,8"], "--critic-hidden-units must be positive"),
        (["--trials", "0"], "--trials must be positive, got 0"),
        (["--workers", "0"], "--workers must be positive, got 0"),
        (["--seeds-per-process", "0"], "--seeds-per-process must be positive, got 0"),
        (["--eval-every", "0"], "tune judges trials by their periodic evals"),
        (["--storage", "nonsense://x"], "cannot open the study study in nonsense://x"),
        (["--env-name", "CartPole-v1"], "CartPole-v1 has actions of type Discrete(2)"),
        (["--report"], "holds no study to report: run it first"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, flags, message):
    assert exit_code(tune(tmp_path / "runs", *flags)) in (1, 2)
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_a_space_that_can_draw_a_setting_train_refuses_is_refused_before_the_study_is_written(tmp_path, capsys):
    argv = ["tune", "--study-name", "study", "--directory", str(tmp_path / "runs"), "--env-name", "Pendulum-v1"]
    assert exit_code([*argv, "--space", "batch-size=64,1000", "memory-size=500..3000"]) == 2  # each end fine alone
    err = capsys.readouterr().err
    assert "--space can draw --batch-size 1000 --memory-size 500, which train refuses" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_a_study_name_reused_with_another_env_or_space_is_refused(tmp_path, capsys):
    assert main(tune(tmp_path, "--trials", "1", "--workers", "1", "--seeds", "1")) == 0
    capsys.readouterr()
    study_db = (tmp_path / "study" / "study.db").read_bytes()
    for flags, message in [
        (
            ["--env-name", "MountainCarContinuous-v0"],
            "was run with --env-name Pendulum-v1, not MountainCarContinuous-v0",
        ),
        (["--space", "tau=0.01..0.02"], "was run with --space"),
        (["--seeds", "1", "2"], "was run with --seeds [1], not [1, 2]"),
    ]:
        assert main(tune(tmp_path, "--seeds", "1", *flags)) == 1
        assert message in capsys.readouterr().err
    assert (tmp_path / "study" / "study.db").read_bytes() == study_db


def test_without_optuna_tune_names_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    assert main(tune(tmp_path)) == 1
    assert "tune needs Optuna: pip install -r requirements-tune.txt" in capsys.readouterr().err


def test_a_study_on_a_local_ray_instance(tmp_path):
    pytest.importorskip("ray")
    argv = tune(tmp_path, "--trials", "2", "--ray-address", "local")
    result = subprocess.run(
        [sys.executable, "-m", "soft_actor_critic", *argv], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    study = load(tmp_path / "study")
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(checkpoint_step(tmp_path / "study" / f"trial={n}_seed={s}") == 300 for n in (0, 1) for s in (1, 2))


def test_ctrl_c_while_runs_are_queued_exits_at_once_and_the_same_command_tells_every_trial_once(tmp_path):
    argv = tune(tmp_path, "--trials", "2", "--workers", "2", "--num-steps", "3000", "--checkpoint-every", "100")
    argv[argv.index("--seeds") + 1 : argv.index("--seeds") + 3] = ["1", "2", "3"]  # seed 3 waits for a worker
    command = [sys.executable, "-m", "soft_actor_critic", *argv]
    driver = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    study_dir = tmp_path / "study"
    try:
        wait_for(lambda: (study_dir / "trial=0_seed=1" / "checkpoint_step.json").is_file(), timeout=120)
        os.killpg(driver.pid, signal.SIGINT)  # as a terminal sends it: to the driver and its workers
        _, stderr = driver.communicate(timeout=20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130, stderr
    assert "Ctrl-C: the running trials' runs checkpointed; continue with: " in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert [trial.state for trial in load(study_dir).trials] == [optuna.trial.TrialState.RUNNING]
    assert main(argv) == 0
    study = load(study_dir)
    assert [trial.number for trial in study.trials] == [0, 1]
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)
    assert all(checkpoint_step(study_dir / f"trial={n}_seed={s}") == 3000 for n in (0, 1) for s in (1, 2, 3))


@pytest.mark.skipif(torch.cuda.is_available(), reason="its trials fail for want of a GPU")
def test_trials_that_fail_do_not_count_and_three_in_a_row_stop_the_study_in_one_line(tmp_path, capsys):
    assert main(tune(tmp_path, "--trials", "2", "--workers", "1", "--seeds", "1", "--device", "cuda")) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar's
    assert "3 trials in a row failed, the first with trial 0: error: --device cuda: torch sees no CUDA GPU" in last
    study = load(tmp_path / "study")
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.FAIL] * 3  # counted: none


def test_a_study_reports_and_continues_by_its_name_alone(tmp_path, capsys):
    assert main(tune(tmp_path, "--trials", "1", "--seeds", "1", *SPACE)) == 0
    best = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("best, trial 0: "))
    by_name = ["tune", "--study-name", "study", "--directory", str(tmp_path)]
    assert main([*by_name, "--report"]) == 0
    assert best in capsys.readouterr().out.splitlines()
    assert main([*by_name, "--trials", "2"]) == 0  # continued on Pendulum-v1 with the study's flags and space
    study = load(tmp_path / "study")
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert set(study.trials[1].params) == set(study.trials[0].params)
    assert json.loads((tmp_path / "study" / "trial=1_seed=1" / "config.json").read_text())["num_steps"] == 300


def test_the_default_space_keeps_to_the_budget_and_the_widths_a_cpu_trains():
    from soft_actor_critic.config import TrainConfig
    from soft_actor_critic.study_config import TuneConfig
    from soft_actor_critic.tune.space import search_space

    for algorithm, widest in (("sac", 256), ("crossq", 1024)):
        base = TrainConfig(env_name="Pendulum-v1", algorithm=algorithm, num_steps=5000)
        space = search_space(TuneConfig(study_name="s"), base, set())
        assert max(space["start_step"].corners) <= 5000 // 4 and "updates_per_step" not in space
        widths = [
            width
            for name in ("hidden_units", "critic_hidden_units")
            if name in space
            for choice in space[name].corners
            for width in choice
        ]
        assert max(widths) == widest


def test_a_trial_asked_for_just_before_a_kill_is_taken_up_not_left_running_for_ever(tmp_path):
    assert main(tune(tmp_path, "--trials", "1", "--seeds", "1", *SPACE)) == 0
    study = load(tmp_path / "study")
    study.ask(study.trials[0].distributions)  # as a driver killed before it marked the trial as its own
    assert main(tune(tmp_path, "--trials", "2", "--seeds", "1", *SPACE)) == 0
    study = load(tmp_path / "study")
    assert [trial.number for trial in study.trials] == [0, 1]  # taken up, not asked again
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert checkpoint_step(tmp_path / "study" / "trial=1_seed=1") == 300


def test_a_trial_left_running_whose_runs_had_all_finished_is_told_by_the_next_command(tmp_path):
    """As when a driver is killed after a trial's last run finished but before it told the study."""
    assert main(tune(tmp_path, "--trials", "1", "--seeds", "1", *SPACE)) == 0
    study = load(tmp_path / "study")
    trial = study.ask(study.trials[0].distributions)
    run = ["--directory", str(tmp_path / "study"), "--run-name", f"trial={trial.number}_seed=1"]
    assert main(["train", *TINY, *run]) == 0  # its one run, finished
    assert main(tune(tmp_path, "--trials", "2", "--seeds", "1", *SPACE)) == 0
    study = load(tmp_path / "study")
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="its trials fail for want of a GPU")
def test_a_failed_trial_never_starts_its_queued_seeds(tmp_path):
    argv = tune(tmp_path, "--trials", "1", "--workers", "2", "--device", "cuda")
    argv[argv.index("--seeds") + 1 : argv.index("--seeds") + 3] = ["1", "2", "3"]  # seed 3 waits for a worker
    assert main(argv) == 1
    assert [trial.state for trial in load(tmp_path / "study").trials] == [optuna.trial.TrialState.FAIL] * 3
    assert not list((tmp_path / "study" / "logs").glob("*_seed=3.log"))  # a trial that failed trains no more


def test_confirm_seeds_train_the_best_setting_and_the_defaults_on_unseen_seeds(tmp_path, capsys):
    assert main(tune(tmp_path, "--trials", "2", "--seeds", "1", *SPACE, "--confirm-seeds", "7", "8")) == 0
    study = load(tmp_path / "study")
    best = study.best_trial
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("on seeds 7 8, which the study never saw: "))
    assert f"trial {best.number}'s setting " in line and "the defaults " in line
    for sweep_name, learning_rate in (
        (f"confirm-trial={best.number}", best.params["learning_rate"]),
        ("confirm-defaults", 3e-4),
    ):
        for seed in (7, 8):
            run_dir = tmp_path / "study" / sweep_name / f"seed={seed}"
            config = json.loads((run_dir / "config.json").read_text())
            assert checkpoint_step(run_dir) == 300 and config["seed"] == seed
            assert config["learning_rate"] == learning_rate and config["hidden_units"] == [8, 8]  # the fixed flags kept


def test_a_study_folder_whose_storage_is_not_found_is_not_taken_over(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert main(tune(tmp_path, "--trials", "1", "--seeds", "1", "--storage", storage)) == 0
    capsys.readouterr()
    assert main(tune(tmp_path, "--trials", "1", "--seeds", "1")) == 1  # --storage forgotten
    assert "holds another study's runs: give its --storage" in capsys.readouterr().err
    assert not (tmp_path / "study" / "study.db").exists()
