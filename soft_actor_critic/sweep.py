"""Sweeps: every combination of the values given to train's flags, each an ordinary run folder inside
<directory>/<sweep-name>, trained by worker processes on this machine or by Ray tasks on a cluster; and
the summary table of the runs' final evals.

A sweep runs the same train() a user runs, and running the same command again continues it: finished
runs are kept, unfinished ones resume from their checkpoints, missing ones start. Ray is imported only
when --ray-address asks for it.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import itertools
import json
import multiprocessing
import multiprocessing.connection
import os
import shlex
import shutil
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from soft_actor_critic import console
from soft_actor_critic.config import ConfigError, Interrupted, RunError, SweepConfig, TrainConfig, first_line
from soft_actor_critic.runs import CHECKPOINT_FILE, load_checkpoint, locked, read_eval_rows, write_atomically

MANIFEST_FILE = "sweep.json"  # the grid, so that a second command with another grid is refused
SUMMARY_FILE = "summary.csv"
WALL_TIMES_FILE = "wall_times.json"  # seconds each run has trained, over every command that ran it
LOG_FOLDER = "logs"  # <run name>.log: what each run printed
HOW_RUN = ("device", "cuda_graphs", "checkpoint_every", "save_buffer")  # may differ when a sweep is continued


def sweep(config: SweepConfig, grid: dict) -> None:
    """Train every run of the grid that has not finished, then print and write the summary."""
    sweep_dir = Path(grid["directory"]) / config.sweep_name
    if config.summary:  # of the grid the sweep was run with, whatever the other flags say
        summarize(sweep_dir, expand(read_manifest(sweep_dir), sweep_dir))
        return
    runs = expand(grid, sweep_dir)
    from soft_actor_critic.environment import check_env_id  # gymnasium's registry, without making an env

    for env_name in dict.fromkeys(run.env_name for run in runs):
        check_env_id(env_name)
    if config.ray_address:  # before anything is written: a wrong address leaves no sweep folder behind
        check_ray(config.ray_address)
    write_manifest(sweep_dir, grid)
    done = [min(checkpoint_step(run) or 0, run.num_steps) for run in runs]  # each checkpoint read once
    todo = [run for run, steps in zip(runs, done) if steps < run.num_steps]
    console.say(f"sweep {sweep_dir}: {len(runs)} runs, {len(runs) - len(todo)} finished already")
    if todo:
        start = time.perf_counter()
        backend = run_on_ray if config.ray_address else run_locally
        backend(todo, config, sweep_dir, sum(run.num_steps for run in runs), sum(done))
        console.say(f"sweep {sweep_dir}: trained in {(time.perf_counter() - start) / 60:.1f} min")
    summarize(sweep_dir, runs)


def expand(grid: dict, sweep_dir: Path) -> list[TrainConfig]:
    """Every combination of the grid's values (a ConfigError for any that train would refuse), each run
    named after the settings that vary, the seed last: Pendulum-v1_learning-rate=0.001_seed=2."""
    names = [name for name in grid if name != "directory"]
    values = [grid[name] if isinstance(grid[name], list) else [grid[name]] for name in names]
    varying = sorted((name for name, options in zip(names, values) if len(options) > 1), key=lambda n: n == "seed")
    for name, options in zip(names, values):
        if len(set(options)) < len(options):
            raise ConfigError(f"--{name.replace('_', '-')} lists a value twice")
    runs = []
    for combination in itertools.product(*values):
        settings = dict(zip(names, combination))
        parts = [f"{name.replace('_', '-')}={text(settings[name])}" for name in varying if name != "env_name"]
        env = settings["env_name"].replace("/", "-")
        run_name = "_".join([env] * ("env_name" in varying or not parts) + parts)
        runs.append(TrainConfig(**settings, directory=str(sweep_dir), run_name=run_name))
    return runs


def text(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def saved_grid(path: Path) -> dict:
    """The grid in a sweep's manifest, as JSON holds it (lists for tuples); a damaged file is a RunError."""
    try:
        grid = json.loads(path.read_text())["grid"]
        if not isinstance(grid, dict):
            raise TypeError(f"its grid is a {type(grid).__name__}, not a dict")
        return grid
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RunError(f"{path} is not a valid sweep manifest: {first_line(error)}") from None


