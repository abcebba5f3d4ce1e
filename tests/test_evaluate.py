"""evaluate.py on its own: loading a run's policy and rolling it out."""

import dataclasses
from pathlib import Path

import pytest

from soft_actor_critic import evaluate as evaluate_module
from soft_actor_critic.config import EvalConfig, RunError
from soft_actor_critic.evaluate import evaluate
from soft_actor_critic.runs import write_train_config


def test_eval_closes_its_env_when_the_policy_cannot_be_loaded(small_config, monkeypatch):
    run_dir = Path(small_config.directory) / "run"
    run_dir.mkdir(parents=True)
    write_train_config(run_dir, dataclasses.replace(small_config, run_name="run"))
    (run_dir / "checkpoint.pt").write_bytes(b"damaged")
    closed = []

    def make_env(*args, **kwargs):
        env = make_env_of_gymnasium(*args, **kwargs)
        close = env.close
        env.close = lambda: (closed.append(env), close())
        return env

    make_env_of_gymnasium = evaluate_module.make_env
    monkeypatch.setattr(evaluate_module, "make_env", make_env)
    with pytest.raises(RunError, match="cannot load"):
        evaluate(EvalConfig(run_name="run", directory=small_config.directory))
    assert len(closed) == 1
