"""packed.py: N seeds' agents stacked and updated as one, each seed as its own."""

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import buffer_rows, logged_steps, read_checkpoint
from gymnasium.wrappers import TimeLimit
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_agent import ACTION_DIM, OBSERVATION_DIM, make_batch
from test_train import CounterEnv

from soft_actor_critic import training as train_module
from soft_actor_critic.__main__ import main
from soft_actor_critic.agent import Agent
from soft_actor_critic.config import ALGORITHMS, RunError, TrainConfig
from soft_actor_critic.networks import BatchRenorm
from soft_actor_critic.packed import PackedAgent
from soft_actor_critic.replay_buffer import Batch, stack
from soft_actor_critic.runs import read_eval_rows
from soft_actor_critic.training import train, train_runs

SEEDS = 3
CONFIGS = {  # CrossQ's batch renormalization past its warm-up after the first update: both of its branches
    "sac": TrainConfig(hidden_units=(16, 16), alpha=0.3),
    "crossq": TrainConfig(algorithm="crossq", hidden_units=(16, 16), critic_hidden_units=(32, 32), renorm_warmup=1),
}
LOW, HIGH = -np.ones(ACTION_DIM), np.ones(ACTION_DIM)
algorithms = pytest.mark.parametrize("algorithm", CONFIGS)


def single_agents(algorithm: str = "sac") -> list[Agent]:
    agents = []
    for seed in range(SEEDS):
        torch.manual_seed(seed)  # each seed's initial weights from its own stream, as its single run's
        agents.append(ALGORITHMS[algorithm].agent_class()(OBSERVATION_DIM, ACTION_DIM, LOW, HIGH, CONFIGS[algorithm]))
    return agents


def packed_agent(agents: list[Agent], algorithm: str = "sac") -> PackedAgent:
    packed_agent = ALGORITHMS[algorithm].agent_class(packed=True)
    packed = packed_agent(OBSERVATION_DIM, ACTION_DIM, LOW, HIGH, CONFIGS[algorithm], seeds=SEEDS)
    packed.pack(agents)
    return packed


def states_equal(one: dict, other: dict) -> bool:
    if isinstance(one, torch.Tensor):
        return torch.equal(one, other)
    if isinstance(one, dict):
        return one.keys() == other.keys() and all(states_equal(one[key], other[key]) for key in one)
    return one == other


@algorithms
def test_unpacking_gives_each_seed_back_its_own_agent(algorithm):
    agents = single_agents(algorithm)
    for agent in agents:  # Adam's moments and batch renormalization's statistics exist
        agent.update(make_batch(seed=5))
    packed = packed_agent(agents, algorithm)
    copies = single_agents(algorithm)
    packed.unpack(copies)
    for agent, copy in zip(agents, copies):
        assert states_equal(agent.state_dict(), copy.state_dict())


@algorithms
def test_a_packed_update_is_each_seeds_own_update(monkeypatch, algorithm):
    """Given the same batch and the same policy noise, seed k's slice moves as its single agent does.
    In float64: a gradient that is zero but for rounding (a bias before batch renormalization's mean)
    gets a whole step of Adam, whose sign rounding in float32 decides differently in the two orders."""
    torch.set_default_dtype(torch.float64)
    try:
        agents = single_agents(algorithm)
        packed = packed_agent(agents, algorithm)
        unpacked = single_agents(algorithm)
    finally:
        torch.set_default_dtype(torch.float32)
    batches = [Batch(*(tensor.double() for tensor in make_batch(seed=seed))) for seed in range(SEEDS)]
    noise = [torch.randn(SEEDS, 8, ACTION_DIM, dtype=torch.float64) for _ in range(4)]  # 2 per update, 2 updates
    calls = []

    def drawn(like: torch.Tensor) -> torch.Tensor:
        step = noise[len(calls) % len(noise)]
        calls.append(1)
        return step if like.dim() == 3 else step[current_seed]

    monkeypatch.setattr(torch, "randn_like", drawn)
    for current_seed, agent in enumerate(agents):
        calls.clear()
        single = [agent.update(batches[current_seed]) for _ in range(2)]
    calls.clear()
    current_seed = None
    packed_metrics = [packed.update(stack(batches)) for _ in range(2)]
    packed.unpack(unpacked)
    for agent, own in zip(agents, unpacked):
        for mine, theirs in zip(agent.tensors(), own.tensors(), strict=True):
            torch.testing.assert_close(theirs, mine, rtol=1e-9, atol=1e-12)
    assert packed_metrics[-1]["loss/critic"].shape == (SEEDS,)  # one metric per seed
    torch.testing.assert_close(packed_metrics[-1]["loss/critic"][-1], single[-1]["loss/critic"])


