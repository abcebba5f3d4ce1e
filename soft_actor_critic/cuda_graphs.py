"""The GPU path: each update, and each action, recorded once as a CUDA graph and then replayed.

Eager PyTorch launches a few hundred small kernels per SAC update, and on a GPU the host's cost of
launching them, not the arithmetic, sets the pace. A CUDA graph records the launches once and
replays them with one call (the whole-network capture of PyTorch's CUDA semantics notes, as
pytorch-labs/LeanRL does). The maths is `Agent.update`'s and `Agent.act`'s, unchanged; only the way
their kernels reach the GPU differs. A graph reads and writes fixed addresses, so its inputs are
tensors filled before each replay: the batch's row indices for an update, the observation for an
action. Capture after the agent's state is loaded: `Agent.load_state_dict` replaces Adam's tensors.

Recording (`cuda_graph`) is the one step that needs a GPU: tests/test_cuda_graphs.py replaces it with a
stand-in that replays eagerly on the CPU, so that everything around it runs in CI. A capture that fails
costs nothing but speed: training goes on eagerly, on the same device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch

from soft_actor_critic.agent import Agent
from soft_actor_critic.config import TrainConfig, first_line
from soft_actor_critic.console import say
from soft_actor_critic.replay_buffer import Batch, ReplayBuffer, stack

WARMUP_CALLS = 3  # eager calls before capturing: lazy state (Adam's moments, cuBLAS workspaces) must exist
GRAPH_DEVICES = ("cuda",)  # where training runs on graphs (tests add the CPU, recording with a stand-in)


def cuda_graph(function: Callable) -> tuple[torch.cuda.CUDAGraph, object]:
    """function() recorded as a CUDA graph, and its outputs, which every replay overwrites in place."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = function()
    return graph, outputs


@contextlib.contextmanager
def rewound(state: Callable[[], list[torch.Tensor]]) -> Iterator[None]:
    """Whatever runs inside leaves every tensor of `state()` and the random generators as they were, even if
    it raises. A tensor that first appears inside (the moments and step count of a fresh Adam) is zeroed,
    which is where a fresh Adam starts."""
    with torch.no_grad():  # a clone with a grad_fn would keep the parameters' autograd nodes alive
        saved = {id(tensor): (tensor, tensor.clone()) for tensor in state()}
    try:
        with torch.random.fork_rng():
            yield
    finally:
        with torch.no_grad():
            for tensor in state():
                original, copy = saved.get(id(tensor), (None, None))
                tensor.copy_(copy) if original is tensor else tensor.zero_()


def capture(function: Callable, state: Callable[[], list[torch.Tensor]]) -> tuple[torch.cuda.CUDAGraph, object]:
    """Record function() as a CUDA graph; returns the graph and function's outputs.

    Capturing needs a few eager calls first, on a side stream, and for an update those are training steps
    of their own; so is one trial replay, which shows that the graph runs before training relies on it.
    Their effects are undone (`rewound`), as if they had never run.
    """
    side_stream = torch.cuda.Stream() if torch.cuda.is_initialized() else None  # None: a CPU run's test
    with rewound(state):
        if side_stream:
            side_stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side_stream):
            for _ in range(WARMUP_CALLS):
                function()
        if side_stream:
            torch.cuda.current_stream().wait_stream(side_stream)
        graph, outputs = cuda_graph(function)
        graph.replay()
    return graph, outputs


class GraphedUpdate:
    """`agent.update(sample(buffers, batch_size), policy_step)` as one graph replay: the rows are drawn into a
    fixed tensor (the same draws as `sample`), and the graph gathers them from the buffers' storage, a
    packed batch stacked from one buffer per seed. With `delayed_policy` there is a second graph, of the
    updates without a policy step."""

    def __init__(
        self,
        agent: Agent,
        buffers: ReplayBuffer | list[ReplayBuffer],
        batch_size: int,
        delayed_policy: bool = False,
    ) -> None:
        self.buffers, self.batch_size = buffers, batch_size
        # one row of indices per buffer; row 0 exists in any buffer
        self.rows = torch.zeros(len(each(buffers)), batch_size, dtype=torch.long, device=agent.device)

        def gather() -> Batch:
            batches = [buffer.gather(rows) for buffer, rows in zip(each(buffers), self.rows)]
            return stack(batches) if isinstance(buffers, list) else batches[0]

        self.graphs = {
            policy_step: capture(lambda step=policy_step: agent.update(gather(), step), agent.tensors)
            for policy_step in ((True, False) if delayed_policy else (True,))
        }

    def __call__(self, policy_step: bool = True) -> dict[str, torch.Tensor]:
        for buffer, rows in zip(each(self.buffers), self.rows):
            buffer.sample_rows(self.batch_size, out=rows)
        graph, metrics = self.graphs[policy_step]
        graph.replay()
        return metrics  # overwritten by the next replay of this graph


class GraphedAct:
    """`agent.act(observation)` as one copy in, one graph replay and one copy out; a packed agent's,
    (seeds, observation_dim) observations to (seeds, action_dim) actions."""

    def __init__(self, agent: Agent, observation_dim: int) -> None:
        shape = (1, observation_dim) if agent.seeds is None else (agent.seeds, 1, observation_dim)  # as act's
        self.observation = torch.zeros(shape, device=agent.device)

        def act() -> torch.Tensor:
            with torch.no_grad():
                return agent.policy.act(self.observation)

        self.graph, self.action = capture(act, lambda: [])  # acting writes no state

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        self.observation.copy_(torch.as_tensor(observation, dtype=torch.float32).view(self.observation.shape))
        self.graph.replay()
        return self.action.cpu().numpy().reshape(*np.shape(observation)[:-1], -1)  # one action per observation


def each(buffers: ReplayBuffer | list[ReplayBuffer]) -> list[ReplayBuffer]:
    """A run's buffer, or packed seeds' buffers, as a list."""
    return buffers if isinstance(buffers, list) else [buffers]


def sample(buffers: ReplayBuffer | list[ReplayBuffer], batch_size: int) -> Batch:
    """A batch from a run's buffer, or packed seeds' batches, one from each seed's buffer, stacked."""
    batches = [buffer.sample(batch_size) for buffer in each(buffers)]
    return stack(batches) if isinstance(buffers, list) else batches[0]


def act_and_update(
    config: TrainConfig, agent: Agent, buffers: ReplayBuffer | list[ReplayBuffer]
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[bool], dict[str, torch.Tensor]]]:
    """The agent's action for an observation (packed seeds': one each), and one update on a fresh batch, with
    a policy step or without. On a GPU (unless --no-cuda-graphs) each is the replay of a CUDA graph, captured
    here; if capturing fails, both stay eager, and one line says so."""
    if config.cuda_graphs and agent.device.type in GRAPH_DEVICES:
        try:
            update = GraphedUpdate(agent, buffers, config.batch_size, delayed_policy=config.policy_delay > 1)
            return GraphedAct(agent, each(buffers)[0].widths.observations), update
        except Exception as error:  # torch raises many types for a failed capture; all mean the same here
            say(
                f"note: capturing CUDA graphs failed ({first_line(error)}); training goes on without them on "
                f"{agent.device}, as with --no-cuda-graphs"
            )
    return agent.act, lambda policy_step: agent.update(sample(buffers, config.batch_size), policy_step)
