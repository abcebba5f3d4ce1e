"""Many seeds in one process: the agents of N seeds stacked along a leading dimension and updated
together, with one forward, one backward and one Adam step per update for all of them.

Each seed's agent is built as its single run builds it (its initial weights from its own stream);
`PackedAgent.pack` stacks N of them, and `unpack` writes each seed's slice back into its own agent,
which checkpoints, evaluates and resumes as any run's does. The update is the single agent's
(`Agent.update`, or CrossQ's), unchanged: the networks are ensembles with a member per seed (per seed
and Q-function for the critic; CrossQ's batch renormalization too), every batch tensor has a leading
seed dimension, the temperature is one per seed, and each loss is one per seed (losses.py), summed
before the backward pass (agent.descend). So no gradient, statistic or temperature crosses from one
seed to another, and Adam, which works element by element, steps each seed as its own Adam would.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from soft_actor_critic.agent import Agent, CrossQAgent
from soft_actor_critic.config import ALGORITHMS, PROGRAM, Interrupted, RunError, TrainConfig, setting_key
from soft_actor_critic.console import ProgressBar, say
from soft_actor_critic.cuda_graphs import act_and_update
from soft_actor_critic.environment import make_env
from soft_actor_critic.networks import BatchRenorm
from soft_actor_critic.signals import StopRequest, stop_requests
from soft_actor_critic.train import (
    LoopLog,
    Training,
    evaluate_and_checkpoint,
    open_run,
    policy_steps,
    resolve_device,
    resume_hint,
    show_recent_return,
)

# How seed k's tensor sits in the packed one (PackedAgent.how_packed says which applies): the packed tensor
# from every seed's own, in seed order, and seed k's own from the packed one (of `seeds`).
PACKINGS = {
    "shared": (lambda tensors: tensors[0], lambda tensor, k, seeds: tensor),
    "transposed": (lambda tensors: torch.stack([tensor.T for tensor in tensors]), lambda tensor, k, seeds: tensor[k].T),
    "member": (torch.stack, lambda tensor, k, seeds: tensor[k]),
    "row": (lambda tensors: torch.stack(tensors).unsqueeze(1), lambda tensor, k, seeds: tensor[k, 0]),
    "critic": (
        lambda tensors: torch.stack(tensors, dim=1).flatten(0, 1),
        lambda tensor, k, seeds: tensor.view(2, seeds, *tensor.shape[1:])[:, k],
    ),
}


class PackedAgent(Agent):
    """N seeds' SAC agents as one: `act` takes (seeds, observation_dim), `update` a Batch of
    (seeds, batch, ...) tensors, and its metrics are one per seed. PackedCrossQAgent packs CrossQ's."""

    def pack(self, agents: list[Agent]) -> None:
        """Take each seed's state from its own agent: its networks, temperature and Adam's moments."""
        if len(agents) != self.seeds:
            raise ValueError(f"{len(agents)} agents for {self.seeds} seeds")
        self.load_state_dict(self.rebuilt([agent.state_dict() for agent in agents]))

    def unpack(self, agents: list[Agent]) -> None:
        """Give each seed's agent its slice of the packed state, to checkpoint or evaluate as a single run."""
        state = self.state_dict()
        for seed, agent in enumerate(agents):
            agent.load_state_dict(self.rebuilt([state], seed))

    def rebuilt(self, states: list, seed: int | None = None, path: tuple = ()):
        """states[0] with each tensor replaced by the packed one of the tensors at its place in every state, or
        with `seed`, by that seed's own of the packed state's: its dicts rebuilt, so that no state changes,
        and its other values shared."""
        if isinstance(states[0], torch.Tensor):
            pack, unpack = PACKINGS[self.how_packed(*path)]
            return pack(states) if seed is None else unpack(states[0], seed, self.seeds)
        if isinstance(states[0], dict):
            return {key: self.rebuilt([state[key] for state in states], seed, (*path, key)) for key in states[0]}
        return states[0]

    def how_packed(self, part: str, *path) -> str:
        """How seed k's tensor at `path` in `part` of a single run's state dict sits in the packed one:
        nn.Linear's (out, in) weight is EnsembleLinear's (in, out) member k ("transposed"); its (out,) bias,
        and a temperature, row k ("row"); batch renormalization's (1, features) tensors member k ("member");
        a twin critic's member i is the packed critic's member i * seeds + k ("critic"); the action bounds
        and batch renormalization's count of passes are the same for every seed ("shared"). Adam's moments
        follow their parameter; its step count is shared."""
        if part.endswith("_optimizer"):  # path: ("state", the parameter's index, "exp_avg", say)
            if path[-1] == "step":
                return "shared"
            if part == "alpha_optimizer":  # of log_alpha alone
                return "row"
            module = part.removesuffix("_optimizer")
            names = [name for name, _ in getattr(self, module).named_parameters()]
            return self.how_packed(module, names[path[1]])
        if not path:  # log_alpha
            return "row"
        name = path[0]
        if name.startswith("action_") or name.endswith("passes"):
            return "shared"
        if part != "policy":
            return "critic"
        if isinstance(self.policy.get_submodule(name.rpartition(".")[0]), BatchRenorm):
            return "member"
        return "row" if name.endswith("bias") else "transposed"


class PackedCrossQAgent(PackedAgent, CrossQAgent):
    """N seeds' CrossQ agents as one: PackedAgent's networks, packing and acting, CrossQAgent's updates,
    in which (s, a) and (s', a') join along the batch dimension, and each seed's batch renormalization
    keeps its own statistics (a member per seed, over that seed's batch alone)."""


