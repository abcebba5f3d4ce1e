"""The GPU path: CUDA-graph updates and actions equal the eager ones, and runs move between devices.

Every test here needs a CUDA GPU and is skipped without one (as on CI). The rest of the suite runs
on the GPU too wherever a GPU is visible, since `--device auto` then picks it.
"""

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, read_checkpoint

from soft_actor_critic.__main__ import main
from soft_actor_critic.agent import Agent, CrossQAgent
from soft_actor_critic.config import TrainConfig
from soft_actor_critic.cuda_graphs import GraphedAct, GraphedUpdate
from soft_actor_critic.packed import PackedAgent
from soft_actor_critic.replay_buffer import ReplayBuffer, stack
from soft_actor_critic.training import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CONFIG = TrainConfig(hidden_units=(64, 64), batch_size=64)
OBSERVATION_DIM, ACTION_DIM = 5, 2
LOW, HIGH = -2 * np.ones(ACTION_DIM, np.float32), 2 * np.ones(ACTION_DIM, np.float32)


def make_agent() -> Agent:
    torch.manual_seed(0)
    return Agent(OBSERVATION_DIM, ACTION_DIM, LOW, HIGH, CONFIG, "cuda")


def filled_buffer(seed: int = 0) -> ReplayBuffer:
    buffer = ReplayBuffer(1000, OBSERVATION_DIM, ACTION_DIM, seed=3 + seed, device="cuda")
    rng = np.random.default_rng(seed)
    for _ in range(500):
        observation, next_observation = rng.normal(size=(2, OBSERVATION_DIM))
        buffer.add(observation, rng.uniform(-2, 2, ACTION_DIM), rng.normal(), next_observation, rng.random() < 0.1)
    return buffer


def test_graphed_updates_equal_eager_updates():
    eager, graphed = make_agent(), make_agent()
    eager_buffer, graphed_buffer = filled_buffer(), filled_buffer()
    initial = [parameter.detach().clone() for parameter in graphed.policy.parameters()]  # no grad_fn kept alive
    torch.cuda.manual_seed(7)
    eager_metrics = [eager.update(eager_buffer.sample(CONFIG.batch_size)) for _ in range(5)]
    torch.cuda.manual_seed(7)
    update = GraphedUpdate(graphed, graphed_buffer, CONFIG.batch_size)
    graphed_metrics = [{key: value.clone() for key, value in update().items()} for _ in range(5)]
    for key in eager_metrics[-1]:
        torch.testing.assert_close(graphed_metrics[-1][key], eager_metrics[-1][key], rtol=1e-3, atol=1e-4, msg=key)
    assert not torch.equal(graphed_metrics[0]["loss/critic"], graphed_metrics[-1]["loss/critic"])  # fresh batches
    after_eager, after_graphed = eager.tensors(), graphed.tensors()
    assert len(after_eager) == len(after_graphed)
    for one, other in zip(after_eager, after_graphed):
        torch.testing.assert_close(other, one, rtol=1e-3, atol=1e-4)  # float rounding, not a different update
    assert not any(map(torch.equal, initial, graphed.policy.parameters()))  # the replays did update it


def test_crossqs_two_graphs_with_and_without_the_policy_step_equal_eager_updates():
    """CrossQ's updates replay one of two graphs (--policy-delay), and its batch renormalization leaves
    its warm-up inside them (a tensor condition): the replays must still follow the eager updates."""
    config = TrainConfig(
        algorithm="crossq", hidden_units=(64, 64), critic_hidden_units=(128, 128), batch_size=64, renorm_warmup=4
    )

    def make_crossq() -> CrossQAgent:
        torch.manual_seed(0)
        return CrossQAgent(OBSERVATION_DIM, ACTION_DIM, LOW, HIGH, config, "cuda")

    eager, graphed = make_crossq(), make_crossq()
    eager_buffer, graphed_buffer = filled_buffer(), filled_buffer()
    policy_steps = [number % config.policy_delay == 0 for number in range(1, 10)]
    torch.cuda.manual_seed(7)
    eager_metrics = [eager.update(eager_buffer.sample(config.batch_size), step) for step in policy_steps]
    torch.cuda.manual_seed(7)
    update = GraphedUpdate(graphed, graphed_buffer, config.batch_size, delayed_policy=True)
    graphed_metrics = [{key: value.clone() for key, value in update(step).items()} for step in policy_steps]
    for eager_step, graphed_step in zip(eager_metrics, graphed_metrics):
        assert set(graphed_step) == set(eager_step)
        for key in eager_step:
            torch.testing.assert_close(graphed_step[key], eager_step[key], rtol=1e-3, atol=1e-4, msg=key)
    for one, other in zip(eager.tensors(), graphed.tensors(), strict=True):
        torch.testing.assert_close(other, one, rtol=1e-3, atol=1e-4)
    assert graphed.critic.net[0].passes.item() == len(policy_steps)  # past the warm-up of 4, in the graph


