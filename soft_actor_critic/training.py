"""The training loop of SAC: act, step the env, store the transition, update, log; with the evals and
checkpoints that fall due on the way, and a clean stop on Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import shlex
import shutil
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
from soft_actor_critic.config import ALGORITHMS, PROGRAM, Interrupted, RunError, TrainConfig, first_line, setting_key
from soft_actor_critic.console import ProgressBar, say
from soft_actor_critic.cuda_graphs import act_and_update
from soft_actor_critic.environment import make_env
from soft_actor_critic.flags import show
from soft_actor_critic.packed import PackedAgent
from soft_actor_critic.periodic_eval import PeriodicEval, forget_evals_after, make_eval_env
from soft_actor_critic.replay_buffer import ReplayBuffer
from soft_actor_critic.runs import create_run_dir, find_run, locked, write_train_config
from soft_actor_critic.signals import StopRequest, signal_name, stop_requests
from soft_actor_critic.tracking import writer_class

LOG_INTERVAL = 250  # env steps between two points of the loss and SPS curves
# how torch words a failed allocation that it raises as a plain RuntimeError (on the CPU: "can't allocate memory")
OUT_OF_MEMORY = re.compile(r"out of memory|(can't|cannot|failed to|unable to) allocate", re.IGNORECASE)


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
    run_dir: Path  # where its checkpoints, evals and config go
    evaluate: PeriodicEval | None = None  # None: no periodic evals

    def checkpoint(self) -> None:
        self.writer.flush()  # the curves up to this step reach the disk before a resume may purge what follows
        save_run(self.run_dir, self.config, self.env, self.agent, self.buffer, self.progress)


def train(config: TrainConfig, resume: bool = False, *, program: str = PROGRAM) -> Path:
    """Train to exactly config.num_steps env steps, in a new run folder or, with `resume`, in the
    existing one from its checkpoint; returns the run folder. `program` is how the user ran this one,
    for the hint that continues an interrupted run."""
    return train_runs([config], [resume], program=program)[0]


def train_runs(
    configs: list[TrainConfig],
    resume: list[bool],
    count_steps: Callable[[int], None] | None = None,
    *,
    program: str = PROGRAM,
) -> list[Path]:
    """train() of one run, or of the seeds of one setting (config.setting_key) packed into this process
    (packed.py): each in its own run folder, with its own eval env, evals, best.pt and checkpoints, as
    train() would (run k continues from its checkpoint where resume[k]; those must all stand at the same
    step); how they are carried out (device, checkpoints) is the first's. `count_steps(n)`, if given, hears
    of every env step as the progress bar does (a sweep's count). Returns the run folders."""
    first = configs[0]
    if len({setting_key(config) for config in configs}) > 1:
        raise ValueError("packed runs must be seeds of one setting")
    device = resolve_device(first.device)
    with contextlib.ExitStack() as stack:
        # SAME_STEP: where an episode ends, step() returns the next one's first observation, and the
        # true last one in info["final_obs"]; with the default, the next call would be a reset, not a step.
        make = functools.partial(make_env, first)
        vector = gym.vector.SyncVectorEnv([make] * len(configs), autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        envs = stack.enter_context(contextlib.closing(vector))
        packed = None
        if len(configs) > 1:
            # Built first: its initial weights, replaced by pack(), draw from torch's generator, which open_run
            # then seeds (or, resuming, restores), so that the policy's noise goes on where the checkpoint stood.
            space = envs.single_action_space
            packed_agent = ALGORITHMS[first.algorithm].agent_class(packed=True)
            dims = envs.single_observation_space.shape[0], space.shape[0]
            packed = packed_agent(*dims, space.low, space.high, first, device, seeds=len(configs))
        runs = [
            open_run(stack, config, env, device, resume=resumed)
            for config, env, resumed in zip(configs, envs.envs, resume)
        ]
        if len({run.progress.step for run in runs}) > 1:
            steps = ", ".join(f"{run.run_dir.name} at {run.progress.step}" for run in runs)
            raise RunError(f"packed runs must stand at the same step, and these do not: {steps}")
        if packed:
            packed.pack([run.agent for run in runs])
        try:
            with stop_requests() as stop:
                note_a_busy_machine(device)
                training_loop(runs, envs, packed, stop, count_steps)
                for run in runs:
                    run.checkpoint()  # the final ones; a signal now only waits for them
        except Interrupted as interruption:
            raise Interrupted(f"{interruption}, {resume_hint(runs, program)}", interruption.signum) from None
    folders = ", ".join(str(run.run_dir) for run in runs)
    say(f"finished {first.num_steps} steps; run folder{'s' * (len(runs) > 1)}: {folders}")
    return [run.run_dir for run in runs]


def open_run(
    stack: contextlib.ExitStack,
    config: TrainConfig,
    env: gym.Env,
    device: torch.device,
    *,
    resume: bool,
) -> Training:
    """Everything a run trains with but its env: its agent, buffer, eval env, run folder (new, or found
    and restored with `resume`), lock, config.json and TensorBoard writer; what must close on `stack`."""
    seeds = Seeds.of(config.seed)
    eval_env = stack.enter_context(contextlib.closing(make_eval_env(config))) if config.eval_every else None
    agent, buffer = build_agent_and_buffer(config, env, device, seeds)
    writer_type = writer_class(config)
    # Only now that everything is built: a run folder is never left behind by bad input.
    if resume:
        run_dir = find_run(config.directory, config.run_name)
    else:
        run_dir = create_run_dir(config.directory, config.run_name, config.env_name)
    stack.enter_context(locked(run_dir))
    progress = restore(run_dir, config, env, agent, buffer) if resume else Progress.start(config, seeds)
    forget_evals_after(run_dir, progress.step)  # those of a run killed after its checkpoint: evaluated again
    config = dataclasses.replace(config, run_name=run_dir.name)
    try:  # --track's W&B run may fail to start: a new run's folder goes, a resumed one's config stays as it was
        # purge_step: TensorBoard hides what an interrupted run logged after its checkpoint
        writer = stack.enter_context(writer_type(run_dir, config, purge_step=progress.step + 1 if resume else None))
    except RunError:
        if not resume:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    write_train_config(run_dir, config)
    say(f"run folder: {run_dir}" + (f" (resuming at step {progress.step})" if resume else ""))
    if not resume:
        log_config(writer, config)
    evaluate = None
    if eval_env:
        episodes, video = config.eval_episodes, eval_env.render_mode == "rgb_array"
        evaluate = PeriodicEval(run_dir, eval_env, agent, writer, episodes=episodes, seed=seeds.eval_env, video=video)
    return Training(config, seeds, env, agent, buffer, writer, progress, run_dir, evaluate)


def log_config(writer: SummaryWriter, config: TrainConfig) -> None:
    """The run's config in TensorBoard: as a code block in the TEXT tab, and as the run's hparams, whose
    HPARAMS tab shows the runs of a folder (a sweep's) side by side, each with its last eval and episode
    return. Written into the run's own event file: SummaryWriter.add_hparams would make a folder per call."""
    writer.add_text("config", "\n".join(f"    {line}" for line in config.to_json().splitlines()))
    values = {name: hparam_value(value) for name, value in dataclasses.asdict(config).items()}
    metrics = {"eval/return": 0.0, "episode/return": 0.0}  # their tags: TensorBoard shows each one's last point
    for summary in hparams(values, metrics):
        writer.file_writer.add_summary(summary)


def hparam_value(value) -> int | float | str | bool:
    """A config value as an hparam, which is a number, a string or a bool: layer widths as "256,256"."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def resume_hint(runs: list[Training], program: str) -> str:
    """'checkpoint saved; continue with: <the command that continues them>'."""
    paths = [os.path.join(run.config.directory or ".", run.run_dir.name) for run in runs]  # with a '/', even in ./
    commands = [f"{program} {shlex.join(['train', '--resume', '--run-name', path])}" for path in paths]
    return f"checkpoint{'s' * (len(runs) > 1)} saved; continue with: " + "; ".join(commands)


def build_agent_and_buffer(
    config: TrainConfig, env: gym.Env, device: torch.device, seeds: Seeds
) -> tuple[Agent, ReplayBuffer]:
    """The agent, sized for env and seeded, and its replay buffer, allocated in full."""
    torch.manual_seed(seeds.torch)
    observation_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    bounds = env.action_space.low, env.action_space.high
    try:
        agent = ALGORITHMS[config.algorithm].agent_class()(observation_dim, action_dim, *bounds, config, device)
        return agent, ReplayBuffer(config.memory_size, observation_dim, action_dim, seeds.buffer, device)
    except (MemoryError, RuntimeError) as error:  # torch's errors, a failed allocation among them
        raise build_error(error, config, device) from None


def build_error(error: Exception, config: TrainConfig, device: torch.device) -> RunError:
    """Why the agent or its buffer could not be built, in one line that ends with the cause's first: a failed
    allocation names the sizes that asked for it; any other error, such as a GPU that this torch has no kernels
    for ("no kernel image is available"), is no matter of sizes and names the device instead."""
    cause = first_line(error)
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)) or OUT_OF_MEMORY.search(str(error)):
        widths = f"--hidden-units {show(config.hidden_units)} (critic {show(config.critic_hidden_units)})"
        sizes = f"{widths}, --memory-size {config.memory_size}"
        return RunError(f"the networks and the replay buffer do not fit in memory: {sizes} ({cause})")
    return RunError(f"cannot build the agent on {device}: {cause}")


def training_loop(
    runs: list[Training],
    envs: gym.vector.VectorEnv,
    packed: PackedAgent | None = None,
    stop: StopRequest | None = None,
    count_steps: Callable[[int], None] | None = None,
) -> None:
    """Env steps up to config.num_steps, of one run or of packed seeds at once (one vector env step, one action
    and one update for all of them): uniform warm-up actions, then the policy's, with config.updates_per_step
    updates after each step; evals and checkpoints when they fall due. Each run's transitions, episodes, logs,
    evals and checkpoints are its own; on the way out, each run's agent holds its state."""
    config, progress = runs[0].config, runs[0].progress  # the seeds' steps are the same (each draws its own warm-up)
    low, high = envs.single_action_space.low, envs.single_action_space.high
    buffers = [run.buffer for run in runs] if packed else runs[0].buffer
    act, update = act_and_update(config, packed or runs[0].agent, buffers)
    unpacked = (lambda: unpack_finite(packed, runs)) if packed else (lambda: None)
    steps, warmup = (step * len(runs) for step in (progress.step, progress.first_update_after))  # all seeds'
    bar = ProgressBar(config.num_steps * len(runs), steps, count_steps, warmup=warmup)
    with bar:
        logs, metrics = [LoopLog(run.writer, bar, progress) for run in runs], None
        # A resumed run starts a new episode; the env's random stream goes on from the checkpoint.
        observations, _ = envs.reset(seed=[run.seeds.env for run in runs] if progress.step == 0 else None)
        for step in range(progress.step + 1, config.num_steps + 1):
            if step <= config.start_step:  # the policy knows nothing yet: explore uniformly
                actions = np.stack([run.progress.warmup_rng.uniform(low, high).astype(np.float32) for run in runs])
            else:
                actions = act(observations)
            next_observations, rewards, terminateds, truncateds, info = envs.step(actions)
            ended = terminateds | truncateds
            for seed, run in enumerate(runs):
                # The true last observation of an episode that ended (in info, as the env has reset), and only
                # `terminated` stored: a time limit must not cut the bootstrap.
                last = info["final_obs"][seed] if ended[seed] else next_observations[seed]
                run.buffer.add(observations[seed], actions[seed], rewards[seed], last, terminateds[seed])
            observations = next_observations
            for policy_step in policy_steps(config, progress, step):
                # a step without the policy's keeps the policy's metrics of the last one that had them
                metrics = (metrics or {}) | update(policy_step)
            for seed, (run, log) in enumerate(zip(runs, logs)):
                own = {key: value[seed] for key, value in metrics.items()} if packed and log.due(step) else metrics
                try:
                    log.step(step, rewards[seed], own)
                except RunError as error:  # a NaN: which of the group's runs it was
                    raise RunError(f"{run.run_dir.name}: {error}" if packed else str(error)) from None
                if ended[seed]:
                    log.episode(step)
                run.progress.step = step
            if ended.any():
                show_recent_return(bar, logs)
            evaluate_and_checkpoint(runs, step, stop, before=unpacked)
    unpacked()


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


def policy_steps(config: TrainConfig, progress: Progress, step: int) -> list[bool]:
    """The updates due after env step `step`, none in the warm-up: for each, whether the policy steps
    too, on every config.policy_delay-th update counted from the run's first."""
    if step <= progress.first_update_after:
        return []
    before = (step - progress.first_update_after - 1) * config.updates_per_step
    return [number % config.policy_delay == 0 for number in range(before + 1, before + config.updates_per_step + 1)]


def evaluate_and_checkpoint(
    runs: list[Training], step: int, stop: StopRequest | None, before: Callable[[], None] = lambda: None
) -> None:
    """Evaluate every config.eval_every steps and at the last; checkpoint every config.checkpoint_every
    steps, and when a signal asked to stop, then stop (the last step's checkpoint is train()'s). The runs
    share a config but the seed; `before` gives each run's agent its state first (packed seeds')."""
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
