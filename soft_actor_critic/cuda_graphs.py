"""The GPU path: each update, and each action, recorded once as a CUDA graph and then replayed.

Eager PyTorch launches a few hundred small kernels per SAC update, and on a GPU the host's cost of
launching them, not the arithmetic, sets the pace. A CUDA graph records the launches once and
replays them with one call (the whole-network capture of PyTorch's CUDA semantics notes, as
pytorch-labs/LeanRL does). The maths is `Agent.update`'s and `Agent.act`'s, unchanged; only the way
their kernels reach the GPU differs. A graph reads and writes fixed addresses, so its inputs are
tensors filled before each replay: the batch's row indices for an update, the observation for an
action. Capture after the agent's state is loaded: `Agent.load_state_dict` replaces Adam's tensors.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from soft_actor_critic.agent import Agent
from soft_actor_critic.replay_buffer import Batch, ReplayBuffer, stack

WARMUP_CALLS = 3  # eager calls before capturing: lazy state (Adam's moments, cuBLAS workspaces) must exist


def capture(function: Callable, state: Callable[[], list[torch.Tensor]]) -> tuple[torch.cuda.CUDAGraph, object]:
    """Record function() as a CUDA graph; returns the graph and function's outputs, which every replay
    overwrites in place.

    Capturing needs a few eager calls first, on a side stream, and for an update those are training
    steps of their own: so every tensor of `state()`, and CUDA's random state, is put back afterwards,
    as if they had never run. A tensor that first appears during them (the moments and step count of a
    fresh Adam) is zeroed, which is where a fresh Adam starts.
    """
    with torch.no_grad():  # a clone with a grad_fn would keep the parameters' autograd nodes alive
        saved = {id(tensor): (tensor, tensor.clone()) for tensor in state()}
    random_state = torch.cuda.get_rng_state()
    side_stream = torch.cuda.Stream()
    side_stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side_stream):
        for _ in range(WARMUP_CALLS):
            function()
    torch.cuda.current_stream().wait_stream(side_stream)
    with torch.no_grad():
        for tensor in state():
            original, copy = saved.get(id(tensor), (None, None))
            tensor.copy_(copy) if original is tensor else tensor.zero_()
    torch.cuda.set_rng_state(random_state)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = function()
    return graph, outputs


class GraphedUpdate:
    """`agent.update(buffer.sample(batch_size), policy_step)` as one graph replay: the rows are drawn into
    a fixed tensor (the same draws as `sample`), and the graph gathers them from the buffer's storage.
    Packed seeds (packed.py) pass their buffers, one per seed, and the graph stacks each one's rows into
    the packed batch. With `delayed_policy` there is a second graph, of the updates without a policy step."""

    def __init__(
        self,
        agent: Agent,
        buffer: ReplayBuffer | list[ReplayBuffer],
        batch_size: int,
        delayed_policy: bool = False,
    ) -> None:
        packed = isinstance(buffer, list)
        self.buffers, self.batch_size = buffer if packed else [buffer], batch_size
        # one row of indices per buffer; row 0 exists in any buffer
        self.rows = torch.zeros(len(self.buffers), batch_size, dtype=torch.long, device=self.buffers[0].device)

        def gather() -> Batch:
            batches = [each.gather(rows) for each, rows in zip(self.buffers, self.rows)]
            return stack(batches) if packed else batches[0]

        self.graphs = {
            policy_step: capture(lambda step=policy_step: agent.update(gather(), step), agent.tensors)
            for policy_step in ((True, False) if delayed_policy else (True,))
        }

    def __call__(self, policy_step: bool = True) -> dict[str, torch.Tensor]:
        for buffer, rows in zip(self.buffers, self.rows):
            buffer.sample_rows(self.batch_size, out=rows)
        graph, metrics = self.graphs[policy_step]
        graph.replay()
        return metrics  # overwritten by the next replay of this graph


class GraphedAct:
    """`agent.act(observation)` as one copy in, one graph replay and one copy out; with `seeds`, a packed
    agent's, (seeds, observation_dim) observations to (seeds, action_dim) actions."""

    def __init__(self, agent: Agent, observation_dim: int, seeds: int | None = None) -> None:
        shape = (1, observation_dim) if seeds is None else (seeds, 1, observation_dim)  # what the policy takes
        self.observation = torch.zeros(shape, device=agent.device)

        def act() -> torch.Tensor:
            with torch.no_grad():
                return agent.policy.act(self.observation)

        self.graph, self.action = capture(act, lambda: [])  # acting writes no state

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        self.observation.copy_(torch.as_tensor(observation, dtype=torch.float32).view(self.observation.shape))
        self.graph.replay()
        return self.action.squeeze(-2).cpu().numpy()  # (action_dim,), or (seeds, action_dim)
