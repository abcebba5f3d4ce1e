"""Training speed of this project against Stable-Baselines3's SAC (or sb3-contrib's CrossQ), side by
side on this machine.

    pip install -r requirements-bench.txt
    python3 benchmarks/speed.py                       # both envs, 3 runs each
    python3 benchmarks/speed.py --algorithm crossq --envs HalfCheetah-v5 --steps 2000
    python3 benchmarks/speed.py --envs HalfCheetah-v5 --runs 5
    python3 benchmarks/speed.py --device cuda --envs HalfCheetah-v5 --updates-per-step 1 2 4 8

Both libraries train with the same settings (256-256 networks, batch 256, lr 3e-4, automatic
temperature, a 1M replay buffer, 1000 random steps, then one update per env step), each run in a
fresh process, alternating between the two so that a noisy neighbour slows both alike. Each env is
wrapped in the same step timer, so steps/s counts only the training phase: from the end of the
random warm-up to the last step, acting, env stepping and updating included.

With `--device cuda` it measures three things on the same GPU, in one run: this project (each update
and each action a CUDA graph's replay), this project's eager GPU path (`--no-cuda-graphs`) and SB3
with device="cuda"; and this project at each of `--updates-per-step`.

With `--algorithm crossq`, this project's CrossQ against sb3-contrib 2.9.2's, both at CrossQ's defaults
here (config.ALGORITHM_DEFAULTS: a 1024-1024 critic, lr 1e-3, a policy step every 3 updates, batch renorm)
but the same 1000 random steps, so that the timer starts at the same step; no compute limit is printed.

It prints, per env: the median training-phase steps/s of each library, their ratio, this project's
share of the machine's compute limit (FLOPs per env step, counted from the network shapes, against a
matmul throughput measured here at the start), and this project's peak resident memory next to the
replay buffer's own bytes (the buffer is allocated in full at the start). Last, how long
`python3 soft_actor_critic --help` and an argument error take to answer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HIDDEN_UNITS = (256, 256)
BATCH_SIZE = 256
START_STEP = 1000
MEMORY_SIZE = 1_000_000
LIBRARIES = ("soft-actor-critic", "stable-baselines3")
EAGER = "soft-actor-critic-eager"  # on a GPU: this project with --no-cuda-graphs


def timed_env_id(env_name: str, total_steps: int) -> tuple[str, type]:
    """Register `env_name` behind a step timer; returns the new id, which both libraries make, and the timer."""
    import gymnasium as gym

    class StepTimer(gym.Wrapper):
        """Notes the clock when the warm-up's last step returns and when the run's last step returns."""

        steps = 0
        clock: dict[str, float] = {}

        def step(self, action):
            result = self.env.step(action)
            StepTimer.steps += 1
            if StepTimer.steps in (START_STEP, total_steps):
                StepTimer.clock[StepTimer.steps] = time.perf_counter()
            return result

    timed_id = f"Timed{env_name.replace('/', '-')}"
    gym.register(timed_id, entry_point=lambda **kwargs: StepTimer(gym.make(env_name, **kwargs)))
    return timed_id, StepTimer


def train_ours(
    env_id: str,
    total_steps: int,
    seed: int,
    directory: str,
    device: str,
    updates_per_step: int,
    graphs: bool,
    algorithm: str = "sac",
) -> None:
    sys.path.insert(0, str(REPO))
    from soft_actor_critic.config import TrainConfig
    from soft_actor_critic.training import train

    config = TrainConfig(
        env_name=env_id,
        algorithm=algorithm,
        hidden_units=HIDDEN_UNITS,
        batch_size=BATCH_SIZE,
        memory_size=MEMORY_SIZE,
        start_step=START_STEP,
        num_steps=total_steps,
        seed=seed,
        directory=directory,
        eval_every=0,  # SB3 runs no evals here either; and an eval env would tick the shared step timer
        device=device,
        updates_per_step=updates_per_step,
        cuda_graphs=graphs,
    )
    train(config)


def train_sb3(env_id: str, total_steps: int, seed: int, device: str, updates_per_step: int) -> None:
    import gymnasium as gym
    from stable_baselines3 import SAC

    model = SAC(
        "MlpPolicy",
        gym.make(env_id),
        learning_rate=3e-4,
        buffer_size=MEMORY_SIZE,
        learning_starts=START_STEP,
        batch_size=BATCH_SIZE,
        train_freq=1,
        gradient_steps=updates_per_step,
        ent_coef="auto",
        policy_kwargs={"net_arch": list(HIDDEN_UNITS)},
        device=device,
        seed=seed,
        verbose=0,
    )
    model.learn(total_timesteps=total_steps)


def train_sb3_crossq(env_id: str, total_steps: int, seed: int, device: str) -> None:
    import gymnasium as gym
    from sb3_contrib import CrossQ

    sys.path.insert(0, str(REPO))
    from soft_actor_critic.config import TrainConfig

    defaults = TrainConfig(algorithm="crossq")
    model = CrossQ(
        "MlpPolicy",
        gym.make(env_id),
        learning_rate=defaults.learning_rate,
        buffer_size=MEMORY_SIZE,
        learning_starts=START_STEP,
        batch_size=BATCH_SIZE,
        policy_delay=defaults.policy_delay,
        policy_kwargs={"net_arch": {"pi": list(HIDDEN_UNITS), "qf": list(defaults.critic_hidden_units)}},
        device=device,
        seed=seed,
        verbose=0,
    )
    model.learn(total_timesteps=total_steps)


def child(
    library: str, env_name: str, total_steps: int, seed: int, device: str, updates_per_step: int, algorithm: str = "sac"
) -> dict:
    """One training run in this process; returns its figures."""
    env_id, timer = timed_env_id(env_name, total_steps)
    with tempfile.TemporaryDirectory() as directory:
        if library == LIBRARIES[1] and algorithm == "crossq":
            train_sb3_crossq(env_id, total_steps, seed, device)
        elif library == LIBRARIES[1]:
            train_sb3(env_id, total_steps, seed, device, updates_per_step)
        else:
            graphs = library != EAGER
            train_ours(env_id, total_steps, seed, directory, device, updates_per_step, graphs, algorithm)
    import gymnasium as gym

    env = gym.make(env_name)
    observation_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    row_bytes = 4 * (2 * observation_dim + action_dim + 2)  # float32 obs, next obs, action, reward, terminated
    return {
        "sps": (total_steps - START_STEP) / (timer.clock[total_steps] - timer.clock[START_STEP]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "buffer_mb": MEMORY_SIZE * row_bytes / 2**20,
        "flops_per_step": flops_per_step(observation_dim, action_dim),
    }


def mlp_macs(widths: tuple[int, ...]) -> tuple[int, int]:
    """Multiply-adds per sample of a forward pass through all layers, and through the first one."""
    macs = [width_in * width_out for width_in, width_out in zip(widths[:-1], widths[1:])]
    return sum(macs), macs[0]


def flops_per_step(observation_dim: int, action_dim: int) -> float:
    """Matmul FLOPs of one SAC update on one batch, plus one acting forward pass.

    Critic step: policy forward on s' and target critics forward (no grad), critics forward and
    backward (weight gradients everywhere, input gradients below the first layer). Policy step:
    policy forward, critics forward and backward to the actions only (no critic weight gradients),
    policy backward. A backward pass costs one forward per gradient kind it computes.
    """
    policy, policy_first = mlp_macs((observation_dim, *HIDDEN_UNITS, 2 * action_dim))
    critic, critic_first = mlp_macs((observation_dim + action_dim, *HIDDEN_UNITS, 1))
    critic_step = policy + 2 * critic + 2 * critic + 2 * critic + 2 * (critic - critic_first)
    policy_step = policy + 2 * critic + 2 * critic + policy + (policy - policy_first)
    return 2.0 * (BATCH_SIZE * (critic_step + policy_step) + policy)


def matmul_gflops(size: int = HIDDEN_UNITS[0], repeats: int = 7, iterations: int = 300) -> float:
    """The best of several timings of a size^3 fp32 matmul with torch's default threads, in GFLOP/s."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iterations):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - start) / iterations)
    return 2 * size**3 / best / 1e9


