"""A sweep's runs as Ray tasks, on a cluster or on a private Ray instance here. Ray is imported only
here, and only when --ray-address asks for it."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from soft_actor_critic.config import RunError, TrainConfig, first_line, reported
from soft_actor_critic.sweep.task import train_in_sweep

# A Ray 2.60 cluster may require its token; the driver sends ~/.ray/auth_token to a host:port only when told to.
TOKEN_HINT = "; a cluster with token authentication needs RAY_AUTH_MODE=token (and its token in ~/.ray/auth_token)"
NO_CLUSTER = "--ray-address auto found no running Ray cluster: start one with 'ray start --head', or give its host:port"
COUNT_BATCH = 100  # steps a task adds up before it sends them to the sweep's count


@contextlib.contextmanager
def ray_tasks(address: str, groups: int, *, on_gpu: bool) -> Iterator[RayTasks]:
    """RayTasks on the cluster at `address` (joined by check_ray already, for "auto"), shut down after."""
    import ray

    if not ray.is_initialized():
        connect(ray, address)
    try:
        yield RayTasks(ray, groups, on_gpu=on_gpu)
    finally:
        ray.shutdown()


class RayTasks:
    """Each group of runs (task.packed_groups: one run, or seeds packed by --seeds-per-process) as one Ray
    task with one CPU (and a share of the GPUs on a cluster that has some), as many at once as the cluster
    has CPUs; a task whose worker or node dies is retried, and it resumes from its runs' checkpoints."""

    def __init__(self, ray, groups: int, *, on_gpu: bool) -> None:
        """`groups`: how many tasks there will be at most, which share the cluster's GPUs where `on_gpu`."""
        resources = ray.cluster_resources()
        gpus, self.size = resources.get("GPU", 0), max(1, int(resources.get("CPU", 1)))
        gpu_share = min(1.0, gpus / groups) if gpus and on_gpu else 0
        self.ray, self.count = ray, ray.remote(RayCount).options(num_cpus=0).remote()
        self.task = ray.remote(train_counted).options(num_cpus=1, num_gpus=gpu_share, max_retries=3)
        self.running, self.stopping = {}, set()  # {task: its run names}; the tasks cancelled

    def describe(self) -> str:
        return f"as Ray tasks, {self.size} at a time"

    def free(self) -> int:
        return self.size - len(self.running)

    def start(self, group: list[TrainConfig]) -> None:
        self.running[self.task.remote(group, self.count)] = tuple(run.run_name for run in group)

    def stop(self, names: set[str] | None = None) -> None:
        """Cancel each running task (or each with a run in `names`) once: a queued one never starts, and a
        running one gets a KeyboardInterrupt, which its train takes as Ctrl-C, a request to checkpoint and stop
        (a second would abort that checkpoint)."""
        for reference, key in self.running.items():
            if reference not in self.stopping and (names is None or not names.isdisjoint(key)):
                self.ray.cancel(reference)
                self.stopping.add(reference)

    def wait(self) -> list[tuple[tuple[str, ...], float, str]]:
        """The groups that ended within a second: their run names, seconds and outcome."""
        if not self.running:
            return []
        finished, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=1.0)
        ended = []
        for reference in finished:
            names = self.running.pop(reference)
            try:
                (_, seconds, outcome), *_ = self.ray.get(reference)  # a group ends as one
            except Exception as error:  # a task that failed even after its retries, or was cancelled queued
                seconds, outcome = 0.0, "interrupted" if reference in self.stopping else f"error: {first_line(error)}"
            ended.append((names, seconds, outcome))
        return ended

    def steps(self) -> int:
        return self.ray.get(self.count.value.remote())


def connect(ray, address: str) -> None:
    """ray.init at `address`, the workers importing this package from here; a RunError of one line if Ray
    cannot start or be joined."""
    options = {"num_cpus": os.cpu_count()} if address == "local" else {"address": address}
    package_parent = str(Path(__file__).resolve().parents[2])  # where the workers import this package from
    # and the working folder, where a module:EnvId's module may be (environment.import_env_module)
    python_path = os.pathsep.join(filter(None, [package_parent, os.getcwd(), os.environ.get("PYTHONPATH")]))
    options["runtime_env"] = {"env_vars": {"PYTHONPATH": python_path}}
    try:
        ray.init(**options, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except Exception as error:  # ConnectionError, ValueError, RuntimeError...: Ray's own, in one line
        if address == "auto" and isinstance(error, ConnectionError):  # Ray's lookup found no cluster
            raise RunError(NO_CLUSTER) from None
        hint = "" if address == "local" or "RAY_AUTH_MODE" in os.environ else TOKEN_HINT
        raise RunError(f"cannot start or join Ray at {address}: {first_line(error)}{hint}") from None


def check_ray(address: str, seconds: float = 10.0) -> None:
    """A RunError unless Ray is installed and `address` answers, before the sweep writes anything. A
    host:port (or ray://host:port) must answer a TCP connection, for ray.init goes on retrying a wrong one
    for minutes. "auto" is RAY_ADDRESS where that is set, else the cluster `ray start` last started here,
    which only ray.init finds (at once where there is none): the sweep joins it now, and keeps it."""
    try:
        import ray
    except ImportError:
        raise RunError("--ray-address needs Ray: pip install -r requirements-ray.txt") from None
    address = os.environ.get("RAY_ADDRESS", address) if address == "auto" else address
    if address == "auto":
        connect(ray, address)
    elif address != "local":
        host, _, port = address.removeprefix("ray://").rpartition(":")
        if not (host and port.isdigit()):
            raise RunError(f"--ray-address {address} is none of auto, local, host:port or ray://host:port")
        with reported(f"cannot reach Ray at {address}", OSError):
            socket.create_connection((host, int(port)), timeout=seconds).close()


class RayCount:
    """A Ray actor that counts the steps of all the sweep's runs."""

    def __init__(self) -> None:
        self.steps = 0

    def add(self, n: int) -> None:
        self.steps += n

    def value(self) -> int:
        return self.steps


def train_counted(group: list[TrainConfig], count) -> list[tuple[str, float, str]]:
    """A Ray task: train_in_sweep of one run or a packed group, its steps sent to the RayCount actor
    `count` every COUNT_BATCH steps and once more at the end, so that the sweep's bar reaches its total."""
    pending = 0

    def count_steps(n: int) -> None:
        nonlocal pending
        pending += n
        if pending >= COUNT_BATCH:
            count.add.remote(pending)
            pending = 0

    try:
        return train_in_sweep(group, count_steps)
    finally:
        if pending:
            import ray

            ray.get(count.add.remote(pending))  # counted before the task is seen to end
