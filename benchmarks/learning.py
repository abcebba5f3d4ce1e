"""Sample efficiency against Stable-Baselines3: both trained on the same seeds with the same
hyperparameters and evaluated the same way, at several step budgets of one env.

    pip install -r requirements-bench.txt
    python3 benchmarks/learning.py --env-name Pendulum-v1 --budgets 5000 10000 20000 --eval-every 1000
    python3 benchmarks/learning.py --env-name HalfCheetah-v5 --budgets 100000 --seeds 1 2 3 4
    python3 benchmarks/learning.py --env-name LunarLanderContinuous-v3 --budgets 100000 300000 --seeds 1 2 3 4 5 6
    python3 benchmarks/learning.py --algorithm crossq --env-name Pendulum-v1 --budgets 5000 10000 --eval-every 1000

This project trains by `sweep` (<directory>/<label>/<env>, run folders seed=<S>; seeds added by a later
command go to a sweep of their own beside it, <env>_seeds=5-6) with the seed's defaults:
256-256 networks, batch 256, 1000 random steps, lr 3e-4, tau 0.005, gamma 0.99, alpha starting at 0.2
and tuned. SB3 2.9.2's SAC gets the same (ent_coef="auto_0.2"), one process per core with one torch
thread each, and its evals go to <directory>/sb3/<env>/seed=<S>/eval.csv. With --algorithm crossq, this
project's CrossQ runs against sb3-contrib 2.9.2's CrossQ (<directory>/sb3-crossq/...) at the resolved
defaults of TrainConfig(algorithm="crossq"): 1024-1024 critic, lr 1e-3, 100 random steps, beta1 0.5, a
policy step every 3 updates, batch renorm momentum 0.01, eps 1e-3, warm-up 100,000, and alpha from 0.2.
Both are evaluated every --eval-every steps by the same code: 10 episodes with deterministic actions,
the first reset seeded with the run's eval seed (Seeds.of(seed).eval_env), so a seed's two runs play the same episodes.

It prints, per budget, each seed's eval return, the mean, and the interquartile mean with a 95% bootstrap
confidence interval over seeds, and draws the curves to docs/learning_<env>.png (to learning_<env>.png in
--directory when that is not the default, so that a trial never replaces the README's). Stopped and started
again, it continues: the sweep from its checkpoints, SB3 from its own (model and replay buffer every
--checkpoint-every steps and at the end; a resumed SB3 run continues with fresh random streams, and one
whose evals reach the budget is not trained again). --compare adds runs of
another label already on disk, such as those of an older commit, to the table and the figure; --only
trains one side, or none. Seeds in a multiple of the cores keep every core busy to the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from multiprocessing import connection, get_context
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from soft_actor_critic.config import TrainConfig  # noqa: E402  (after the path that finds it)
from soft_actor_critic.runs import read_eval_rows, write_eval_rows  # noqa: E402
from soft_actor_critic.sweep.grid import MANIFEST_FILE, read_manifest  # noqa: E402
from soft_actor_critic.sweep.summary import iqm_with_interval  # noqa: E402

CLI = [sys.executable, "-m", "soft_actor_critic"]
SB3_LABELS = {"sac": "sb3", "crossq": "sb3-crossq"}  # the folder of SB3's (sb3-contrib's) runs, by algorithm
DIRECTORY = "runs/learning"


def sweeps_of(args: argparse.Namespace, label: str) -> dict[str, list[int]]:
    """{sweep name: its seeds} of this env under a label that hold the seeds asked for: the sweeps already
    there that hold any of them, then a new one for the rest, named <env> or, where that exists,
    <env>_seeds=5-6 (a sweep never takes seeds other than its own)."""
    folder, env_name = Path(args.directory) / label, args.env_name
    sweeps = {}
    for sweep_dir in [folder / env_name, *sorted(folder.glob(f"{env_name}_seeds=*"))]:
        if not (sweep_dir / MANIFEST_FILE).is_file():
            continue
        held = read_manifest(sweep_dir)["seed"]
        if set(held) & set(args.seeds):
            sweeps[sweep_dir.name] = held
    rest = [seed for seed in args.seeds if not any(seed in held for held in sweeps.values())]
    if rest:
        name = f"{env_name}_seeds={'-'.join(map(str, rest))}" if (folder / env_name).exists() else env_name
        sweeps[name] = rest
    return sweeps


def folders_of(args: argparse.Namespace, label: str) -> list[Path]:
    """The run folders of a label's seeds, in the order asked for."""
    if label in SB3_LABELS.values():
        return [Path(args.directory, label, args.env_name, f"seed={seed}") for seed in args.seeds]
    sweep_of = {seed: name for name, seeds in sweeps_of(args, label).items() for seed in seeds}
    return [Path(args.directory, label, sweep_of[seed], f"seed={seed}") for seed in args.seeds]


