"""The trained LunarLander agent in runs/lunar-lander still loads and still lands."""

import shutil
from pathlib import Path

import numpy as np

from soft_actor_critic.__main__ import main
from soft_actor_critic.config import EvalConfig
from soft_actor_critic.evaluate import evaluate

RUNS = Path(__file__).resolve().parents[1] / "runs"


def test_the_shipped_agent_solves_lunar_lander():
    config = EvalConfig(run_name="lunar-lander", directory=str(RUNS), num_episodes=10, seed=1, deterministic=True)
    returns = evaluate(config)
    assert np.mean(returns) >= 200  # the env's "solved" mark


def test_the_shipped_agent_cannot_be_resumed_and_says_why(tmp_path, capsys):
    shutil.copytree(RUNS / "lunar-lander", tmp_path / "lunar-lander")
    argv = ["train", "--resume", "--run-name", "lunar-lander", "--directory", str(tmp_path), "--num-steps", "200000"]
    assert main([*argv, "--device", "cpu"]) == 1
    error = capsys.readouterr().err
    assert "holds only a policy's weights" in error and "cannot be resumed" in error and error.count("\n") == 1
