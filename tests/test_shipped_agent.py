"""The trained LunarLander agent in runs/lunar-lander still loads and still lands."""

from pathlib import Path

import numpy as np

from soft_actor_critic.config import EvalConfig
from soft_actor_critic.evaluate import evaluate

RUNS = Path(__file__).resolve().parents[1] / "runs"


def test_the_shipped_agent_solves_lunar_lander():
    config = EvalConfig(run_name="lunar-lander", directory=str(RUNS), num_episodes=10, seed=1, deterministic=True)
    returns = evaluate(config)
    assert np.mean(returns) >= 200  # the env's "solved" mark
