"""A user's own env (issue 42): module:EnvId imported wherever a run is made, --env-kwargs and
--max-episode-steps recorded and reused, and the example env of examples/point_reach.py learned to a
threshold, evaluated by run name and resumed."""

import json
import os
import subprocess
import sys
import textwrap

import gymnasium as gym
import pytest
from conftest import ROOT, checkpoint_step, logged_steps

from soft_actor_critic.__main__ import main

POINT_REACH = "examples.point_reach:PointReach-v0"
# A module of the user's own, importable only from the working folder of the test: an env of one coordinate.
TINY_MODULE = textwrap.dedent(
    """
    import gymnasium as gym
    import numpy as np

    class Line(gym.Env):
        def __init__(self, goal=0.0, render_mode=None):
            self.goal = goal
            self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
            self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros(1, np.float32), {}

        def step(self, action):
            return np.zeros(1, np.float32), -abs(float(action[0]) - self.goal), False, False, {}

    gym.register("Line-v0", entry_point=Line, max_episode_steps=20)
    """
)
TINY = [
    "--batch-size",
    "16",
    "--memory-size",
    "500",
    "--start-step",
    "50",
]  # and 8-8 networks, as each command writes them
TINY += ["--eval-every", "100", "--eval-episodes", "1", "--device", "cpu"]


@pytest.fixture
def constructed(monkeypatch):
    """The keyword arguments of every PointReach built in this process."""
    import examples.point_reach as point_reach

    made = []
    original = point_reach.PointReach.__init__

    def spy(self, **kwargs):
        made.append({key: value for key, value in kwargs.items() if key != "render_mode"})
        original(self, **kwargs)

    monkeypatch.setattr(point_reach.PointReach, "__init__", spy)
    return made


@pytest.mark.slow
def test_the_example_env_learns_and_its_kwargs_survive_eval_and_resume(tmp_path, monkeypatch, constructed, capsys):
    monkeypatch.chdir(ROOT)  # where examples/ is importable from, as the README runs it
    run = ["--directory", str(tmp_path), "--run-name", "reach"]
    flags = ["--env-name", POINT_REACH, "--env-kwargs", "target=[0.5, -0.25]", "noise=0.01", *run]
    assert main(["train", *flags, "--num-steps", "3000", "--eval-every", "1000"]) == 0
    kwargs = {"target": [0.5, -0.25], "noise": 0.01}
    assert constructed == [kwargs, kwargs]  # the training env and the eval env
    config = json.loads((tmp_path / "reach" / "config.json").read_text())
    assert config["env_name"] == POINT_REACH and config["env_kwargs"] == ["target=[0.5, -0.25]", "noise=0.01"]
    finals = [json.loads(line.split(",")[1]) for line in (tmp_path / "reach" / "eval.csv").read_text().split()[1:]]
    assert finals[-1] > -15  # random actions score about -60, standing still about -40, heading there about -5
    capsys.readouterr()

    assert main(["eval", *run, "--deterministic"]) == 0  # by its name alone: the module, kwargs and all
    assert constructed[-1] == kwargs and "mean return" in capsys.readouterr().out
    assert main(["train", "--resume", *run, "--num-steps", "3200"]) == 0
    assert constructed[-2:] == [kwargs, kwargs] and checkpoint_step(tmp_path / "reach") == 3200


def test_a_sweep_imports_a_module_from_the_working_folder_in_its_workers(tmp_path, monkeypatch):
    (tmp_path / "my_line_envs.py").write_text(TINY_MODULE)
    monkeypatch.chdir(tmp_path)  # the only place the module is found
    sweep = [
        "sweep",
        "--sweep-name",
        "line",
        "--directory",
        str(tmp_path / "runs"),
        "--env-name",
        "my_line_envs:Line-v0",
    ]
    sweep += [
        *TINY,
        "--hidden-units",
        "8,8",
        "--num-steps",
        "100",
        "--seed",
        "1",
        "2",
        "--workers",
        "2",
        "--env-kwargs",
        "goal=0.5",
    ]
    assert main(sweep) == 0
    for seed in (1, 2):
        run_dir = tmp_path / "runs" / "line" / f"seed={seed}"
        assert checkpoint_step(run_dir) == 100
        assert json.loads((run_dir / "config.json").read_text())["env_kwargs"] == ["goal=0.5"]


def test_max_episode_steps_is_the_time_limit_of_training_and_is_recorded(tmp_path):
    flags = [
        "--env-name",
        "Pendulum-v1",
        "--max-episode-steps",
        "50",
        "--num-steps",
        "100",
        *TINY,
        "--hidden-units",
        "8",
        "8",
    ]
    assert main(["train", *flags, "--directory", str(tmp_path), "--run-name", "short"]) == 0
    assert json.loads((tmp_path / "short" / "config.json").read_text())["max_episode_steps"] == 50
    assert logged_steps(tmp_path / "short", "episode/length") == [50, 100]  # Pendulum's own limit is 200