def train_ours(args: argparse.Namespace) -> None:
    for sweep_name, seeds in sweeps_of(args, args.label).items():
        command = ["sweep", "--directory", str(Path(args.directory) / args.label), "--sweep-name", sweep_name]
        command += ["--env-name", args.env_name, "--algorithm", args.algorithm, "--num-steps", str(max(args.budgets))]
        command += ["--eval-every", str(args.eval_every), "--seed", *map(str, seeds)]
        print("$ python3 soft_actor_critic " + " ".join(command), flush=True)
        if subprocess.run([*CLI, *command], cwd=ROOT).returncode:
            sys.exit("the sweep did not finish; its error is above, and the same command continues it")


def train_sb3(args: argparse.Namespace) -> None:
    """SB3's runs, one process per core; SIGTERM, like Ctrl-C, ends them with the script."""
    cores = len(os.sched_getaffinity(0))
    settings = (max(args.budgets), args.eval_every, args.checkpoint_every, args.directory, args.algorithm)
    print(f"SB3: {len(args.seeds)} runs, {cores} at once with one torch thread each", flush=True)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    context, queue, running = get_context("spawn"), list(args.seeds), []
    try:
        while queue or running:
            while queue and len(running) < cores:
                running.append(context.Process(target=sb3_run, args=(args.env_name, queue.pop(0), *settings)))
                running[-1].start()
            connection.wait([process.sentinel for process in running])
            for process in [process for process in running if process.exitcode is not None]:
                running.remove(process)
                if process.exitcode:
                    sys.exit(f"an SB3 run failed (exit code {process.exitcode}); its error is above")
    finally:
        for process in running:
            process.terminate()


def sb3_class(algorithm: str):
    """SB3's SAC, or sb3-contrib's CrossQ."""
    if algorithm == "crossq":
        from sb3_contrib import CrossQ

        return CrossQ
    from stable_baselines3 import SAC

    return SAC


def sb3_model(env, seed: int, algorithm: str):
    """SB3's SAC, or sb3-contrib's CrossQ, on the CPU with this project's defaults for the algorithm, read
    from TrainConfig: the same networks, step sizes, warm-up, batch and starting temperature."""
    defaults = TrainConfig(algorithm=algorithm)
    settings = {
        "learning_rate": defaults.learning_rate,
        "buffer_size": defaults.memory_size,
        "learning_starts": defaults.start_step,
        "batch_size": defaults.batch_size,
        "gamma": defaults.gamma,
        "ent_coef": f"auto_{defaults.alpha}",
        "train_freq": 1,
        "gradient_steps": defaults.updates_per_step,
        "device": "cpu",
        "seed": seed,
    }
    if algorithm == "crossq":  # no target critic: no tau; the batch renorm and Adam settings are its defaults
        settings |= {"policy_delay": defaults.policy_delay}
        net_arch = {"pi": list(defaults.hidden_units), "qf": list(defaults.critic_hidden_units)}
        settings["policy_kwargs"] = {
            "net_arch": net_arch,
            "batch_norm_momentum": defaults.renorm_momentum,
            "batch_norm_eps": defaults.renorm_eps,
            "renorm_warmup_steps": defaults.renorm_warmup,
            "optimizer_kwargs": {"betas": (defaults.adam_beta1, 0.999)},
        }
    else:
        settings |= {"tau": defaults.tau, "policy_kwargs": {"net_arch": list(defaults.hidden_units)}}
    return sb3_class(algorithm)("MlpPolicy", env, **settings)


class SB3Policy(torch.nn.Module):
    """An SB3 model's policy behind the interface that `evaluate.rollout` drives."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model, self.sb3_policy = model, model.policy  # the module, so that parameters() finds its device

    def act(self, observations: torch.Tensor, deterministic: bool) -> torch.Tensor:
        return torch.as_tensor(self.model.predict(observations.numpy(), deterministic=deterministic)[0])


def load_run(run_dir: Path, wrapper):
    """A run folder's seed, its env wrapped by `wrapper`, and its last policy: this project's run (its config
    says the rest) or SB3's (<directory>/sb3/<env>/seed=<S>, as this script names them)."""
    from soft_actor_critic.environment import make_env
    from soft_actor_critic.evaluate import load_network
    from soft_actor_critic.runs import load_train_config

    if run_dir.parent.parent.name in SB3_LABELS.values():
        algorithm = next(name for name, label in SB3_LABELS.items() if label == run_dir.parent.parent.name)
        seed, env = (
            int(run_dir.name.removeprefix("seed=")),
            wrapper(make_env(TrainConfig(env_name=run_dir.parent.name))),
        )
        return seed, env, SB3Policy(sb3_class(algorithm).load(run_dir / "model.zip", device="cpu"))
    config = load_train_config(run_dir)
    env = wrapper(make_env(config))
    return config.seed, env, load_network(run_dir, config, env)[0]