@pytest.mark.parametrize(
    "algorithm, leak",
    [("sac", None), ("sac", "targets"), ("crossq", None), ("crossq", "targets"), ("crossq", "renorm")],
)
def test_no_gradient_or_statistic_crosses_from_one_seed_to_another(monkeypatch, algorithm, leak):
    """Seed 0's batch changes; seed 1's state after the update must not. The check must catch a planted
    leak: targets that mix the seeds (each seed's plus the mean over seeds), or a batch renormalization
    whose output mixes in the other members' inputs."""
    if leak == "targets":
        from soft_actor_critic import losses

        soft_q_target = losses.soft_q_target
        monkeypatch.setattr(losses, "soft_q_target", lambda *args: soft_q_target(*args) + soft_q_target(*args).mean(0))
    if leak == "renorm":
        forward = BatchRenorm.forward
        monkeypatch.setattr(BatchRenorm, "forward", lambda self, x: forward(self, x) + x.mean(0, keepdim=True))
    results = []
    for seed_0_batch in (0, 100):
        torch.manual_seed(0)
        packed = packed_agent(single_agents(algorithm), algorithm)
        batches = [make_batch(seed=seed) for seed in range(SEEDS)]
        batches[0] = make_batch(seed=seed_0_batch)  # its states, actions and rewards all differ
        torch.manual_seed(1)
        packed.update(stack(batches))
        unpacked = single_agents(algorithm)
        packed.unpack(unpacked)
        results.append(unpacked[1].state_dict())
    assert states_equal(*results) == (leak is None)


@algorithms
def test_packed_actions_are_each_seeds_own(algorithm):
    agents = single_agents(algorithm)
    for agent in agents:  # CrossQ's policy acts on running statistics that its update has moved
        agent.update(make_batch(seed=5))
    packed = packed_agent(agents, algorithm)
    observations = np.random.default_rng(0).standard_normal((SEEDS, OBSERVATION_DIM)).astype(np.float32)
    actions = packed.act(observations, deterministic=True)
    assert actions.shape == (SEEDS, ACTION_DIM)
    for agent, observation, action in zip(agents, observations, actions):
        np.testing.assert_allclose(action, agent.act(observation, deterministic=True), rtol=1e-5, atol=1e-6)


def packed_configs(small_config, seeds=(1, 2), **changes) -> list[TrainConfig]:
    base = dataclasses.replace(small_config, **({"num_steps": 400, "eval_every": 200, "eval_episodes": 1} | changes))
    return [dataclasses.replace(base, seed=seed, run_name=f"seed={seed}") for seed in seeds]


def test_packed_seeds_write_ordinary_run_folders_that_eval_and_resume_alone(small_config, capsys):
    run_dirs = train_runs(packed_configs(small_config), [False, False])
    assert [run_dir.name for run_dir in run_dirs] == ["seed=1", "seed=2"]
    for seed, run_dir in zip((1, 2), run_dirs):
        assert read_checkpoint(run_dir)["step"] == 400 and buffer_rows(run_dir) == 400
        assert [row["step"] for row in read_eval_rows(run_dir)] == [200, 400] and (run_dir / "best.pt").is_file()
        assert f'"seed": {seed}' in (run_dir / "config.json").read_text()
        assert logged_steps(run_dir, "time/sps") == [250]
        assert logged_steps(run_dir, "loss/critic") == [250] == logged_steps(run_dir, "train/alpha")
    first, second = (read_checkpoint(run_dir)["policy"]["net.0.weight"] for run_dir in run_dirs)
    assert not torch.equal(first, second)  # each seed its own weights
    alphas = [EventAccumulator(str(run_dir)).Reload().Scalars("train/alpha")[0].value for run_dir in run_dirs]
    assert alphas[0] != alphas[1]  # each seed's own metrics, not the group's
    assert main(["eval", "--run-name", str(run_dirs[1]), "--num-episodes", "1"]) == 0
    argv = ["train", "--resume", "--run-name", "seed=2", "--directory", small_config.directory, "--num-steps", "500"]
    assert main(argv) == 0 and read_checkpoint(run_dirs[1])["step"] == 500