def test_a_packed_groups_graphed_updates_and_actions_equal_eager_ones():
    """Packed seeds (packed.py): one graph gathers a batch from each seed's buffer and updates them all."""
    seeds = 3

    def make_packed() -> PackedAgent:
        torch.manual_seed(0)
        return PackedAgent(OBSERVATION_DIM, ACTION_DIM, LOW, HIGH, CONFIG, "cuda", seeds=seeds)

    eager, graphed = make_packed(), make_packed()
    eager_buffers, graphed_buffers = ([filled_buffer(seed) for seed in range(seeds)] for _ in range(2))
    torch.cuda.manual_seed(7)
    for _ in range(5):
        eager_metrics = eager.update(stack([buffer.sample(CONFIG.batch_size) for buffer in eager_buffers]))
    torch.cuda.manual_seed(7)
    update = GraphedUpdate(graphed, graphed_buffers, CONFIG.batch_size)
    for _ in range(5):
        graphed_metrics = update()
    assert graphed_metrics["loss/critic"].shape == (seeds,)
    for key in eager_metrics:
        torch.testing.assert_close(graphed_metrics[key], eager_metrics[key], rtol=1e-3, atol=1e-4, msg=key)
    for one, other in zip(eager.tensors(), graphed.tensors(), strict=True):
        torch.testing.assert_close(other, one, rtol=1e-3, atol=1e-4)
    observations = np.linspace(-1, 1, seeds * OBSERVATION_DIM, dtype=np.float32).reshape(seeds, OBSERVATION_DIM)
    torch.cuda.manual_seed(11)
    eager_actions = graphed.act(observations)
    torch.cuda.manual_seed(11)
    act = GraphedAct(graphed, OBSERVATION_DIM)
    graphed_actions = act(observations)
    assert graphed_actions.shape == (seeds, ACTION_DIM)
    np.testing.assert_allclose(graphed_actions, eager_actions, rtol=1e-4, atol=1e-5)


def test_capturing_leaves_a_trained_agent_as_it_was():
    agent, buffer = make_agent(), filled_buffer()
    for _ in range(3):
        agent.update(buffer.sample(CONFIG.batch_size))
    before = copy.deepcopy(agent.state_dict())
    GraphedUpdate(agent, buffer, CONFIG.batch_size)  # its warm-up runs real updates, then undoes them
    after = agent.state_dict()
    for name in ("policy", "critic", "target_critic"):
        for key, tensor in before[name].items():
            assert torch.equal(after[name][key], tensor), f"{name}.{key}"
    assert torch.equal(after["log_alpha"], before["log_alpha"])
    for name in ("policy_optimizer", "critic_optimizer", "alpha_optimizer"):
        for index, state in before[name]["state"].items():
            for key, tensor in state.items():
                assert torch.equal(after[name]["state"][index][key], tensor), f"{name}[{index}].{key}"


def test_graphed_actions_equal_eager_actions_with_fresh_noise_each_time():
    agent = make_agent()
    observation = np.linspace(-1, 1, OBSERVATION_DIM, dtype=np.float32)
    torch.cuda.manual_seed(11)
    eager = [agent.act(observation) for _ in range(2)]
    torch.cuda.manual_seed(11)
    act = GraphedAct(agent, OBSERVATION_DIM)
    graphed = [act(observation) for _ in range(2)]
    np.testing.assert_allclose(graphed, eager, rtol=1e-4, atol=1e-5)
    assert not np.allclose(graphed[0], graphed[1])
    assert np.all(np.abs(graphed[0]) <= HIGH)


def saved_on_gpu(run_dir: Path, step: int) -> bool:
    """Whether the run's checkpoint is of `step` and was written from a GPU (whose Adam is capturable)."""
    state = read_checkpoint(run_dir)
    assert state["step"] == step
    return state["critic_optimizer"]["param_groups"][0]["capturable"]


def test_a_run_moves_from_gpu_to_cpu_and_back(small_config):
    directory = small_config.directory
    assert main(["train", *TINY, "--num-steps", "300", "--run-name", "run", "--directory", directory]) == 0
    run_dir = Path(directory) / "run"
    assert saved_on_gpu(run_dir, 300)  # --device auto took the GPU
    resume = ["train", "--resume", "--run-name", "run", "--directory", directory]
    assert main([*resume, "--num-steps", "500", "--device", "cpu"]) == 0
    assert not saved_on_gpu(run_dir, 500)
    assert main([*resume, "--num-steps", "700", "--device", "cuda"]) == 0
    assert saved_on_gpu(run_dir, 700)
    assert main([*resume, "--num-steps", "900", "--no-cuda-graphs"]) == 0
    assert saved_on_gpu(run_dir, 900)
    assert main(["eval", "--run-name", "run", "--directory", directory, "--num-episodes", "1"]) == 0


def test_the_same_seed_learns_alike_with_and_without_graphs(small_config):
    """Not bit for bit (the kernels may differ), but the same updates: the weights stay close."""
    checkpoints = []
    for name, graphs in (("graphs", True), ("eager", False)):
        config = dataclasses.replace(small_config, num_steps=300, run_name=name, device="cuda", cuda_graphs=graphs)
        checkpoints.append(read_checkpoint(train(config)))
    for name in ("policy", "critic"):
        for key, tensor in checkpoints[0][name].items():
            torch.testing.assert_close(tensor, checkpoints[1][name][key], rtol=1e-2, atol=1e-3, msg=f"{name}.{key}")
