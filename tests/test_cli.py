import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, read_checkpoint

from soft_actor_critic.__main__ import build_parser, main, program
from soft_actor_critic.config import PROGRAM, EvalConfig, TrainConfig


def parse(argv: list[str]) -> dict:
    args = vars(build_parser()[0].parse_args(argv))
    args.pop("command")
    return args


def test_train_defaults_are_the_config_defaults():
    args = parse(["train"])
    assert args.pop("resume") is False
    assert TrainConfig(**args) == TrainConfig()


def test_eval_defaults_are_the_config_defaults():
    assert EvalConfig(**parse(["eval", "--run-name", "x"])) == EvalConfig(run_name="x")


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for value in ("LunarLanderContinuous-v3", "(256, 256)", "runs", "1000000", "0.99", "0.005", "0.2", "sac"):
        assert f"(default: {value})" in help_text
    both_defaults = ("0.0003; crossq: 0.001", "1000; crossq: 100", "--hidden-units; crossq: 1024 1024", "1; crossq: 3")
    for both in both_defaults:
        assert f"(default: sac: {both})" in help_text  # the defaults that --algorithm crossq changes


def usage_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert error.startswith(f"{PROGRAM} {argv[0]}: error: ")  # as a runtime error of the command starts
    return error


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--memory-size", "-5"], "--memory-size"),
        (["--num-steps", "0"], "--num-steps"),
        (["--learning-rate", "0"], "--learning-rate"),
        (["--alpha", "-1"], "--alpha"),
        (["--gamma", "1.5"], "--gamma"),
        (["--tau", "0"], "--tau"),
        (["--hidden-units", "0", "64"], "--hidden-units"),
        (["--hidden-units"], "--hidden-units"),
        (["--batch-size", "512", "--memory-size", "100"], "must not exceed"),
        (["--run-name", "a/b"], "--run-name"),
        (["--run-name", ".."], "--run-name"),
        (["--run-name", "a" * 300], "at most 200"),
        (["--seed", "one"], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**32)], "--seed"),
        (["--updates-per-step", "0"], "--updates-per-step"),
        (["--device", "gpu"], "--device"),
        (["--checkpoint-every", "-1"], "--checkpoint-every"),
        (["--eval-every", "-1"], "--eval-every"),
        (["--eval-episodes", "0"], "--eval-episodes"),
        (["--num-st", "5"], "--num-st"),  # no abbreviations: `train --resume` must see every flag as typed
    ],
)
def test_bad_train_flags_are_one_line_usage_errors(flags, words, capsys, tmp_path):
    error = usage_error(["train", "--directory", str(tmp_path / "runs"), *flags], capsys)
    assert words in error
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "flags",
    [
        ["--num-episodes", "0"],
        ["--run-name", ".."],
        ["--run-name", "a" * 300],
        ["--record", "--render"],
        ["--seed", "-1"],
        ["--checkpoint", "x"],
    ],
)
def test_bad_eval_flags_are_one_line_usage_errors(flags, capsys):
    usage_error(["eval", "--run-name", "x", *flags], capsys)


def runtime_error(argv: list[str], capsys) -> str:
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert error.startswith(f"{PROGRAM} {argv[0]}: error: ")  # as a usage error of the command starts
    return error


def test_unknown_env_suggests_close_matches(capsys, tmp_path):
    error = runtime_error(["train", "--env-name", "Pendulm-v1", "--directory", str(tmp_path)], capsys)
    assert "Pendulum-v1" in error
    assert list(tmp_path.iterdir()) == []


def test_discrete_actions_are_refused(capsys, tmp_path):
    error = runtime_error(["train", "--env-name", "CartPole-v1", "--directory", str(tmp_path)], capsys)
    assert "Discrete" in error and "Box" in error
    assert list(tmp_path.iterdir()) == []


def test_directory_that_is_a_file_is_a_runtime_error(capsys, tmp_path):
    (tmp_path / "taken").write_text("")
    for directory in (tmp_path / "taken", tmp_path / "taken" / "runs"):
        error = runtime_error(["train", "--env-name", "Pendulum-v1", "--directory", str(directory)], capsys)
        assert f"cannot create a run folder in {directory}: Not a directory" in error
    assert (tmp_path / "taken").read_text() == ""


def test_cuda_without_a_gpu_is_a_runtime_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["train", "--env-name", "Pendulum-v1", "--directory", str(tmp_path), "--device", "cuda"]
    assert "--device cuda" in runtime_error(argv, capsys)
    assert list(tmp_path.iterdir()) == []


def test_memory_size_that_cannot_fit_writes_nothing(capsys, tmp_path):
    argv = ["train", "--env-name", "Pendulum-v1", "--directory", str(tmp_path), "--memory-size", str(10**14)]
    assert "--memory-size" in runtime_error(argv, capsys)
    assert list(tmp_path.iterdir()) == []


def test_layers_that_cannot_fit_write_nothing(capsys, tmp_path):
    argv = ["train", "--env-name", "Pendulum-v1", "--directory", str(tmp_path), "--hidden-units", "10000000", "1000000"]
    error = runtime_error(argv, capsys)
    assert "do not fit in memory: --hidden-units 10000000 1000000 (critic 10000000 1000000)" in error
    assert list(tmp_path.iterdir()) == []