def read_manifest(sweep_dir: Path) -> dict:
    """The grid a sweep was run with, as expand() takes it."""
    path = sweep_dir / MANIFEST_FILE
    if not path.is_file():
        raise RunError(f"{sweep_dir} is not a sweep (no {MANIFEST_FILE}): run the sweep first")
    return {
        name: [tuple(v) if isinstance(v, list) else v for v in values] if isinstance(values, list) else values
        for name, values in saved_grid(path).items()
    }


def write_manifest(sweep_dir: Path, grid: dict) -> None:
    """Write the grid into the sweep folder; a folder that holds another grid (or no sweep) is refused."""
    manifest = {name: json.loads(json.dumps(values)) for name, values in grid.items() if name != "directory"}
    path = sweep_dir / MANIFEST_FILE
    if path.is_file():
        saved = saved_grid(path)
        for name, values in manifest.items():
            if name not in HOW_RUN and saved.get(name) != values:
                flag = f"--{name.replace('_', '-')}"
                raise RunError(
                    f"{sweep_dir} is a sweep of another grid ({flag} {saved.get(name)} there, {values} now): "
                    "continue it with its own flags, or choose another --sweep-name"
                )
    elif sweep_dir.exists() and not sweep_dir.is_dir():
        raise RunError(f"{sweep_dir} is a file, not a sweep: choose another --sweep-name")
    elif sweep_dir.exists() and any(sweep_dir.iterdir()):
        raise RunError(f"{sweep_dir} exists and is not a sweep (no {MANIFEST_FILE}): choose another --sweep-name")
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot create the sweep folder {sweep_dir}: {error.strerror}") from None
    write_atomically(path, lambda file: file.write((json.dumps({"grid": manifest}, indent=2) + "\n").encode()))


def checkpoint_step(run: TrainConfig) -> int | None:
    """The step of the run's checkpoint; None if it has none (not started, or stopped before its first)."""
    run_dir = Path(run.directory) / run.run_name
    return int(load_checkpoint(run_dir)["step"]) if (run_dir / CHECKPOINT_FILE).is_file() else None


def train_run(run: TrainConfig, counter=None) -> tuple[str, float, str]:
    """Train or continue one run of a sweep, its output going to <sweep>/logs/<run>.log; returns its
    name, how long it trained, and how it ended: "finished", "interrupted" or the error it stopped on."""
    from soft_actor_critic.train import train  # gymnasium and the training code load in the worker only

    if counter is not None:
        console.step_counter = counter
    run_dir = Path(run.directory) / run.run_name
    step = checkpoint_step(run)
    if step is not None and step >= run.num_steps:
        return run.run_name, 0.0, "finished"
    start = time.perf_counter()
    with output_to(Path(run.directory) / LOG_FOLDER / f"{run.run_name}.log"):
        try:
            if step is None and run_dir.exists():  # stopped before its first checkpoint: nothing to continue from
                with locked(run_dir):  # unless another process is training it now
                    shutil.rmtree(run_dir)
            train(run, resume=step is not None)
            outcome = "finished"
        except Interrupted:
            outcome = "interrupted"
        except RunError as error:
            print(f"error: {error}", file=sys.stderr)  # into the run's log: a local worker reports only its exit code
            outcome = f"error: {error}"
        except Exception as error:  # a bug: its traceback goes to the run's log, the sweep goes on
            traceback.print_exc()
            outcome = f"error: {first_line(error)}"
    return run.run_name, time.perf_counter() - start, outcome


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr, file descriptors included, to the end of `path`."""
    path.parent.mkdir(exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "a") as log:
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


class SharedCount:
    """Steps counted across the local workers, in shared memory."""

    def __init__(self, value) -> None:
        self.value = value

    def add(self, n: int) -> None:
        with self.value.get_lock():
            self.value.value += n


EXIT_CODES = {"finished": 0, "interrupted": 3}  # a local worker's; 1 for a run stopped by an error
OUTCOMES = {code: outcome for outcome, code in EXIT_CODES.items()}


def worker(run: TrainConfig, threads: int, count) -> None:
    """A local worker process, one per run: torch gets its share of the cores, and Ctrl-C is left to the
    sweep, which asks each run to stop with one SIGTERM (a second signal would stop it before its checkpoint)."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    outcome = train_run(run, SharedCount(count))[2]
    sys.exit(EXIT_CODES.get(outcome, 1))


