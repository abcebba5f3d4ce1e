"""Periodic evaluation during training: eval.csv, TensorBoard, best.pt and `eval --checkpoint`."""

import csv
import dataclasses

import pytest
import torch
from conftest import read_checkpoint
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from soft_actor_critic.__main__ import main
from soft_actor_critic.checkpoints import Seeds
from soft_actor_critic.config import TrainConfig
from soft_actor_critic.environment import make_env
from soft_actor_critic.evaluate import deterministic_returns
from soft_actor_critic.networks import SquashedGaussianPolicy
from soft_actor_critic.training import train


def eval_rows(run_dir) -> list[dict]:
    with open(run_dir / "eval.csv", newline="") as file:
        return list(csv.DictReader(file))


def scalars(run_dir, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


def test_evals_every_n_steps_and_at_the_end_keep_the_best_policy(small_config):
    run_dir = train(dataclasses.replace(small_config, num_steps=650, eval_every=200, run_name="run"))
    rows = eval_rows(run_dir)
    assert list(rows[0]) == ["step", "return_mean", "return_std", "episodes"]
    assert [int(row["step"]) for row in rows] == [200, 400, 600, 650]
    assert all(row["episodes"] == "2" for row in rows)
    means = [float(row["return_mean"]) for row in rows]
    logged = scalars(run_dir, "eval/return")
    assert [step for step, _ in logged] == [200, 400, 600, 650]
    assert [value for _, value in logged] == pytest.approx(means)
    assert [step for step, _ in scalars(run_dir, "eval/return_std")] == [200, 400, 600, 650]

    best = read_checkpoint(run_dir, "best.pt")
    assert best["eval_return"] == pytest.approx(max(means))
    assert best["step"] == int(rows[means.index(max(means))]["step"])
    policy = SquashedGaussianPolicy(3, 1, small_config.hidden_units, [-2.0], [2.0])
    policy.load_state_dict(best["policy"])  # the best eval's policy, not the latest one
    eval_seed = Seeds.of(small_config.seed).eval_env
    returns = deterministic_returns(
        make_env(TrainConfig(env_name="Pendulum-v1")), policy, small_config.eval_episodes, eval_seed
    )
    assert sum(returns) / len(returns) == pytest.approx(best["eval_return"])


def test_eval_every_zero_evaluates_nothing(small_config):
    run_dir = train(dataclasses.replace(small_config, num_steps=250, eval_every=0, run_name="run"))
    assert not (run_dir / "eval.csv").exists() and not (run_dir / "best.pt").exists()


def test_evaluating_does_not_change_what_is_learned(small_config):
    plain = train(dataclasses.replace(small_config, num_steps=450, eval_every=0, run_name="plain"))
    evaluated = train(dataclasses.replace(small_config, num_steps=450, eval_every=150, run_name="evaluated"))
    first, second = (read_checkpoint(run) for run in (plain, evaluated))
    for name in ("policy", "critic"):
        for key, tensor in first[name].items():
            assert torch.equal(tensor, second[name][key]), f"{name}.{key}"


def test_every_eval_plays_the_same_episodes():
    env = make_env(TrainConfig(env_name="Pendulum-v1"))
    policy = SquashedGaussianPolicy(3, 1, (16,), env.action_space.low, env.action_space.high)
    first = deterministic_returns(env, policy, 3, seed=7)
    assert deterministic_returns(env, policy, 3, seed=7) == first
    assert len(set(first)) == 3  # three different episodes, not one replayed
    assert deterministic_returns(env, policy, 3, seed=8) != first


def kill_after_an_eval_at_500(run_dir) -> None:
    """Make the run folder look like that of a run killed at step 500, after its checkpoint at 400:
    an eval row at 500, and a best.pt (a perfect one) from that eval."""
    with open(run_dir / "eval.csv", "a") as file:
        file.write("500,0.0,0.0,2\n")
    best = read_checkpoint(run_dir, "best.pt")
    torch.save(best | {"step": 500, "eval_return": 0.0}, run_dir / "best.pt")


def test_resume_drops_the_rows_past_the_checkpoint_but_keeps_a_better_best(small_config):
    config = dataclasses.replace(small_config, num_steps=400, eval_every=200, run_name="run")
    run_dir = train(config)
    kill_after_an_eval_at_500(run_dir)
    argv = ["train", "--resume", "--run-name", "run", "--directory", config.directory, "--num-steps", "600"]
    assert main(argv) == 0
    rows = eval_rows(run_dir)
    assert [int(row["step"]) for row in rows] == [200, 400, 600]
    assert all(float(row["return_mean"]) < 0.0 for row in rows)  # Pendulum's returns: none beats 0
    best = read_checkpoint(run_dir, "best.pt")
    assert best["step"] == 500 and best["eval_return"] == 0.0  # not replaced by a worse policy


def test_resume_replaces_a_best_past_the_checkpoint_once_an_eval_beats_it(small_config):
    config = dataclasses.replace(small_config, num_steps=400, eval_every=200, run_name="run")
    run_dir = train(config)
    kill_after_an_eval_at_500(run_dir)
    best = read_checkpoint(run_dir, "best.pt")
    torch.save(best | {"eval_return": -1e9}, run_dir / "best.pt")  # an eval of that policy that anything beats
    argv = ["train", "--resume", "--run-name", "run", "--directory", config.directory, "--num-steps", "600"]
    assert main(argv) == 0
    rows = eval_rows(run_dir)
    best = read_checkpoint(run_dir, "best.pt")
    assert best["step"] == 600 and best["eval_return"] == pytest.approx(float(rows[-1]["return_mean"]))


@pytest.mark.parametrize("damage", [b"not a checkpoint", None])
def test_resume_replaces_a_best_pt_it_cannot_read_with_its_next_eval(small_config, damage):
    """A damaged best.pt, or one without its eval_return, is replaced by the next eval, whatever that scores."""
    config = dataclasses.replace(small_config, num_steps=400, eval_every=200, run_name="run")
    run_dir = train(config)
    if damage is None:
        torch.save({"policy": read_checkpoint(run_dir, "best.pt")["policy"], "step": 400}, run_dir / "best.pt")
    else:
        (run_dir / "best.pt").write_bytes(damage)
    argv = ["train", "--resume", "--run-name", "run", "--directory", config.directory, "--num-steps", "600"]
    assert main([*argv, "--eval-every", "600"]) == 0
    best = read_checkpoint(run_dir, "best.pt")
    assert best["step"] == 600 and best["eval_return"] == pytest.approx(float(eval_rows(run_dir)[-1]["return_mean"]))


def test_resume_without_evals_still_drops_the_rows_past_the_checkpoint(small_config):
    config = dataclasses.replace(small_config, num_steps=400, eval_every=200, run_name="run")
    run_dir = train(config)
    kill_after_an_eval_at_500(run_dir)
    argv = ["train", "--resume", "--run-name", "run", "--directory", config.directory, "--num-steps", "450"]
    assert main([*argv, "--eval-every", "0"]) == 0
    assert [int(row["step"]) for row in eval_rows(run_dir)] == [200, 400]


def test_eval_loads_the_best_or_the_last_checkpoint(small_config, capsys):
    run_dir = train(dataclasses.replace(small_config, num_steps=400, eval_every=200, run_name="run"))
    best = read_checkpoint(run_dir, "best.pt")
    best["policy"] = {key: torch.zeros_like(tensor) for key, tensor in best["policy"].items()}
    torch.save(best, run_dir / "best.pt")  # a policy whose every action is 0: easy to tell apart
    base = ["eval", "--run-name", "run", "--directory", small_config.directory, "--deterministic", "--seed", "3"]
    outputs = {}
    for name in ("best", "last"):
        assert main([*base, "--checkpoint", name]) == 0
        outputs[name] = capsys.readouterr().out
    env = make_env(TrainConfig(env_name="Pendulum-v1"))
    zero_policy = SquashedGaussianPolicy(3, 1, (32, 32), env.action_space.low, env.action_space.high)
    zero_policy.load_state_dict(best["policy"])
    expected = deterministic_returns(env, zero_policy, 1, seed=3)[0]
    assert f"episode 1: return {expected:.1f}," in outputs["best"]
    assert outputs["best"] != outputs["last"]
    assert f"the policy of step {best['step']} from" in outputs["best"] and "best.pt" in outputs["best"]
    assert "the policy of step 400 from" in outputs["last"] and "checkpoint.pt" in outputs["last"]


def test_eval_of_the_best_checkpoint_of_a_run_without_evals(small_config, capsys):
    train(dataclasses.replace(small_config, num_steps=150, eval_every=0, run_name="run"))
    capsys.readouterr()
    assert main(["eval", "--run-name", "run", "--directory", small_config.directory, "--checkpoint", "best"]) == 1
    error = capsys.readouterr().err
    assert "best.pt is missing" in error and "--eval-every" in error and error.count("\n") == 1
