"""`export`: a run's deterministic policy as an ONNX file, for a robot, a game engine or any code without torch
or this package. A batch of observations goes in, actions in the env's own bounds come out: tanh and the
rescale to the bounds are inside the graph (forgetting the rescale is the pitfall SB3's export guide warns
of). What a user needs to feed it is in the model's metadata."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from soft_actor_critic.config import ExportConfig, RunError, reported
from soft_actor_critic.environment import env_kwargs
from soft_actor_critic.policy import Policy, load_policy
from soft_actor_critic.runs import write_atomically

TOLERANCE = 1e-5  # the largest difference allowed between ONNX Runtime's actions and torch's
SAMPLES = 64  # random observations on which they are compared


class DeterministicActions(nn.Module):
    """observations (batch, observation_dim) -> actions (batch, action_dim): scale * tanh(mean) + bias."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.network.act(observations, deterministic=True)


def export(config: ExportConfig) -> Path:
    """Write the run's policy as ONNX to config.output (default <run>/policy-<checkpoint>.onnx), once ONNX Runtime
    is seen to act as torch does; return the file's path."""
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise RunError(
            "export needs onnx, onnxscript and onnxruntime: pip install -r requirements-export.txt"
        ) from None
    policy = load_policy(config.run_name, config.checkpoint, directory=config.directory)
    path = Path(config.output) if config.output else policy.run_dir / f"policy-{config.checkpoint}.onnx"
    observations = torch.as_tensor(samples(policy.observation_space, SAMPLES), dtype=torch.float32)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # the exporter's notes on its own internals
    with warnings.catch_warnings(), reported("torch cannot export the policy", Exception):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            DeterministicActions(policy.network),
            (observations,),
            input_names=["observation"],
            output_names=["action"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            verbose=False,
        )
    model = program.model_proto
    onnx.helper.set_model_props(model, metadata(policy, config.checkpoint))
    serialized = model.SerializeToString()
    with reported("ONNX Runtime cannot run the exported policy", Exception):  # checked before it is written
        session = onnxruntime.InferenceSession(serialized)
        actions = session.run(None, {"observation": observations.numpy()})[0]
    with torch.inference_mode():
        expected = policy.network.act(observations, deterministic=True).numpy()
    difference = np.abs(actions - expected).max()
    if difference > TOLERANCE:
        raise RunError(f"the exported policy's actions differ from torch's by up to {difference:.2g}: not written")
    write_atomically(path, lambda file: file.write(serialized))
    print(f"wrote {path}: the policy of step {policy.step}, actions within {difference:.1g} of torch's", flush=True)
    return path


def samples(space: gym.Space, count: int) -> np.ndarray:
    """`count` observations drawn from the space (seeded), flattened as the run flattens them."""
    space.seed(0)
    return np.stack([gym.spaces.flatten(space, space.sample()) for _ in range(count)])


def metadata(policy: Policy, checkpoint: str) -> dict[str, str]:
    """What the model's user needs, as ONNX's metadata_props (text each; lists and numbers in JSON)."""
    network, config = policy.network, policy.config
    low, high = network.action_bias - network.action_scale, network.action_bias + network.action_scale
    observations = gym.spaces.flatten_space(policy.observation_space)  # as the model takes them
    return {
        "env_name": config.env_name,
        "env_kwargs": json.dumps(env_kwargs(config)),
        "max_episode_steps": json.dumps(config.max_episode_steps),
        "observation": observation_layout(policy.observation_space),
        "observation_dim": str(observations.shape[0]),
        "observation_low": json.dumps(observations.low.tolist()),  # an unbounded one is -Infinity
        "observation_high": json.dumps(observations.high.tolist()),
        "action_dim": str(low.shape[0]),
        "action_low": json.dumps(low.tolist()),
        "action_high": json.dumps(high.tolist()),
        "algorithm": config.algorithm,
        "checkpoint": checkpoint,
        "step": json.dumps(policy.step),
    }


def observation_layout(space: gym.Space) -> str:
    """How an observation goes in: as the env returns it, or, for a Dict or Tuple, how the run flattened it."""
    if isinstance(space, gym.spaces.Box):
        return f"the env's own observation, a Box of shape {list(space.shape)}"
    parts = space.spaces.items() if isinstance(space, gym.spaces.Dict) else enumerate(space.spaces)
    order = ", ".join(f"{key} {list(part.shape)}" for key, part in parts)
    return f"gymnasium.spaces.flatten of the env's {type(space).__name__} observation: its parts in order, {order}"