@pytest.mark.parametrize(
    "flags, words, code",
    [
        (["--env-name", "nowhere_envs:Line-v0"], "cannot import nowhere_envs (of --env-name nowhere_envs:Line-v0)", 1),
        (["--env-name", "examples.point_reach:PointReac-v0"], "did you mean PointReach-v0?", 1),
        (["--env-name", POINT_REACH, "--env-kwargs", "speed=2"], "unexpected keyword argument 'speed'", 1),
        (["--env-name", POINT_REACH, "--env-kwargs", "target"], "--env-kwargs target: write KEY=VALUE", 2),
        (["--env-name", POINT_REACH, "--env-kwargs", "noise=1", "noise=2"], "gives noise more than once", 2),
        (["--env-name", "Pendulum-v1", "--max-episode-steps", "0"], "--max-episode-steps must be positive", 2),
    ],
)
def test_a_bad_module_id_or_keyword_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, flags, words, code):
    monkeypatch.chdir(ROOT)
    for command in (["train"], ["sweep", "--sweep-name", "s", "--seed", "1", "2"]):
        try:
            exit_code = main([*command, *flags, "--directory", str(tmp_path / "runs")])
        except SystemExit as exit:
            exit_code = exit.code
        error = capsys.readouterr().err
        assert exit_code == code and words in error and error.count("\n") == 1, error
    assert not (tmp_path / "runs").exists()


def test_without_shimmy_a_deepmind_control_id_names_the_install_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "shimmy", None)  # import shimmy raises ImportError
    monkeypatch.setattr(gym, "registry", {key: spec for key, spec in gym.registry.items() if "dm_control" not in key})
    assert main(["train", "--env-name", "dm_control/cheetah-run-v0", "--directory", str(tmp_path / "runs")]) == 1
    assert "need Shimmy: pip install -r requirements-dmc.txt" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_deepmind_control_task_trains_resumes_evaluates_and_records(tmp_path):
    pytest.importorskip("shimmy")  # requirements-dmc.txt
    run = ["--directory", str(tmp_path), "--run-name", "cartpole"]
    flags = [
        "--env-name",
        "dm_control/cartpole-balance-v0",
        "--max-episode-steps",
        "50",
        *TINY,
        "--hidden-units",
        "8",
        "8",
    ]
    assert main(["train", *flags, *run, "--num-steps", "200", "--checkpoint-every", "100"]) == 0
    assert main(["train", "--resume", *run, "--num-steps", "300"]) == 0  # its RandomState carried by the checkpoint
    assert checkpoint_step(tmp_path / "cartpole") == 300
    config = json.loads((tmp_path / "cartpole" / "config.json").read_text())
    assert config["env_name"] == "dm_control/cartpole-balance-v0" and config["max_episode_steps"] == 50
    # Off-screen rendering needs an OpenGL context before dm_control loads: MUJOCO_GL=egl in a process of its own.
    evaluate = [
        sys.executable,
        "-m",
        "soft_actor_critic",
        "eval",
        *run,
        "--deterministic",
        "--record",
        "--num-episodes",
        "1",
    ]
    result = subprocess.run(evaluate, cwd=ROOT, env=os.environ | {"MUJOCO_GL": "egl"}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "length 50" in result.stdout and len(list((tmp_path / "cartpole" / "videos").glob("*/episode-1.gif"))) == 1


def test_a_sweep_and_a_study_over_a_deepmind_control_task(tmp_path):
    pytest.importorskip("shimmy")  # requirements-dmc.txt
    pytest.importorskip("optuna")  # requirements-tune.txt
    flags = ["--env-name", "dm_control/cartpole-balance-v0", "--max-episode-steps", "50", *TINY, "--num-steps", "150"]
    flags += ["--directory", str(tmp_path), "--workers", "2"]
    assert main(["sweep", "--sweep-name", "s", *flags, "--hidden-units", "8,8", "--seed", "1", "2"]) == 0
    assert [checkpoint_step(tmp_path / "s" / f"seed={seed}") for seed in (1, 2)] == [150, 150]
    assert main(["tune", "--study-name", "t", *flags, "--hidden-units", "8", "8", "--trials", "2", "--seeds", "1"]) == 0
    assert [checkpoint_step(tmp_path / "t" / f"trial={trial}_seed=1") for trial in (0, 1)] == [150, 150]
