"""A run's state beyond its files: how far it has come, every random stream it draws from, and the
checkpoint that holds both with the networks; saving it, and continuing a run from it.

The files themselves (atomic writes, the buffer beside the checkpoint) are runs.py's.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

from soft_actor_critic.agent import Agent
from soft_actor_critic.config import RunError, TrainConfig, first_line
from soft_actor_critic.replay_buffer import ReplayBuffer
from soft_actor_critic.runs import CHECKPOINT_FILE, load_buffer, load_checkpoint, save_checkpoint


class Seeds(NamedTuple):
    """The run's seed split into one independent stream per consumer (numpy's SeedSequence.spawn), so
    that no two of them draw the same bits. These are all the random streams of a run; Python's and
    numpy's global generators are never drawn from (gymnasium's envs draw from their own np_random)."""

    torch: int  # torch's global generators: the initial weights, and the policy's noise (CPU or CUDA)
    buffer: int  # the replay buffer's sampler of batch rows
    warmup: int  # the uniform actions of the warm-up
    env: int  # the training env's first reset
    eval_env: int  # the periodic evals' env, reset to it at every eval

    @classmethod
    def of(cls, seed: int) -> Seeds:
        children = np.random.SeedSequence(seed).spawn(len(cls._fields))
        return cls(*(int(child.generate_state(1)[0]) for child in children))


@dataclasses.dataclass
class Progress:
    """How far a run has come: with the networks and the buffer, all that a checkpoint must hold."""

    warmup_rng: np.random.Generator  # draws the uniform warm-up actions
    step: int = 0  # env steps taken
    first_update_after: int = 0  # updates run on the steps after this one

    @classmethod
    def start(cls, config: TrainConfig, seeds: Seeds) -> Progress:
        return cls(np.random.default_rng(seeds.warmup), first_update_after=config.start_step)


def save_run(
    run_dir: Path, config: TrainConfig, env: gym.Env, agent: Agent, buffer: ReplayBuffer, progress: Progress
) -> None:
    """Checkpoint everything needed to continue exactly: networks, optimizers, counters, random states, buffer."""
    if not agent.is_finite():
        raise RunError(f"the networks hold NaN or infinite values at step {progress.step}: the last checkpoint is kept")
    state = agent.state_dict() | {
        "step": progress.step,
        "first_update_after": progress.first_update_after,
        "rng": random_states(env, agent, buffer, progress),
    }
    save_checkpoint(run_dir, state, buffer.state_dict() if config.save_buffer else None)


def random_states(env: gym.Env, agent: Agent, buffer: ReplayBuffer, progress: Progress) -> dict:
    """Every random stream of a run (see Seeds), as plain values and tensors that weights_only loading accepts."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state() if agent.device.type == "cuda" else None,
        "buffer": buffer.generator.get_state(),
        "buffer_device": buffer.device.type,  # a CPU generator's state doesn't fit a CUDA one
        "warmup": progress.warmup_rng.bit_generator.state,
        "env": env_stream(env),
    }


def set_random_states(states: dict, env: gym.Env, agent: Agent, buffer: ReplayBuffer, progress: Progress) -> None:
    """The inverse of random_states."""
    progress.warmup_rng.bit_generator.state = states["warmup"]
    set_env_stream(env, states["env"])
    if states["buffer_device"] == buffer.device.type:  # else (resumed on another device) it stays seeded
        buffer.generator.set_state(states["buffer"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and agent.device.type == "cuda":  # the policy's noise on a GPU
        torch.cuda.set_rng_state(states["cuda"])


def restore(run_dir: Path, config: TrainConfig, env: gym.Env, agent: Agent, buffer: ReplayBuffer) -> Progress:
    """Load the run's checkpoint into agent, buffer and random states; returns where the run stood."""
    path = run_dir / CHECKPOINT_FILE
    state = load_checkpoint(run_dir)
    if "critic" not in state:  # what release/ship_agent.py writes
        raise RunError(f"{path} holds only a policy's weights (an agent shipped for eval): it cannot be resumed")
    try:
        agent.load_state_dict(state)
        step = state["step"]
        progress = Progress(np.random.default_rng(), step, state["first_update_after"])
        set_random_states(state["rng"], env, agent, buffer, progress)
    except KeyError as error:
        raise RunError(f"{path} has no {error}: it is not a checkpoint this version can resume") from None
    except (TypeError, ValueError, RuntimeError) as error:
        raise RunError(f"{path} does not fit the run's config: {first_line(error)}") from None
    if step >= config.num_steps:
        raise RunError(f"{run_dir.name} is already at step {step}; raise --num-steps above it to train on")
    if state.get("buffer_file"):
        load_buffer(run_dir, state["buffer_file"], buffer)
    else:  # saved with --no-save-buffer: refill with the policy (no second random warm-up) before updating
        progress.first_update_after = max(progress.first_update_after, step + config.batch_size)
        print(
            f"note: {path} has no replay buffer; updates resume once it holds {config.batch_size} new steps",
            file=sys.stderr,
        )
    return progress


def env_stream(env: gym.Env) -> dict:
    """The state of the env's random stream, as plain values: of gymnasium's Generator, or of the RandomState
    of a DeepMind Control task (through Shimmy), its key as a list of ints."""
    stream = env.unwrapped.np_random
    if isinstance(stream, np.random.Generator):
        return stream.bit_generator.state
    state = stream.get_state(legacy=False)
    return state | {"state": {"key": state["state"]["key"].tolist(), "pos": state["state"]["pos"]}}


def set_env_stream(env: gym.Env, state: dict) -> None:
    """The inverse of env_stream."""
    stream = env.unwrapped.np_random
    if isinstance(stream, np.random.Generator):
        stream.bit_generator.state = state
    else:
        key = np.array(state["state"]["key"], dtype=np.uint32)
        stream.set_state(state | {"state": {"key": key, "pos": state["state"]["pos"]}})