def train_packed(
    configs: list[TrainConfig],
    resume: list[bool],
    count_steps: Callable[[int], None] | None = None,
    *,
    program: str = PROGRAM,
) -> list[Path]:
    """Train the seeds of one setting (config.setting_key) together, in this process: each in its own run
    folder, with its own eval env, evals, best.pt and checkpoints, as train() would (run k continues from its
    checkpoint where resume[k]; those must all stand at the same step); how they are carried out (device,
    checkpoints) is the first's. Returns the run folders."""
    first = configs[0]
    if len({setting_key(config) for config in configs}) > 1:
        raise ValueError("packed runs must be seeds of one setting")
    device = resolve_device(first.device)
    with contextlib.ExitStack() as stack:
        # SAME_STEP: where an episode ends, step() returns the next one's first observation, and the
        # true last one in info["final_obs"]; with the default, the next call would be a reset, not a step.
        make = functools.partial(make_env, first.env_name)
        vector = gym.vector.SyncVectorEnv([make] * len(configs), autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        envs = stack.enter_context(contextlib.closing(vector))
        space = envs.single_action_space
        # Built first: its initial weights, replaced by pack(), draw from torch's generator, which open_run
        # then seeds (or, resuming, restores), so that the policy's noise goes on where the checkpoint stood.
        dims = envs.single_observation_space.shape[0], space.shape[0]
        packed_agent = ALGORITHMS[first.algorithm].agent_class(packed=True)
        packed = packed_agent(*dims, space.low, space.high, first, device, seeds=len(configs))
        runs = [
            open_run(stack, config, env, device, resume=resumed, count_steps=count_steps)
            for config, env, resumed in zip(configs, envs.envs, resume)
        ]
        if len({run.progress.step for run in runs}) > 1:
            steps = ", ".join(f"{run.run_dir.name} at {run.progress.step}" for run in runs)
            raise RunError(f"packed runs must stand at the same step, and these do not: {steps}")
        packed.pack([run.agent for run in runs])
        try:
            with stop_requests() as stop:
                packed_loop(runs, envs, packed, stop)
                unpack_finite(packed, runs)
                for run in runs:
                    run.checkpoint()  # the final ones; a signal now only waits for them
        except Interrupted as interruption:
            raise Interrupted(f"{interruption}, {resume_hint(runs, program)}", interruption.signum) from None
    say(f"finished {first.num_steps} steps; run folders: {', '.join(str(run.run_dir) for run in runs)}")
    return [run.run_dir for run in runs]


def packed_loop(runs: list[Training], envs: gym.vector.VectorEnv, packed: PackedAgent, stop: StopRequest) -> None:
    """training_loop for packed seeds: one vector env step, one action and one update for all of them;
    each seed's transitions, episodes, logs, evals and checkpoints are its own."""
    config, progress = runs[0].config, runs[0].progress  # the seeds' progress but for the episodes is the same
    low, high = envs.single_action_space.low, envs.single_action_space.high
    act, update = act_and_update(config, packed, [run.buffer for run in runs])
    steps, warmup = (step * len(runs) for step in (progress.step, progress.first_update_after))  # all seeds'
    bar = ProgressBar(config.num_steps * len(runs), steps, runs[0].count_steps, warmup=warmup)
    with bar:
        logs, metrics = [LoopLog(run.writer, bar, progress) for run in runs], None
        seeds = [run.seeds.env for run in runs] if progress.step == 0 else None
        observations, _ = envs.reset(seed=seeds)
        for step in range(progress.step + 1, config.num_steps + 1):
            if step <= config.start_step:
                actions = np.stack([run.progress.warmup_rng.uniform(low, high).astype(np.float32) for run in runs])
            else:
                actions = act(observations)
            next_observations, rewards, terminateds, truncateds, info = envs.step(actions)
            ended = terminateds | truncateds
            for seed, run in enumerate(runs):
                last = info["final_obs"][seed] if ended[seed] else next_observations[seed]
                run.buffer.add(observations[seed], actions[seed], rewards[seed], last, terminateds[seed])
            observations = next_observations
            for policy_step in policy_steps(config, progress, step):
                metrics = (metrics or {}) | update(policy_step)
            for seed, (run, log) in enumerate(zip(runs, logs)):
                own = {key: value[seed] for key, value in metrics.items()} if log.due(step) else None
                try:
                    log.step(step, rewards[seed], own)
                except RunError as error:  # a NaN: which of the group's runs it was
                    raise RunError(f"{run.run_dir.name}: {error}") from None
                if ended[seed]:
                    run.progress.episodes += 1
                    log.episode(step)
                run.progress.step = step
            if ended.any():
                show_recent_return(bar, logs)
            evaluate_and_checkpoint(runs, step, stop, before=lambda: unpack_finite(packed, runs))


def unpack_finite(packed: PackedAgent, runs: list[Training]) -> None:
    """Each run's agent its state, before any of them evaluates or checkpoints; a NaN or an infinity in
    one seed stops the group first, naming its run, so that no run writes a checkpoint past another's."""
    packed.unpack([run.agent for run in runs])
    for run in runs:
        if not run.agent.is_finite():
            raise RunError(
                f"{run.run_dir.name}: the networks hold NaN or infinite values at step {run.progress.step}: "
                "training of its packed group stopped, every run keeps its last checkpoint"
            )
