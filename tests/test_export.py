"""Taking a policy out: the Python API (`soft_actor_critic.train`, `load_policy(...).predict`), `export` to
ONNX, and docs/export.md's rollout, which runs with ONNX Runtime where torch cannot even be imported."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import ROOT

import soft_actor_critic
from soft_actor_critic.__main__ import main
from soft_actor_critic.config import ConfigError

TINY = {"hidden_units": (32, 32), "batch_size": 32, "memory_size": 1000, "start_step": 100, "device": "cpu"}
TINY |= {"num_steps": 200, "eval_every": 200, "eval_episodes": 1}
POINT_REACH = "examples.point_reach:PointReach-v0"


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # where examples/ imports from


def onnx_actions(path, observations: np.ndarray) -> np.ndarray:
    onnxruntime = pytest.importorskip("onnxruntime")
    return onnxruntime.InferenceSession(str(path)).run(None, {"observation": observations.astype(np.float32)})[0]


def metadata(path) -> dict:
    import onnx

    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}


@pytest.mark.parametrize(
    "settings",
    [
        {"env_name": "Pendulum-v1"},
        {"env_name": "Pendulum-v1", "algorithm": "crossq", "renorm_warmup": 10},  # batch renorm on its statistics
        {"env_name": POINT_REACH, "env_kwargs": ("target=0.5",)},  # a Dict observation, flattened
    ],
    ids=["sac", "crossq", "dict"],
)
def test_onnx_runtime_acts_as_torch_and_as_predict(settings, tmp_path, in_root):
    pytest.importorskip("onnxscript")
    run_dir = soft_actor_critic.train(**TINY, **settings, directory=str(tmp_path), run_name="run")
    assert run_dir == tmp_path / "run"
    assert main(["export", "--run-name", "run", "--directory", str(tmp_path)]) == 0
    path = run_dir / "policy-best.onnx"
    policy = soft_actor_critic.load_policy(run_dir)
    space = policy.observation_space
    space.seed(1)
    samples = [space.sample() for _ in range(100)]
    observations = np.stack([gym.spaces.flatten(space, sample) for sample in samples]).astype(np.float32)
    with torch.inference_mode():
        expected = policy.network.act(torch.as_tensor(observations), deterministic=True).numpy()
    actual = onnx_actions(path, observations)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(policy.predict(samples[0]), expected[0], rtol=0, atol=1e-6)  # one, as the env gives it
    if isinstance(space, gym.spaces.Dict):
        batch = {key: np.stack([sample[key] for sample in samples]) for key in space}
        assert "position [2], target [2]" in metadata(path)["observation"]
        np.testing.assert_allclose(policy.predict(samples), expected, rtol=0, atol=1e-6)  # a list of them
        with pytest.raises(ValueError, match="or batches of them"):
            policy.predict({key: value[:1] for key, value in samples[0].items()})
    else:
        batch = observations
    np.testing.assert_allclose(policy.predict(batch), expected, rtol=0, atol=1e-6)
    env = gym.make(settings["env_name"].partition(":")[2] or settings["env_name"])
    assert json.loads(metadata(path)["action_high"]) == pytest.approx(env.action_space.high.tolist())
    flat = gym.spaces.flatten_space(space)
    assert json.loads(metadata(path)["observation_low"]) == pytest.approx(flat.low.tolist())
    assert json.loads(metadata(path)["step"]) == 200


def test_predict_samples_when_not_deterministic_and_stays_in_the_bounds(tmp_path):
    run_dir = soft_actor_critic.train(**TINY, env_name="Pendulum-v1", directory=str(tmp_path), run_name="run")
    policy = soft_actor_critic.load_policy("run", checkpoint="last", directory=tmp_path)
    observations = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32) * 10
    actions = policy.predict(observations, deterministic=False)
    assert actions.shape == (500, 1) and np.all(np.abs(actions) <= 2)
    assert not np.allclose(actions, policy.predict(observations))
    assert policy.step == 200 and policy.run_dir == run_dir
    with pytest.raises(ValueError, match="the env's are"):
        policy.predict(np.zeros(6))  # two observations run together are not one
    with pytest.raises(ConfigError, match="checkpoint must be one of"):
        soft_actor_critic.load_policy(run_dir, checkpoint="final")


def test_importing_the_package_loads_neither_torch_nor_gymnasium():
    code = "import soft_actor_critic, sys; print('torch' in sys.modules, 'gymnasium' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert output.stdout.split() == ["False", "False"]


def test_export_without_onnx_names_the_install(tmp_path, capsys, monkeypatch):
    soft_actor_critic.train(**TINY, env_name="Pendulum-v1", directory=str(tmp_path), run_name="run")
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", "--run-name", "run", "--directory", str(tmp_path)]) == 1
    assert "pip install -r requirements-export.txt" in capsys.readouterr().err
    assert not (tmp_path / "run" / "policy-best.onnx").exists()


def test_a_missing_run_or_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["export", "--run-name", "none", "--directory", str(tmp_path)]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    soft_actor_critic.train(**TINY | {"eval_every": 0}, env_name="Pendulum-v1", directory=str(tmp_path), run_name="r")
    capsys.readouterr()
    assert main(["export", "--run-name", "r", "--directory", str(tmp_path)]) == 1  # no evals, so no best.pt
    error = capsys.readouterr().err
    assert "best.pt" in error and error.count("\n") == 1


def test_the_rollout_of_docs_export_md_needs_no_torch_and_lands_the_shipped_agent(tmp_path):
    pytest.importorskip("onnxscript")
    output = str(tmp_path / "lunar-lander.onnx")
    argv = ["export", "--run-name", "lunar-lander", "--directory", str(ROOT / "runs"), "--checkpoint", "last"]
    assert main([*argv, "--output", output]) == 0
    page = (ROOT / "docs" / "export.md").read_text()
    script = re.search(r"```python\n(.*?)```", page, re.DOTALL).group(1)
    no_torch = "import sys\nsys.modules['torch'] = sys.modules['soft_actor_critic'] = None  # importing them fails\n"
    run = subprocess.run(
        [sys.executable, "-c", no_torch + script], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    printed = float(re.search(r"mean return (\S+) over 10 episodes", run.stdout).group(1))
    assert printed >= 200  # the env's "solved" mark
    reported = float(re.search(r"It prints `mean return (\S+) over 10 episodes`", page).group(1))
    assert printed == pytest.approx(reported, abs=1)  # the page's figure (another CPU may round a step apart)


def test_the_readmes_python_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    example = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if "load_policy" in block)
    environment = os.environ | {"PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    action = np.array(json.loads(run.stdout.strip().splitlines()[-1]))
    assert action.shape == (1,) and -2 <= action[0] <= 2
    assert (tmp_path / "runs").is_dir()


def test_load_policy_takes_the_folder_train_returns_wherever_it_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()  # a folder of the same name in the default --directory must not be taken
    run_dir = soft_actor_critic.train(**TINY, env_name="Pendulum-v1", directory=".", run_name="here")
    assert run_dir == Path("here") and soft_actor_critic.load_policy(run_dir).run_dir == run_dir