def test_packed_crossq_seeds_keep_their_own_statistics_and_eval_and_resume_alone(small_config):
    fields = ("env_name", "hidden_units", "directory", "batch_size", "memory_size", "eval_episodes")
    crossq = TrainConfig(
        algorithm="crossq", critic_hidden_units=(64, 64), **{f: getattr(small_config, f) for f in fields}
    )
    run_dirs = train_runs(packed_configs(crossq), [False, False])
    checkpoints = [read_checkpoint(run_dir) for run_dir in run_dirs]
    assert all(checkpoint["step"] == 400 and "target_critic" not in checkpoint for checkpoint in checkpoints)
    # 300 updates, a policy step every third: one training pass of the critic per update, of the policy per step
    for network, key, shape, passes in (
        ("policy", "net.0.running_mean", (1, 3), 100),
        ("critic", "net.3.running_var", (2, 1, 64), 300),
    ):
        first, second = (checkpoint[network][key] for checkpoint in checkpoints)
        assert first.shape == shape and not torch.equal(first, second)  # each seed's statistics its own
        assert checkpoints[0][network]["net.0.passes"] == passes == checkpoints[1][network]["net.0.passes"]
    assert main(["eval", "--run-name", str(run_dirs[0]), "--num-episodes", "1"]) == 0
    argv = ["train", "--resume", "--run-name", "seed=1", "--directory", crossq.directory, "--num-steps", "500"]
    assert main(argv) == 0 and read_checkpoint(run_dirs[0])["step"] == 500


def test_a_packed_group_continues_from_its_checkpoints(small_config):
    configs = packed_configs(small_config)
    train_runs(configs, [False, False])
    run_dirs = train_runs([dataclasses.replace(config, num_steps=600) for config in configs], [True, True])
    for run_dir in run_dirs:
        assert read_checkpoint(run_dir)["step"] == 600 and buffer_rows(run_dir) == 600
        assert logged_steps(run_dir, "time/sps") == [250, 500]  # continuous steps


def test_the_same_packed_group_twice_trains_identically(small_config, tmp_path):
    runs = []
    for name in ("a", "b"):
        configs = packed_configs(small_config, directory=str(tmp_path / name))
        runs.append([read_checkpoint(run_dir) for run_dir in train_runs(configs, [False, False])])
    for one, other in zip(*runs):
        for part in ("policy", "critic", "target_critic"):
            for key, tensor in one[part].items():
                assert torch.equal(other[part][key], tensor), f"{part}.{key}"


@pytest.mark.parametrize("terminate_at, limit, terminateds", [(3, 100, [0, 0, 1, 0, 0, 1, 0]), (None, 3, [0] * 7)])
def test_no_stored_transition_crosses_an_episode_end_and_a_time_limit_bootstraps(
    small_config, terminate_at, limit, terminateds
):
    """The vector env resets a finished episode in the same step: the stored next observation must be
    the episode's true last one, and only a termination, never a time limit, may cut the bootstrap."""
    env_id = f"Counter{terminate_at}x{limit}-v0"
    gym.register(env_id, entry_point=lambda **_: TimeLimit(CounterEnv(terminate_at), max_episode_steps=limit))
    try:
        configs = packed_configs(small_config, env_name=env_id, num_steps=7, start_step=7, eval_every=0)
        for run_dir in train_runs(configs, [False, False]):
            with np.load(run_dir / read_checkpoint(run_dir)["buffer_file"]) as buffer:
                np.testing.assert_array_equal(buffer["observations"][:, 0], [0, 1, 2, 0, 1, 2, 0])
                np.testing.assert_array_equal(buffer["next_observations"][:, 0], [1, 2, 3, 1, 2, 3, 1])
                np.testing.assert_array_equal(buffer["terminateds"], terminateds)
    finally:
        gym.registry.pop(env_id)


