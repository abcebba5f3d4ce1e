"""The training loop of SAC: act, step the env, store the transition, update, log; with the evals and
checkpoints that fall due on the way, and a clean stop on Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams
from tqdm import tqdm

from soft_actor_critic.agent import Agent
from soft_actor_critic.checkpoints import Progress, Seeds, restore, save_run
from soft_actor_critic.config import ALGORITHMS, PROGRAM, Interrupted, RunError, TrainConfig, show
from soft_actor_critic.console import ProgressBar, say
from soft_actor_critic.cuda_graphs import act_and_update
from soft_actor_critic.environment import make_env
from soft_actor_critic.periodic_eval import PeriodicEval, forget_evals_after
from soft_actor_critic.replay_buffer import ReplayBuffer
from soft_actor_critic.runs import create_run_dir, find_run, locked, write_train_config
from soft_actor_critic.signals import StopRequest, signal_name, stop_requests

LOG_INTERVAL = 250  # env steps between two points of the loss and SPS curves


@dataclasses.dataclass
class Training:
    """A run's parts, as the loop uses them."""

    config: TrainConfig
    seeds: Seeds  # the run's random streams, derived from config.seed once
    env: gym.Env
    agent: Agent
    buffer: ReplayBuffer
    writer: SummaryWriter
    progress: Progress
    run_dir: Path | None = None  # where checkpoints go; None: none are written
    evaluate: PeriodicEval | None = None  # None: no periodic evals
    count_steps: Callable[[int], None] | None = None  # told of every env step (a sweep's progress bar)

    def checkpoint(self) -> None:
        if self.run_dir is not None:
            self.writer.flush()  # the curves up to this step reach the disk before a resume may purge what follows
            save_run(self.run_dir, self.config, self.env, self.agent, self.buffer, self.progress)


def train(
    config: TrainConfig,
    resume: bool = False,
    count_steps: Callable[[int], None] | None = None,
    *,
    program: str = PROGRAM,
) -> Path:
    """Train to exactly config.num_steps env steps, in a new run folder or, with `resume`, in the
    existing one from its checkpoint; returns the run folder. `count_steps(n)`, if given, hears of
    every env step as the progress bar does; `program` is how the user ran this one, for the hint
    that continues an interrupted run."""
    device = resolve_device(config.device)
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(contextlib.closing(make_env(config.env_name)))
        training = open_run(stack, config, env, device, resume=resume, count_steps=count_steps)
        try:
            with stop_requests() as stop:
                note_a_busy_machine(device)
                training_loop(training, stop)
                training.checkpoint()  # the final one; a signal now only waits for it
        except Interrupted as interruption:
            raise Interrupted(f"{interruption}, {resume_hint([training], program)}", interruption.signum) from None
    say(f"finished {config.num_steps} steps; run folder: {training.run_dir}")
    return training.run_dir


def open_run(
    stack: contextlib.ExitStack,
    config: TrainConfig,
    env: gym.Env,
    device: torch.device,
    *,
    resume: bool,
    count_steps: Callable[[int], None] | None = None,
) -> Training:
    """Everything a run trains with but its env: its agent, buffer, eval env, run folder (new, or found
    and restored with `resume`), lock, config.json and TensorBoard writer; what must close on `stack`."""
    seeds = Seeds.of(config.seed)
    eval_env = stack.enter_context(contextlib.closing(make_env(config.env_name))) if config.eval_every else None
    agent, buffer = build_agent_and_buffer(config, env, device, seeds)
    # Only now that everything is built: a run folder is never left behind by bad input.
    if resume:
        run_dir = find_run(config.directory, config.run_name)
    else:
        run_dir = create_run_dir(config.directory, config.run_name, config.env_name)
    stack.enter_context(locked(run_dir))
    progress = restore(run_dir, config, env, agent, buffer) if resume else Progress.start(config, seeds)
    forget_evals_after(run_dir, progress.step)  # those of a run killed after its checkpoint: evaluated again
    config = dataclasses.replace(config, run_name=run_dir.name)
    write_train_config(run_dir, config)
    say(f"run folder: {run_dir}" + (f" (resuming at step {progress.step})" if resume else ""))
    # purge_step: TensorBoard hides what an interrupted run logged after its checkpoint
    writer = stack.enter_context(SummaryWriter(str(run_dir), purge_step=progress.step + 1 if resume else None))
    if not resume:
        log_hyperparameters(writer, config)
    evaluate = None
    if eval_env:
        episodes, seed = config.eval_episodes, seeds.eval_env
        evaluate = PeriodicEval(run_dir, eval_env, agent, writer, episodes=episodes, seed=seed, step=progress.step)
    return Training(config, seeds, env, agent, buffer, writer, progress, run_dir, evaluate, count_steps)