def test_eval_of_a_missing_run_lists_the_runs(capsys, tmp_path):
    for name in ("alpha-run", "beta-run"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(TrainConfig(env_name="Pendulum-v1").to_json())
    error = runtime_error(["eval", "--run-name", "gamma-run", "--directory", str(tmp_path)], capsys)
    assert "alpha-run" in error and "beta-run" in error


def test_eval_of_a_run_without_checkpoint(capsys, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(TrainConfig(env_name="Pendulum-v1").to_json())
    error = runtime_error(["eval", "--run-name", "run", "--directory", str(tmp_path)], capsys)
    assert "checkpoint.pt" in error


def test_eval_of_a_corrupt_checkpoint_or_config(capsys, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(TrainConfig(env_name="Pendulum-v1").to_json())
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert "checkpoint.pt" in runtime_error(["eval", "--run-name", "run", "--directory", str(tmp_path)], capsys)
    (tmp_path / "run" / "config.json").write_text("{ not json")
    assert "config.json" in runtime_error(["eval", "--run-name", "run", "--directory", str(tmp_path)], capsys)


def test_checkpoint_that_does_not_fit_the_config(capsys, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(TrainConfig(env_name="Pendulum-v1", hidden_units=(8,)).to_json())
    torch.save({"policy": {"net.0.weight": torch.zeros(3, 3)}}, tmp_path / "run" / "checkpoint.pt")
    error = runtime_error(["eval", "--run-name", "run", "--directory", str(tmp_path)], capsys)
    assert "checkpoint.pt does not fit the run's config" in error


PYTHON = Path(sys.executable).name


@pytest.fixture
def installed_script(tmp_path) -> Path:
    """What `pip install .` puts on the PATH: a script named soft-actor-critic that calls main()."""
    script = tmp_path / "bin" / "soft-actor-critic"
    script.parent.mkdir()
    script.write_text("import sys\nfrom soft_actor_critic.__main__ import main\nsys.exit(main())\n")
    return script


@pytest.mark.parametrize(
    "entry, program",
    [
        (["soft_actor_critic"], f"{PYTHON} soft_actor_critic"),
        (["-m", "soft_actor_critic"], f"{PYTHON} -m soft_actor_critic"),
        (["INSTALLED"], "soft-actor-critic"),
    ],
)
def test_usage_errors_name_the_program_as_it_was_run(entry, program, installed_script):
    entry = [str(installed_script) if word == "INSTALLED" else word for word in entry]
    environment = os.environ | {"PYTHONPATH": str(ROOT)}  # for the installed script, run from elsewhere
    result = subprocess.run(
        [sys.executable, *entry, "train", "--batch-size", "x"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"{program} train: error: argument --batch-size: 'x' is not a number (see {program} train --help)\n"
    )
    result = subprocess.run([sys.executable, *entry, "eval", "--help"], cwd=ROOT, env=environment, capture_output=True)
    assert result.returncode == 0 and f"usage: {program} eval".encode() in result.stdout


def test_the_program_is_named_from_how_python_started_it(tmp_path):
    assert program("soft_actor_critic", "python3") == "python3 soft_actor_critic"
    assert program("../repo/soft_actor_critic", "python") == "python ../repo/soft_actor_critic"
    assert program(str(ROOT / "soft_actor_critic" / "__main__.py"), "python3") == "python3 -m soft_actor_critic"
    assert program("/venv/bin/soft-actor-critic", "python3") == "soft-actor-critic"


@pytest.mark.parametrize("text, value", [("100000", 100000), ("100_000", 100000), ("1e5", 100000), ("2.5e3", 2500)])
def test_integer_flags_take_scientific_notation(text, value):
    assert parse(["train", "--num-steps", text])["num_steps"] == value
    assert parse(["sweep", "--sweep-name", "s", "--num-steps", text, "1e3"])["num_steps"] == [value, 1000]
    assert parse(["sweep", "--sweep-name", "s", "--hidden-units", f"{text},8"])["hidden_units"] == [(value, 8)]


@pytest.mark.parametrize("text, reason", [("2.5", "'2.5' is not a whole number"), ("1e5x", "'1e5x' is not a number")])
def test_integer_flags_refuse_a_fraction_saying_why(text, reason, capsys):
    assert f"argument --num-steps: {reason}" in usage_error(["train", "--num-steps", text], capsys)


def test_output_into_a_closed_pipe_stops_quietly(small_config, capsys):
    """`eval ... | head -1` and the like: the reader leaves, the command stops without a traceback."""
    argv = ["train", "--env-name", "Pendulum-v1", "--hidden-units", "8", "--num-steps", "1", "--eval-every", "0"]
    assert main([*argv, "--directory", small_config.directory, "--run-name", "run"]) == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read what eval prints
    command = [sys.executable, "-m", "soft_actor_critic", "eval", "--run-name", "run"]
    process = subprocess.run(
        [*command, "--directory", small_config.directory], cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE
    )
    os.close(write_end)
    assert process.returncode == 1 and process.stderr == b""


@pytest.mark.parametrize("stderr", [subprocess.PIPE, subprocess.STDOUT])
def test_training_into_a_closed_pipe_finishes_the_run(small_config, stderr):
    """`train ... | head -1` (and `2>&1 | head -1`, the progress bar too): the reader leaves after the
    first line, the run goes on to its last step."""
    argv = ["train", "--env-name", "Pendulum-v1", "--hidden-units", "8", "--num-steps", "400", "--start-step", "100"]
    argv += ["--eval-every", "100", "--eval-episodes", "1", "--directory", small_config.directory, "--run-name", "run"]
    process = subprocess.Popen(
        [sys.executable, "-m", "soft_actor_critic", *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr
    )
    assert process.stdout.readline().startswith(b"run folder:")
    process.stdout.close()  # what `head -1` does; the evals print after this
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    checkpoint = read_checkpoint(Path(small_config.directory) / "run")
    assert checkpoint["step"] == 400