def test_packed_runs_must_be_seeds_of_one_setting(small_config):
    one, other = packed_configs(small_config)
    with pytest.raises(ValueError, match="seeds of one setting"):
        train_runs([one, dataclasses.replace(other, learning_rate=1e-3)], [False, False])
    assert not Path(small_config.directory).exists()


def test_each_seeds_envs_and_warm_up_actions_are_its_single_runs(small_config, tmp_path):
    """Seed k's env resets and warm-up actions come from seed k's own streams: over a warm-up that spans
    an episode's end, a packed seed stores exactly the transitions of its single run."""
    configs = packed_configs(small_config, seeds=(1, 2, 3), num_steps=250, start_step=250, eval_every=0)
    packed_dirs = train_runs(configs, [False] * 3)
    for config, packed_dir in zip(configs, packed_dirs):
        single_dir = train(dataclasses.replace(config, directory=str(tmp_path / "single")))
        files = [run_dir / read_checkpoint(run_dir)["buffer_file"] for run_dir in (packed_dir, single_dir)]
        with np.load(files[0]) as packed, np.load(files[1]) as single:
            for key in ("observations", "actions", "rewards", "next_observations", "terminateds"):
                np.testing.assert_array_equal(packed[key], single[key], err_msg=key)


def test_a_resumed_packed_group_draws_its_noise_on_from_the_checkpoint(small_config, monkeypatch):
    """The policy's noise goes on from the checkpoint's random state: setting the group up, the packed
    agent included, must draw none of it (on the CPU, where the noise comes from torch's CPU generator)."""
    configs = packed_configs(small_config)
    run_dirs = train_runs(configs, [False, False])
    saved = read_checkpoint(run_dirs[0])["rng"]["torch"]
    at_start = []
    loop = train_module.training_loop
    monkeypatch.setattr(
        train_module, "training_loop", lambda *args: (at_start.append(torch.get_rng_state()), loop(*args))
    )
    train_runs([dataclasses.replace(config, num_steps=600) for config in configs], [True, True])
    assert torch.equal(at_start[0], saved)


def test_a_nan_in_one_seed_stops_its_group_naming_the_run_before_any_checkpoint(small_config, monkeypatch):
    # checkpoints every 50 steps: the one at 450 falls due before the loss curves' next point at 500
    configs = packed_configs(small_config, num_steps=1000, checkpoint_every=50, eval_every=0)
    update = PackedAgent.update

    def update_that_diverges(agent, batch, policy_step):
        metrics = update(agent, batch, policy_step)
        if agent.updates_done >= 300:  # from step 400 on, seed 2's critic alone
            with torch.no_grad():
                agent.critic.net[0].weight[1].fill_(float("nan"))  # member 1: seed 2's Q1
        agent.updates_done += 1
        return metrics

    monkeypatch.setattr(PackedAgent, "updates_done", 0, raising=False)
    monkeypatch.setattr(PackedAgent, "update", update_that_diverges)
    with pytest.raises(RunError, match="seed=2: "):
        train_runs(configs, [False, False])
    steps = [read_checkpoint(Path(config.directory) / config.run_name)["step"] for config in configs]
    assert steps == [400, 400]  # the last good one for both: seed 1 did not checkpoint past seed 2


def test_a_packed_groups_bar_shows_the_mean_of_its_seeds_recent_returns(small_config, capsys):
    """Not the recent return of whichever seed ended an episode last: the mean over the seeds of each one's."""
    run_dirs = train_runs(packed_configs(small_config, num_steps=600, eval_every=0), [False, False])
    bar = capsys.readouterr().err.split("\r")[-1]
    shown = float(bar.split("recent return ")[1].split(" (mean of 2 seeds)")[0])
    returns = [EventAccumulator(str(run_dir)).Reload().Scalars("episode/return") for run_dir in run_dirs]
    own = [np.mean([event.value for event in events]) for events in returns]  # 3 episodes each: all recent
    assert len(returns[0]) == 3 and own[0] != pytest.approx(own[1], abs=0.1)
    assert shown == pytest.approx(np.mean(own), abs=0.051)