def run_child(
    library: str,
    env_name: str,
    total_steps: int,
    seed: int,
    device: str,
    updates_per_step: int = 1,
    algorithm: str = "sac",
) -> dict:
    command = [sys.executable, __file__, "--child", library, "--envs", env_name, "--steps", str(total_steps)]
    command += ["--seed", str(seed), "--device", device, "--updates-per-step", str(updates_per_step)]
    command += ["--algorithm", algorithm]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.exit(f"{library} on {env_name} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=["LunarLanderContinuous-v3", "HalfCheetah-v5"])
    parser.add_argument("--runs", type=int, default=3, help="runs of each library per env")
    parser.add_argument("--steps", type=int, default=6000, help="env steps per run, the 1000 warm-up steps included")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--updates-per-step", type=int, nargs="+", default=[1], help="on a GPU, also time this project at each of these"
    )
    parser.add_argument("--algorithm", choices=("sac", "crossq"), default="sac", help="against sb3-contrib's CrossQ")
    parser.add_argument("--child", choices=(*LIBRARIES, EAGER), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        updates_per_step = args.updates_per_step[0]
        figures = child(args.child, args.envs[0], args.steps, args.seed, args.device, updates_per_step, args.algorithm)
        print(json.dumps(figures))
        return
    if args.device == "cuda":
        gpu_main(args)
        return

    import torch

    gflops = matmul_gflops()
    print(f"{machine()}; torch {torch.__version__} with {torch.get_num_threads()} threads")
    print(f"{HIDDEN_UNITS[0]}^3 fp32 matmul: {gflops:.0f} GFLOP/s")
    print(f"{args.runs} runs per library and env, {args.steps} steps each ({START_STEP} of warm-up)\n")
    rows = []
    for env_name in args.envs:
        results: dict[str, list[dict]] = {library: [] for library in LIBRARIES}
        for run in range(args.runs):
            for library in LIBRARIES if run % 2 == 0 else LIBRARIES[::-1]:
                result = run_child(library, env_name, args.steps, args.seed + run, "cpu", 1, args.algorithm)
                results[library].append(result)
                print(f"  {env_name} run {run + 1} {library}: {result['sps']:.1f} steps/s", flush=True)
        ours, sb3 = (statistics.median(r["sps"] for r in results[library]) for library in LIBRARIES)
        flops = results[LIBRARIES[0]][0]["flops_per_step"]
        limit = gflops * 1e9 / flops
        peak = max(r["peak_rss_mb"] for r in results[LIBRARIES[0]])
        buffer = results[LIBRARIES[0]][0]["buffer_mb"]
        rows.append((env_name, ours, sb3, ours / sb3, 100 * ours / limit, limit, flops, peak, buffer))
    print()
    if args.algorithm == "crossq":  # flops_per_step counts SAC's networks: no compute limit here
        print("| env | soft-actor-critic CrossQ steps/s | sb3-contrib CrossQ steps/s | ratio |")
        print("|---|---:|---:|---:|")
        for env_name, ours, sb3, ratio, *_ in rows:
            print(f"| {env_name} | {ours:.1f} | {sb3:.1f} | {ratio:.2f}x |")
        return
    print("| env | soft-actor-critic steps/s | SB3 steps/s | ratio | % of compute limit |")
    print("|---|---:|---:|---:|---:|")
    for env_name, ours, sb3, ratio, share, *_ in rows:
        print(f"| {env_name} | {ours:.0f} | {sb3:.0f} | {ratio:.2f}x | {share:.0f} % |")
    print()
    for env_name, _, _, _, _, limit, flops, peak, buffer in rows:
        print(
            f"{env_name}: {flops / 1e6:.0f} MFLOP per step, so at most {limit:.0f} steps/s here; "
            f"peak RSS {peak:.0f} MB = the {MEMORY_SIZE}-row buffer's {buffer:.0f} MB + {peak - buffer:.0f} MB"
        )
    for argv in (["--help"], ["train", "--batch-size", "0"]):
        print(f"python3 soft_actor_critic {' '.join(argv)}: answers in {command_seconds(argv):.2f} s (median of 5)")


def gpu_main(args: argparse.Namespace) -> None:
    """This project with CUDA graphs, its eager GPU path and SB3, alternating run by run on one GPU; then
    this project at each --updates-per-step."""
    import torch

    print(f"{torch.cuda.get_device_name()}; {machine()}; torch {torch.__version__}")
    print(f"{args.runs} runs per library and env, {args.steps} steps each ({START_STEP} of warm-up)\n")
    libraries = (LIBRARIES[0], EAGER, LIBRARIES[1])
    rows = []
    for env_name in args.envs:
        results: dict[str, list[float]] = {library: [] for library in libraries}
        for run in range(args.runs):
            for library in libraries if run % 2 == 0 else libraries[::-1]:
                sps = run_child(library, env_name, args.steps, args.seed + run, "cuda")["sps"]
                results[library].append(sps)
                print(f"  {env_name} run {run + 1} {library}: {sps:.1f} steps/s", flush=True)
        ours, eager, sb3 = (statistics.median(results[library]) for library in libraries)
        rows.append((env_name, ours, eager, sb3))
    print()
    print("| env | soft-actor-critic (CUDA graphs) | eager | SB3 | vs eager | vs SB3 |")
    print("|---|---:|---:|---:|---:|---:|")
    for env_name, ours, eager, sb3 in rows:
        print(f"| {env_name} | {ours:.0f} | {eager:.0f} | {sb3:.0f} | {ours / eager:.2f}x | {ours / sb3:.2f}x |")
    for env_name in args.envs:
        for updates_per_step in [n for n in args.updates_per_step if n != 1]:
            sps = run_child(LIBRARIES[0], env_name, args.steps, args.seed, "cuda", updates_per_step)["sps"]
            print(f"{env_name} with --updates-per-step {updates_per_step}: {sps:.0f} env steps/s", flush=True)


def command_seconds(argv: list[str], repeats: int = 5) -> float:
    """Median wall time of `repeats` runs of the command line, interpreter start included."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "soft_actor_critic"), *argv], capture_output=True)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def machine() -> str:
    """CPU model and core count, as Linux reports them."""
    cpuinfo = Path("/proc/cpuinfo")
    models = [
        line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
    ]
    return f"{models[0] if models else platform.processor()}, {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