def resume_hint(runs: list[Training], program: str) -> str:
    """'checkpoint saved; continue with: <the command that continues them>'."""
    commands = [
        f"{program} "
        + shlex.join(["train", "--resume", "--run-name", run.run_dir.name, "--directory", run.config.directory])
        for run in runs
    ]
    return f"checkpoint{'s' * (len(runs) > 1)} saved; continue with: " + "; ".join(commands)


def build_agent_and_buffer(
    config: TrainConfig, env: gym.Env, device: torch.device, seeds: Seeds
) -> tuple[Agent, ReplayBuffer]:
    """The agent, sized for env and seeded, and its replay buffer, allocated in full."""
    torch.manual_seed(seeds.torch)
    observation_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    try:
        bounds = env.action_space.low, env.action_space.high
        agent = ALGORITHMS[config.algorithm].agent_class()(observation_dim, action_dim, *bounds, config, device)
    except (MemoryError, RuntimeError):  # torch reports a failed allocation as a RuntimeError
        widths = show(config.hidden_units)
        if config.critic_hidden_units != config.hidden_units:
            widths += f" (critic {show(config.critic_hidden_units)})"
        raise RunError(f"--hidden-units {widths} does not fit in memory") from None
    try:
        return agent, ReplayBuffer(config.memory_size, observation_dim, action_dim, seeds.buffer, device)
    except (MemoryError, RuntimeError):
        raise RunError(f"--memory-size {config.memory_size} does not fit in memory") from None


def training_loop(training: Training, stop: StopRequest | None = None) -> None:
    """Env steps up to config.num_steps: uniform warm-up actions, then the policy's, with
    config.updates_per_step updates after each step; evals and checkpoints when they fall due."""
    config, env, buffer, progress = training.config, training.env, training.buffer, training.progress
    act, update = act_and_update(config, training.agent, buffer)
    low, high = env.action_space.low, env.action_space.high
    bar = ProgressBar(config.num_steps, progress.step, training.count_steps, warmup=progress.first_update_after)
    with bar:
        log, metrics = LoopLog(training.writer, bar, progress), None
        # A resumed run starts a new episode; the env's random stream goes on from the checkpoint.
        observation, _ = env.reset(seed=training.seeds.env if progress.step == 0 else None)
        for step in range(progress.step + 1, config.num_steps + 1):
            if step <= config.start_step:  # the policy knows nothing yet: explore uniformly
                action = progress.warmup_rng.uniform(low, high).astype(np.float32)
            else:
                action = act(observation)
            next_observation, reward, terminated, truncated, _ = env.step(action)
            # On truncation gymnasium returns the true last observation (there is no auto-reset here),
            # and only `terminated` is stored: a time limit must not cut the bootstrap.
            buffer.add(observation, action, reward, next_observation, terminated)
            observation = next_observation
            for policy_step in policy_steps(config, progress, step):
                # a step without the policy's keeps the policy's metrics of the last one that had them
                metrics = (metrics or {}) | update(policy_step)
            log.step(step, reward, metrics)
            if terminated or truncated:
                progress.episodes += 1
                log.episode(step)
                show_recent_return(bar, [log])
                observation, _ = env.reset()
            progress.step = step
            evaluate_and_checkpoint(training, step, stop)


def policy_steps(config: TrainConfig, progress: Progress, step: int) -> list[bool]:
    """The updates due after env step `step`, none in the warm-up: for each, whether the policy steps
    too, on every config.policy_delay-th update counted from the run's first."""
    if step <= progress.first_update_after:
        return []
    before = (step - progress.first_update_after - 1) * config.updates_per_step
    return [number % config.policy_delay == 0 for number in range(before + 1, before + config.updates_per_step + 1)]


