"""The graph path on the CPU: everything cuda_graphs.py does around recording a CUDA graph (the warm-up and
its undoing, the fixed row indices and observation, gathering from one buffer or each packed seed's, the two
graphs of a policy delay, the metrics the replays overwrite) runs here with a stand-in for the recording, and
trains exactly as the eager path does; a capture that fails falls back to the eager path. With a GPU,
tests/test_cuda.py checks the real graphs."""

import copy
import dataclasses

import numpy as np
import pytest
import torch
from conftest import read_checkpoint

from soft_actor_critic import cuda_graphs
from soft_actor_critic.agent import Agent
from soft_actor_critic.plot import scalars
from soft_actor_critic.replay_buffer import ReplayBuffer
from soft_actor_critic.runs import read_eval_rows
from soft_actor_critic.training import train, train_runs


class EagerGraph:
    """A CUDA graph's stand-in: replay() runs the function again and writes its outputs into the tensors
    the recording returned, as a graph's replay overwrites them in place."""

    def __init__(self, function) -> None:
        self.function, self.outputs = function, function()

    def replay(self) -> None:
        outputs = self.function()
        for key in self.outputs if isinstance(self.outputs, dict) else [None]:
            (self.outputs if key is None else self.outputs[key]).copy_(outputs if key is None else outputs[key])


def record_eagerly(function):
    graph = EagerGraph(function)
    return graph, graph.outputs


@pytest.fixture
def graphs_on_the_cpu(monkeypatch):
    monkeypatch.setattr(cuda_graphs, "GRAPH_DEVICES", ("cuda", "cpu"))
    monkeypatch.setattr(cuda_graphs, "cuda_graph", record_eagerly)


CONFIGS = {  # CrossQ's two graphs (--policy-delay 3), its batch renormalization past its warm-up in them
    "sac": {},
    "crossq": {"algorithm": "crossq", "critic_hidden_units": (32, 32), "renorm_warmup": 50, "policy_delay": 3},
}


def trained_both_ways(config, run=train) -> list[dict]:
    """The checkpoints and evals of the same run trained on graphs and eagerly."""
    results = []
    for graphs in (True, False):
        run_dir = run(dataclasses.replace(config, run_name=f"graphs={graphs}", cuda_graphs=graphs))
        metrics = {tag: scalars(run_dir, tag)[1] for tag in ("loss/critic", "loss/policy", "train/alpha")}
        results.append({"checkpoint": read_checkpoint(run_dir), "evals": read_eval_rows(run_dir), "metrics": metrics})
    return results


def assert_same_training(one: dict, other: dict) -> None:
    for part in ("policy", "critic", "log_alpha", "critic_optimizer"):
        torch.testing.assert_close(one["checkpoint"][part], other["checkpoint"][part], rtol=1e-5, atol=1e-6)
    assert [row["return_mean"] for row in one["evals"]] == pytest.approx([row["return_mean"] for row in other["evals"]])
    for tag, values in one.get("metrics", {}).items():  # what the replays wrote into the metrics they return
        assert len(values) and values == pytest.approx(other["metrics"][tag], rel=1e-5), tag


@pytest.mark.parametrize("algorithm", CONFIGS)
def test_a_run_on_graphs_trains_as_the_eager_run(algorithm, small_config, graphs_on_the_cpu, capsys):
    config = dataclasses.replace(small_config, num_steps=400, eval_every=200, device="cpu", **CONFIGS[algorithm])
    graphed, eager = trained_both_ways(config)
    assert_same_training(graphed, eager)
    assert "CUDA graphs failed" not in capsys.readouterr().out
    assert graphed["checkpoint"]["step"] == 400 and not torch.equal(  # it did learn something
        graphed["checkpoint"]["log_alpha"], torch.tensor(0.2).log()
    )


@pytest.mark.parametrize("algorithm", CONFIGS)
def test_packed_seeds_on_graphs_train_as_eagerly(algorithm, small_config, graphs_on_the_cpu):
    """One graph gathers a batch from each seed's buffer, and acts for every seed."""
    config = dataclasses.replace(small_config, num_steps=300, eval_every=300, device="cpu", **CONFIGS[algorithm])

    def packed(config):
        seeds = [dataclasses.replace(config, seed=seed, run_name=f"{config.run_name}_seed={seed}") for seed in (1, 2)]
        return train_runs(seeds, [False, False])[1]  # the second seed's: its rows from its own buffer

    graphed, eager = trained_both_ways(config, packed)
    assert_same_training(graphed, eager)


def test_capturing_leaves_a_trained_agent_and_the_random_streams_as_they_were(small_config, graphs_on_the_cpu):
    agent, buffer = Agent(3, 1, np.array([-2.0]), np.array([2.0]), small_config), ReplayBuffer(100, 3, 1, seed=0)
    for row in range(100):
        buffer.add(np.full(3, row), np.array([row / 50 - 1]), row, np.full(3, row + 1), row % 7 == 0)
    for _ in range(3):
        agent.update(buffer.sample(small_config.batch_size))
    before, random_state = copy.deepcopy(agent.state_dict()), torch.get_rng_state()
    cuda_graphs.GraphedUpdate(agent, buffer, small_config.batch_size)  # warm-up calls, a recording, a trial replay
    after = agent.state_dict()
    for part in before:
        torch.testing.assert_close(after[part], before[part], rtol=0, atol=0, msg=part)
    assert torch.equal(torch.get_rng_state(), random_state)


class FailedReplay(EagerGraph):
    def replay(self) -> None:
        super().replay()  # a replay that fails half-way has changed the state: it must be put back
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing")


@pytest.mark.parametrize("failure", ["capture", "replay"])
def test_a_failed_capture_goes_on_eagerly_and_loses_nothing(failure, small_config, graphs_on_the_cpu, monkeypatch):
    def failing(function):
        if failure == "capture":
            function()  # a capture that fails after its warm-up has changed the state too
            raise RuntimeError("CUDA error: out of memory")
        graph = FailedReplay(function)
        return graph, graph.outputs

    config = dataclasses.replace(small_config, num_steps=300, eval_every=300, device="cpu", run_name="run")
    eager = {"checkpoint": read_checkpoint(train(dataclasses.replace(config, cuda_graphs=False, run_name="eager")))}
    monkeypatch.setattr(cuda_graphs, "cuda_graph", failing)
    say = []
    monkeypatch.setattr(cuda_graphs, "say", say.append)
    fallen_back = {"checkpoint": read_checkpoint(train(config))}
    assert_same_training({**fallen_back, "evals": []}, {**eager, "evals": []})
    assert len(say) == 1 and "CUDA graphs failed" in say[0] and "--no-cuda-graphs" in say[0] and "\n" not in say[0]