def play_eval(run_dir: Path, wrapper, episodes: int = TrainConfig.eval_episodes):
    """The returns of a run's last policy over the episodes of a deterministic eval, its first reset seeded with
    the run's eval seed as the evals seed it (so the episodes its eval.csv scores), and the env that played
    them, wrapped by `wrapper`: what analysis/'s scripts record."""
    from soft_actor_critic.checkpoints import Seeds
    from soft_actor_critic.evaluate import deterministic_returns

    seed, env, policy = load_run(run_dir, wrapper)
    return deterministic_returns(env, policy, episodes, Seeds.of(seed).eval_env), env


def sb3_run(
    env_name: str, seed: int, num_steps: int, eval_every: int, checkpoint_every: int, directory: str, algorithm: str
) -> None:
    """One SB3 run with one torch thread, evaluated every eval_every steps; picks up from its checkpoint."""
    from stable_baselines3.common.callbacks import BaseCallback

    from soft_actor_critic.checkpoints import Seeds
    from soft_actor_critic.environment import make_env
    from soft_actor_critic.evaluate import deterministic_returns

    torch.set_num_threads(1)
    run_dir = Path(directory) / SB3_LABELS[algorithm] / env_name / f"seed={seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = read_eval_rows(run_dir)
    if rows and rows[-1]["step"] >= num_steps:
        print(f"SB3 seed {seed}: already trained to step {rows[-1]['step']}", flush=True)
        return
    model_path, buffer_path = run_dir / "model.zip", run_dir / "replay_buffer.pkl"
    if model_path.is_file() and buffer_path.is_file():
        model = sb3_class(algorithm).load(model_path, env=make_env(TrainConfig(env_name=env_name)), device="cpu")
        model.load_replay_buffer(buffer_path)
    else:
        model = sb3_model(make_env(TrainConfig(env_name=env_name)), seed, algorithm)
    rows = [row for row in rows if row["step"] <= model.num_timesteps]  # a restart repeats the evals after it

    class Evaluations(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.env, self.policy = make_env(TrainConfig(env_name=env_name)), SB3Policy(model)

        def _on_step(self) -> bool:
            step = self.num_timesteps
            if step % eval_every == 0:
                episodes = TrainConfig.eval_episodes  # what the sweep's runs play
                returns = deterministic_returns(self.env, self.policy, episodes, Seeds.of(seed).eval_env)
                rows.append(
                    {"step": step, "return_mean": np.mean(returns), "return_std": np.std(returns), "episodes": episodes}
                )
                write_eval_rows(run_dir, rows)
            if step % checkpoint_every == 0 or step == num_steps:  # the last one lets a larger budget go on
                for path, save in ((buffer_path, model.save_replay_buffer), (model_path, model.save)):
                    save(path.with_name("new-" + path.name))  # then renamed: a kill never leaves half a file
                    path.with_name("new-" + path.name).replace(path)
            return True

    model.learn(num_steps - model.num_timesteps, callback=Evaluations(), reset_num_timesteps=False)
    print(f"SB3 seed {seed}: eval return {rows[-1]['return_mean']:.1f} at step {num_steps}", flush=True)


def returns_at(run_dirs: list[Path], budgets: list[int]) -> dict[int, dict[int, float]]:
    """{budget: {seed: eval return at that step}}; a run without that eval yet is left out."""
    table = {budget: {} for budget in budgets}
    for run_dir in run_dirs:
        seed = int(run_dir.name.removeprefix("seed="))
        for row in read_eval_rows(run_dir):
            if row["step"] in table:
                table[row["step"]][seed] = row["return_mean"]
    return table


def temperatures(run_dirs: list[Path], budgets: list[int]) -> dict[int, float]:
    """{budget: the median over seeds of the last train/alpha logged to TensorBoard by that step}."""
    from soft_actor_critic.plot import scalars

    logged = {budget: [] for budget in budgets}
    for run_dir in filter(Path.is_dir, run_dirs):
        steps, alphas = scalars(run_dir, "train/alpha")
        for budget in budgets:
            before = alphas[steps <= budget]
            if len(before):
                logged[budget].append(float(before[-1]))
    return {budget: float(np.median(values)) for budget, values in logged.items() if values}


def report(args: argparse.Namespace, labels: list[str]) -> None:
    runs = {label: folders_of(args, label) for label in labels}
    tables = {label: returns_at(run_dirs, args.budgets) for label, run_dirs in runs.items()}
    print(f"\n{args.env_name}: final deterministic eval (10 episodes) per seed {' '.join(map(str, args.seeds))}\n")
    alphas = {
        label: temperatures(run_dirs, args.budgets)
        for label, run_dirs in runs.items()
        if label not in SB3_LABELS.values()
    }
    print("| steps | implementation | seeds | per seed | mean | IQM [95% CI] | α, median |")
    print("|---:|---|---:|---|---:|---|---:|")
    for budget in args.budgets:
        for label in labels:
            by_seed = tables[label][budget]
            if not by_seed:
                print(f"| {budget:,} | {label} | 0 | not run yet | | | |")
                continue
            values = np.array([by_seed[seed] for seed in sorted(by_seed)])
            iqm, low, high = iqm_with_interval(values)
            per_seed = " / ".join(f"{value:.0f}" for value in values)
            alpha = alphas.get(label, {}).get(budget)
            print(
                f"| {budget:,} | {label} | {len(values)} | {per_seed} | {values.mean():.1f} "
                f"| {iqm:.1f} [{low:.1f}, {high:.1f}] | {'' if alpha is None else f'{alpha:.3f}'} |"
            )
    draw(args, runs)


def draw(args: argparse.Namespace, runs: dict[str, list[Path]]) -> None:
    """Each label's seeds as thin lines, and their interquartile mean at every eval as a thick one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for (label, run_dirs), color in zip(runs.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        curves = [read_eval_rows(run_dir) for run_dir in run_dirs]
        curves = [([row["step"] for row in rows], [row["return_mean"] for row in rows]) for rows in curves if rows]
        if not curves:
            continue
        for steps, returns in curves:
            axes.plot(steps, returns, color=color, alpha=0.2, linewidth=0.8)
        common = min(len(steps) for steps, _ in curves)
        steps = curves[0][0][:common]
        iqm = stats.trim_mean(np.array([returns[:common] for _, returns in curves]), 0.25, axis=0)
        axes.plot(steps, iqm, color=color, linewidth=2, label=f"{label}: IQM of {len(curves)} seeds")
    axes.set(xlabel="env steps", ylabel="deterministic eval return", title=args.env_name)
    axes.grid(alpha=0.3)
    axes.legend()
    figures = ROOT / "docs" if args.directory == DIRECTORY else Path(args.directory)
    output = figures / f"learning_{args.env_name}.png"
    figure.savefig(output, dpi=100, bbox_inches="tight")
    print(f"\nwrote {output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-name", required=True)
    parser.add_argument("--budgets", type=int, nargs="+", required=True, help="env steps at which to compare")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--eval-every", type=int, default=10_000, help="every budget must be a multiple of it")
    parser.add_argument("--checkpoint-every", type=int, default=25_000, help="of the SB3 runs")
    parser.add_argument("--directory", default=DIRECTORY)
    parser.add_argument(
        "--algorithm", choices=("sac", "crossq"), default="sac", help="SB3's SAC, or sb3-contrib's CrossQ"
    )
    parser.add_argument(
        "--label", help="the folder and the name of this project's runs; default: soft-actor-critic[-crossq]"
    )
    parser.add_argument("--compare", nargs="+", default=[], help="labels of runs already in --directory to show too")
    parser.add_argument("--only", choices=("ours", "sb3", "none"), help="train only one side (none: just report)")
    args = parser.parse_args()
    args.label = args.label or "soft-actor-critic" + ("-crossq" if args.algorithm == "crossq" else "")
    if args.eval_every <= 0 or any(budget % args.eval_every for budget in args.budgets):
        parser.error("--eval-every must be positive and divide every budget")
    args.budgets.sort()
    if args.only in (None, "ours"):
        train_ours(args)
    if args.only in (None, "sb3"):
        train_sb3(args)
    report(args, [args.label, *args.compare, SB3_LABELS[args.algorithm]])


if __name__ == "__main__":
    main()