def evaluate_and_checkpoint(
    training: Training | list[Training],
    step: int,
    stop: StopRequest | None,
    before: Callable[[], None] = lambda: None,
) -> None:
    """Evaluate every config.eval_every steps and at the last; checkpoint every config.checkpoint_every
    steps, and when a signal asked to stop, then stop (the last step's checkpoint is train()'s). Packed
    seeds (packed.py) pass their runs, which share a config but the seed, and `before`, which gives each
    run's agent its state first."""
    runs = training if isinstance(training, list) else [training]
    config = runs[0].config
    evaluating = runs[0].evaluate and config.eval_every and (step % config.eval_every == 0 or step == config.num_steps)
    stopping = stop is not None and stop.signum is not None and step != config.num_steps  # done, whatever came
    checkpointing = step != config.num_steps and (
        stopping or (config.checkpoint_every and step % config.checkpoint_every == 0)
    )
    if evaluating or checkpointing:
        before()
    for run in runs:
        if evaluating:
            run.evaluate(step)
        if checkpointing:
            run.checkpoint()
    if stopping:
        raise Interrupted(f"stopped by {signal_name(stop.signum)} at step {step}", stop.signum)


class LoopLog:
    """What the loop shows of a run: its update metrics and steps/s every LOG_INTERVAL steps, and the return
    and length of each episode at its end, in TensorBoard; the steps on the bar."""

    def __init__(self, writer: SummaryWriter, bar: tqdm, progress: Progress) -> None:
        self.writer, self.bar, self.first_update_after = writer, bar, progress.first_update_after
        self.episode_return, self.episode_length, self.recent_returns = 0.0, 0, deque(maxlen=10)
        self.clock, self.clock_step = time.perf_counter(), progress.step

    def due(self, step: int) -> bool:
        """Whether `step` logs the update metrics: every LOG_INTERVAL steps, once the updates have begun."""
        return step % LOG_INTERVAL == 0 and step > self.first_update_after

    def step(self, step: int, reward: float, metrics: dict[str, torch.Tensor] | None) -> None:
        self.episode_return += float(reward)
        self.episode_length += 1
        self.bar.update()
        if self.due(step):
            log_metrics(self.writer, metrics, step)
        if step % LOG_INTERVAL == 0:
            now = time.perf_counter()
            self.writer.add_scalar("time/sps", (step - self.clock_step) / (now - self.clock), step)
            self.clock, self.clock_step = now, step

    def episode(self, step: int) -> None:
        """The episode that ended at `step`; the next one starts from zero."""
        self.writer.add_scalar("episode/return", self.episode_return, step)
        self.writer.add_scalar("episode/length", self.episode_length, step)
        self.recent_returns.append(self.episode_return)
        self.episode_return, self.episode_length = 0.0, 0


def show_recent_return(bar: tqdm, logs: list[LoopLog]) -> None:
    """The mean return of a run's last 10 episodes on the bar; for packed seeds, the mean of the seeds' own."""
    recent = [np.mean(log.recent_returns) for log in logs if log.recent_returns]
    seeds = f" (mean of {len(recent)} seeds)" if len(logs) > 1 else ""
    bar.set_postfix_str(f"recent return {np.mean(recent):.1f}{seeds}", refresh=False)


def log_metrics(writer: SummaryWriter, metrics: dict[str, torch.Tensor], step: int) -> None:
    """Write the update's metrics; a NaN or infinite one stops training before it reaches a checkpoint."""
    for key, tensor in metrics.items():
        value = tensor.item()
        if not np.isfinite(value):
            raise RunError(f"{key} became {value} at step {step}: training stopped, the last checkpoint is kept")
        writer.add_scalar(key, value, step)


def resolve_device(name: str) -> torch.device:
    """--device as a torch device: auto takes CUDA when torch sees a GPU, and cuda insists on one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RunError("--device cuda: torch sees no CUDA GPU here (try --device cpu)")
    return torch.device(name)


def note_a_busy_machine(device: torch.device) -> None:
    """One line when torch's CPU threads would share busy cores: they spin while they wait, and crawl
    (docs/speed.md: about 3 times slower than one thread)."""
    threads, cores, load = torch.get_num_threads(), os.cpu_count() or 1, os.getloadavg()[0]
    if device.type == "cpu" and threads > 1 and load > cores - 0.5:
        say(
            f"note: the machine is busy (load {load:.1f} on {cores} cores); with torch's {threads} threads "
            "a run may crawl: OMP_NUM_THREADS=1 runs about 3 times faster then",
            sys.stderr,
        )


def log_hyperparameters(writer: SummaryWriter, config: TrainConfig) -> None:
    """Write the config into TensorBoard's HPARAMS tab, in the run's own event file."""
    values = {
        key: value if isinstance(value, (int, float, str, bool)) else str(value)
        for key, value in dataclasses.asdict(config).items()
    }
    for summary in hparams(values, {"episode/return": 0.0}):
        writer.file_writer.add_summary(summary)
