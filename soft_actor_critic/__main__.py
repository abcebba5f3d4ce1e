"""Command line: `python3 soft_actor_critic train|eval|plot`, `python3 -m soft_actor_critic`, `soft-actor-critic`.

Only the config is imported up front; torch and gymnasium load once a command runs, so `--help`
and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if not __package__:  # `python3 soft_actor_critic` runs this file as a script: import the package instead
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from soft_actor_critic.config import (
    CHECKPOINTS,
    DEVICES,
    RENAMED_ENV_IDS,
    ConfigError,
    EvalConfig,
    Interrupted,
    PlotConfig,
    RunError,
    TrainConfig,
)

PROG = "soft-actor-critic"
LAYER_WIDTHS = {"type": int, "nargs": "+", "metavar": "N"}  # --hidden-units 256 256


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not the whole usage block) and still exits 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = Parser(prog=PROG, description="Soft Actor-Critic for continuous Gymnasium envs.", allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,eval,plot}", parser_class=Parser)
    # Flags are spelled in full (no abbreviations), so `train --resume` can tell which ones were given.
    options = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter, "allow_abbrev": False}

    train = commands.add_parser("train", help="train a new agent, or resume one", **options)
    train.add_argument("--env-name", default=TrainConfig.env_name, help="Gymnasium id with a continuous action space")
    train.add_argument(
        "--hidden-units",
        **LAYER_WIDTHS,
        default=TrainConfig.hidden_units,
        help="widths of the hidden layers of the policy and of each critic",
    )
    train.add_argument("--directory", default=TrainConfig.directory, help="folder that holds the run folders")
    train.add_argument("--seed", type=int, default=TrainConfig.seed, help="seed of torch, numpy and the env")
    train.add_argument(
        "--run-name", default=TrainConfig.run_name, help="name of the run folder; None: <date>_<time>_<env-name>"
    )
    train.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="transitions per update")
    train.add_argument(
        "--memory-size", type=int, default=TrainConfig.memory_size, help="replay buffer capacity in transitions"
    )
    train.add_argument(
        "--learning-rate",
        type=float,
        default=TrainConfig.learning_rate,
        help="Adam step size of the policy, the critics and the temperature",
    )
    train.add_argument("--gamma", type=float, default=TrainConfig.gamma, help="discount factor")
    train.add_argument("--tau", type=float, default=TrainConfig.tau, help="Polyak rate of the target critic")
    train.add_argument("--num-steps", type=int, default=TrainConfig.num_steps, help="env steps in total")
    train.add_argument(
        "--start-step",
        type=int,
        default=TrainConfig.start_step,
        help="env steps of uniform random actions before the first update",
    )
    train.add_argument(
        "--alpha",
        type=float,
        default=TrainConfig.alpha,
        help="starting entropy temperature (tuned automatically from there)",
    )
    train.add_argument(
        "--updates-per-step",
        type=int,
        default=TrainConfig.updates_per_step,
        help="gradient updates after each env step once the warm-up is over",
    )
    train.add_argument(
        "--device",
        choices=DEVICES,
        default=TrainConfig.device,
        help="where the networks and the replay buffer live; auto: cuda if available",
    )
    train.add_argument(
        "--cuda-graphs",
        action=argparse.BooleanOptionalAction,
        default=TrainConfig.cuda_graphs,
        help="on a GPU, run each update and each action as the replay of a captured CUDA graph (no effect on a CPU)",
    )
    train.add_argument(
        "--checkpoint-every",
        type=int,
        default=TrainConfig.checkpoint_every,
        help="env steps between checkpoints (0: only at the end and on Ctrl-C or SIGTERM)",
    )
    train.add_argument(
        "--save-buffer",
        action=argparse.BooleanOptionalAction,
        default=TrainConfig.save_buffer,
        help="save the replay buffer beside each checkpoint, so that --resume continues with it",
    )
    train.add_argument(
        "--eval-every",
        type=int,
        default=TrainConfig.eval_every,
        help="env steps between evals with deterministic actions, logged to eval.csv (0: none)",
    )
    train.add_argument(
        "--eval-episodes", type=int, default=TrainConfig.eval_episodes, help="episodes per periodic eval"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run --run-name from its checkpoint, to --num-steps in total",
    )

    evaluate = commands.add_parser("eval", help="roll out a trained agent", **options)
    evaluate.add_argument(
        "--run-name", required=True, default=argparse.SUPPRESS, help="the run folder to load (inside --directory)"
    )
    evaluate.add_argument("--directory", default=EvalConfig.directory, help="folder that holds the run folders")
    evaluate.add_argument(
        "--env-name", default=EvalConfig.env_name, help="None: the run's own; if given, it must match"
    )
    evaluate.add_argument(
        "--hidden-units",
        **LAYER_WIDTHS,
        default=EvalConfig.hidden_units,
        help="None: the run's own; if given, it must match",
    )
    evaluate.add_argument("--seed", type=int, default=EvalConfig.seed, help="seed of the env and the policy noise")
    evaluate.add_argument("--num-episodes", type=int, default=EvalConfig.num_episodes, help="episodes to roll out")
    evaluate.add_argument("--deterministic", action="store_true", help="act with tanh(mean) instead of sampling")
    evaluate.add_argument("--render", action="store_true", help="show the episodes in a window (needs a display)")
    evaluate.add_argument("--record", action="store_true", help="write a GIF per episode into <run>/videos/")
    evaluate.add_argument(
        "--checkpoint",
        choices=CHECKPOINTS,
        default=EvalConfig.checkpoint,
        help="last: the latest checkpoint; best: the best policy of the periodic evals",
    )

    plot = commands.add_parser("plot", help="draw learning curves of runs into a PNG", **options)
    plot.add_argument("runs", nargs="+", metavar="RUN", help="run folders, or folders of runs (e.g. runs)")
    plot.add_argument(
        "--output", default=PlotConfig.output, help="the PNG to write; None: plot.png beside the first run"
    )
    plot.add_argument(
        "--smooth", type=int, default=PlotConfig.smooth, help="episodes in the moving average of training returns"
    )
    return parser, {"train": train, "eval": evaluate, "plot": plot}


def given_flags(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The names of the options that appear on the command line."""
    words = {word.split("=", 1)[0] for word in argv}
    return {action.dest for action in parser._actions if words & set(action.option_strings)}