def run_locally(runs: list[TrainConfig], config: SweepConfig, sweep_dir: Path, total: int, done: int) -> None:
    """At most --workers runs at once, each in a fresh process of its own: one that dies (killed, out of
    memory) costs only its own run, back to that run's last checkpoint."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(config.workers or cores, len(runs))
    threads = max(1, cores // workers)
    console.say(f"{len(runs)} runs to train, {workers} at a time, each with {threads} thread{'s' * (threads > 1)}")
    context = multiprocessing.get_context("spawn")  # a fresh interpreter per run: no threads or CUDA state inherited
    count, queue, running, outcomes = context.Value("q", 0), list(runs), {}, {}
    pids = lambda: [process.pid for process, _ in running.values()]  # noqa: E731
    with stop_requests(pids) as stop, console.progress_bar(total, done) as bar:
        while running or (queue and stop.signum is None):  # once asked to stop, no run starts
            while queue and len(running) < workers and stop.signum is None:
                run = queue.pop(0)
                running[run.run_name] = (context.Process(target=worker, args=(run, threads, count)), time.time())
                running[run.run_name][0].start()
            multiprocessing.connection.wait([process.sentinel for process, _ in running.values()], timeout=1.0)
            for name, (process, started) in list(running.items()):
                if process.exitcode is not None:
                    del running[name]
                    outcome = outcome_of(process.exitcode, stopping=stop.signum is not None)
                    record(sweep_dir, outcomes, name, time.time() - started, outcome)
            bar.update(count.value + done - bar.n)
            bar.set_postfix(runs=f"{len(outcomes)} done, {len(running)} running, {len(queue)} queued", refresh=False)
    conclude(outcomes, len(runs), stop)


def outcome_of(exitcode: int, stopping: bool) -> str:
    """How a worker's run ended. The sweep's own SIGTERM, when asked to stop, can reach a worker before its
    run has set up its handler: that run is interrupted (with no checkpoint, it starts over next time)."""
    if stopping and exitcode == -signal.SIGTERM:
        return "interrupted"
    if exitcode < 0:
        return f"error: killed by {signal.Signals(-exitcode).name}"
    return OUTCOMES.get(exitcode, "error")


def run_on_ray(runs: list[TrainConfig], config: SweepConfig, sweep_dir: Path, total: int, done: int) -> None:
    """Each run is one Ray task with one CPU (and a share of the GPUs on a cluster that has some); a task
    whose worker or node dies is retried, and it resumes from the run's checkpoint."""
    import ray

    options = {"num_cpus": os.cpu_count()} if config.ray_address == "local" else {"address": config.ray_address}
    package_parent = str(Path(__file__).resolve().parent.parent)  # where the workers import this package from
    runtime_env = {
        "env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    }
    try:
        ray.init(
            **options, runtime_env=runtime_env, include_dashboard=False, log_to_driver=False, logging_level="ERROR"
        )
    except Exception as error:  # ConnectionError, ValueError, RuntimeError...: Ray's own, in one line
        hint = "" if config.ray_address == "local" or "RAY_AUTH_MODE" in os.environ else TOKEN_HINT
        raise RunError(f"cannot start or join Ray at {config.ray_address}: {first_line(error)}{hint}") from None
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        gpu_share = min(1.0, gpus / len(runs)) if gpus and runs[0].device != "cpu" else 0
        count = ray.remote(RayCount).options(num_cpus=0).remote()
        task = ray.remote(train_run).options(num_cpus=1, num_gpus=gpu_share, max_retries=3)
        pending = {task.remote(run, BatchedCount(count)) for run in runs}
        with stop_requests(lambda: []) as stop:
            follow_ray(ray, pending, len(runs), total, done, lambda: ray.get(count.value.remote()), stop, sweep_dir)
    finally:
        ray.shutdown()


# A Ray 2.60 cluster may require its token; the driver sends ~/.ray/auth_token to a host:port only when told to.
TOKEN_HINT = "; a cluster with token authentication needs RAY_AUTH_MODE=token (and its token in ~/.ray/auth_token)"


def check_ray(address: str, seconds: float = 10.0) -> None:
    """A RunError unless Ray is installed and a host:port (or ray://host:port) address answers a TCP
    connection: ray.init itself goes on retrying a wrong address for minutes."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise RunError("--ray-address needs Ray: pip install -r requirements-ray.txt") from None
    if address == "local":
        return
    if address == "auto":  # Ray's own lookup: RAY_ADDRESS, else the cluster `ray start` last started here
        from ray._private.services import canonicalize_bootstrap_address_or_die

        try:
            address = canonicalize_bootstrap_address_or_die("auto")
        except ConnectionError:
            raise RunError(
                "--ray-address auto found no running Ray cluster: start one with 'ray start --head', "
                "or give its host:port"
            ) from None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not (host and port.isdigit()):
        raise RunError(f"--ray-address {address} is none of auto, local, host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as error:
        raise RunError(f"cannot reach Ray at {address}: {error.strerror or first_line(error)}") from None


class RayCount:
    """A Ray actor that counts the steps of all the sweep's runs."""

    def __init__(self) -> None:
        self.steps = 0

    def add(self, n: int) -> None:
        self.steps += n

    def value(self) -> int:
        return self.steps


class BatchedCount:
    """Adds to a RayCount every 100 steps, not at every one."""

    def __init__(self, actor) -> None:
        self.actor, self.pending = actor, 0

    def add(self, n: int) -> None:
        self.pending += n
        if self.pending >= 100:
            self.actor.add.remote(self.pending)
            self.pending = 0


@dataclasses.dataclass
class StopRequest:
    signum: int | None = None


@contextlib.contextmanager
def stop_requests(worker_pids: Callable[[], list[int]]) -> Iterator[StopRequest]:
    """Ctrl-C or SIGTERM asks every running run to checkpoint and stop (each worker gets one SIGTERM);
    the runs not started yet are not started."""
    request = StopRequest()

    def handle(signum, frame):
        if request.signum is None:
            request.signum = signum
            for pid in worker_pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def follow_ray(ray, pending, runs: int, total: int, done: int, counted, stop: StopRequest, sweep_dir: Path) -> None:
    """One progress bar for the sweep while its Ray tasks train; record their wall times."""
    outcomes, start = {}, counted()
    with console.progress_bar(total, done) as bar:
        while pending:
            finished, rest = ray.wait(list(pending), num_returns=1, timeout=1.0)
            pending = set(rest)
            for reference in finished:
                try:
                    record(sweep_dir, outcomes, *ray.get(reference))
                except Exception as error:  # a task that failed even after its retries
                    outcomes[f"a task ({len(outcomes)})"] = f"error: {first_line(error)}"
            if stop.signum is not None:
                for reference in pending:
                    ray.cancel(reference)  # a queued task never starts; a running one gets a KeyboardInterrupt
            steps = counted()
            bar.update(steps - start)
            start = steps
            bar.set_postfix(runs=f"{len(outcomes)} done, {len(pending)} running or queued", refresh=False)
    conclude(outcomes, runs, stop)


def record(sweep_dir: Path, outcomes: dict, name: str, seconds: float, outcome: str) -> None:
    """Note how a run ended, and add its time to the sweep's wall_times.json."""
    outcomes[name] = outcome
    path = sweep_dir / WALL_TIMES_FILE
    times = read_wall_times(path)
    times[name] = times.get(name, 0.0) + seconds
    write_atomically(path, lambda file: file.write((json.dumps(times, indent=2) + "\n").encode()))
    if outcome.startswith("error"):
        console.say(f"{name}: stopped on an {outcome} (its log: {sweep_dir / LOG_FOLDER / name}.log)")


def read_wall_times(path: Path) -> dict[str, float]:
    """The seconds each run has trained ({} before the first has ended); a damaged file is a RunError."""
    if not path.is_file():
        return {}
    try:
        times = json.loads(path.read_text())
        if not isinstance(times, dict) or not all(isinstance(value, (int, float)) for value in times.values()):
            raise ValueError("not a mapping of run names to seconds")
        return times
    except (OSError, ValueError) as error:
        raise RunError(f"{path} is not a valid record of wall times: {first_line(error)}") from None


def conclude(outcomes: dict, runs: int, stop: StopRequest) -> None:
    """After the runs: a stopped sweep raises Interrupted with the command that continues it, and one
    with runs that failed or did not run a RunError."""
    command = "soft-actor-critic " + shlex.join(sys.argv[1:])
    if stop.signum is not None:
        name = signal.Signals(stop.signum).name
        raise Interrupted(f"{name}: the running runs checkpointed; continue with: {command}", stop.signum)
    unfinished = runs - sum(outcome == "finished" for outcome in outcomes.values())
    if unfinished:
        raise RunError(f"{unfinished} of {runs} runs did not finish; the same command continues them: {command}")


def summarize(sweep_dir: Path, runs: list[TrainConfig]) -> None:
    """Print the summary table, one row a setting (its seeds together), and write it to summary.csv."""
    times = read_wall_times(sweep_dir / WALL_TIMES_FILE)
    settings: dict[str, list[TrainConfig]] = {}
    for run in runs:
        settings.setdefault(setting_name(run), []).append(run)
    rows = []
    for name, members in settings.items():
        finals = [final_eval(run) for run in members]
        finals = np.array([value for value in finals if value is not None])
        row = {"setting": name, "seeds": len(finals), "of": len(members), "evals": members[0].eval_every > 0}
        if len(finals):
            iqm, low, high = iqm_with_interval(finals)
            row |= {"mean": finals.mean(), "std": finals.std(), "iqm": iqm, "iqm_low": low, "iqm_high": high}
            row["per_seed"] = " / ".join(f"{value:.1f}" for value in finals)
        minutes = [times[run.run_name] / 60 for run in members if run.run_name in times]
        row["minutes_per_run"] = sum(minutes) / len(minutes) if minutes else float("nan")
        rows.append(row)
    write_summary(sweep_dir / SUMMARY_FILE, rows)
    print_summary(rows, sweep_dir / SUMMARY_FILE)


def setting_name(run: TrainConfig) -> str:
    """The run's name without its seed: what the seeds of one setting share."""
    parts = [part for part in run.run_name.split("_") if not part.startswith("seed=")]
    return "_".join(parts) or run.env_name


def final_eval(run: TrainConfig) -> float | None:
    """The mean return of the run's eval at its last step; None until it has one."""
    rows = read_eval_rows(Path(run.directory) / run.run_name)
    return rows[-1]["return_mean"] if rows and rows[-1]["step"] == run.num_steps else None


def iqm_with_interval(finals: np.ndarray) -> tuple[float, float, float]:
    """The interquartile mean over seeds and its 95% percentile-bootstrap confidence interval (rliable's
    recommendation, Agarwal et al. 2021), by scipy; the interval is NaN with fewer than two seeds."""
    from scipy import stats

    iqm = float(stats.trim_mean(finals, 0.25))
    if len(finals) < 2:
        return iqm, float("nan"), float("nan")
    if np.ptp(finals) == 0:  # all seeds equal: scipy's bootstrap would give NaN and a warning
        return iqm, iqm, iqm
    interval = stats.bootstrap(
        (finals,),
        lambda sample, axis: stats.trim_mean(sample, 0.25, axis=axis),
        confidence_level=0.95,
        method="percentile",
        n_resamples=10_000,
        random_state=0,
    ).confidence_interval
    return iqm, float(interval.low), float(interval.high)


SUMMARY_COLUMNS = ("setting", "seeds", "of", "mean", "std", "iqm", "iqm_low", "iqm_high", "per_seed", "minutes_per_run")


def write_summary(path: Path, rows: list[dict]) -> None:
    text_file = io.StringIO()
    writer = csv.DictWriter(text_file, SUMMARY_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, lambda file: file.write(text_file.getvalue().encode()))


def print_summary(rows: list[dict], path: Path) -> None:
    print("| setting | seeds | final eval, mean ± std | IQM [95% CI] | per seed | wall time per run |")
    print("|---|---:|---|---|---|---:|")
    for row in rows:
        if not row["seeds"]:
            missing = "not finished" if row["evals"] else "no evals (--eval-every 0)"
            print(f"| {row['setting']} | 0 of {row['of']} | {missing} | | | |")
            continue
        iqm = f"{row['iqm']:.1f} [{row['iqm_low']:.1f}, {row['iqm_high']:.1f}]"
        print(
            f"| {row['setting']} | {row['seeds']} of {row['of']} | {row['mean']:.1f} ± {row['std']:.1f} | {iqm} "
            f"| {row['per_seed']} | {row['minutes_per_run']:.1f} min |"
        )
    print(f"wrote {path}")