def resumed_config(args: dict, given: set[str]) -> TrainConfig:
    """The config of the run to resume, with the flags the user gave; a flag that would change it is refused."""
    if args["run_name"] is None:
        raise ConfigError("--resume needs the --run-name of the run to continue")
    from soft_actor_critic.runs import find_run, load_train_config

    saved = load_train_config(find_run(args["directory"], args["run_name"]))
    flags = {name: args[name] for name in given if name in args}
    # The run is where it was found now, whatever its config says about where it was made.
    return saved.resumed_with(flags | {"directory": args["directory"], "run_name": args["run_name"]})


def run(command: str, config: TrainConfig | EvalConfig | PlotConfig, resume: bool = False) -> None:
    if command == "train":
        from soft_actor_critic.train import train

        train(config, resume)
    elif command == "eval":
        from soft_actor_critic.evaluate import evaluate

        evaluate(config)
    else:
        from soft_actor_critic.plot import plot

        plot(config)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser, commands = build_parser()
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    resume = args.pop("resume", False)
    if args.get("env_name") in RENAMED_ENV_IDS:
        renamed = RENAMED_ENV_IDS[args["env_name"]]
        print(f"note: gymnasium 1.x renamed {args['env_name']} to {renamed}; using {renamed}", file=sys.stderr)
        args["env_name"] = renamed
    try:
        if resume:
            config = resumed_config(args, given_flags(commands["train"], argv))
        else:
            config = {"train": TrainConfig, "eval": EvalConfig, "plot": PlotConfig}[command](**args)
        run(command, config, resume)
    except ConfigError as error:
        commands[command].error(str(error))  # exits 2, like every other usage error
    except Interrupted as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 128 + error.signum
    except RunError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # whoever read the output left (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # else exit's flush raises again
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
