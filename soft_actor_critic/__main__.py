"""Command line: `python3 soft_actor_critic train|eval`, `python3 -m soft_actor_critic`, `soft-actor-critic`.

Only the config is imported up front; torch and gymnasium load once a command runs, so `--help`
and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:  # `python3 soft_actor_critic` runs this file as a script: import the package instead
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from soft_actor_critic.config import DEVICES, RENAMED_ENV_IDS, ConfigError, EvalConfig, RunError, TrainConfig

PROG = "soft-actor-critic"
LAYER_WIDTHS = {"type": int, "nargs": "+", "metavar": "N"}  # --hidden-units 256 256


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not the whole usage block) and still exits 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = Parser(prog=PROG, description="Soft Actor-Critic for continuous Gymnasium envs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,eval}", parser_class=Parser)
    formatter = argparse.ArgumentDefaultsHelpFormatter

    train = commands.add_parser("train", help="train a new agent", formatter_class=formatter)
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

    evaluate = commands.add_parser("eval", help="roll out a trained agent", formatter_class=formatter)
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
    return parser, {"train": train, "eval": evaluate}


def run(command: str, config: TrainConfig | EvalConfig) -> None:
    if command == "train":
        from soft_actor_critic.train import train

        train(config)
    else:
        from soft_actor_critic.evaluate import evaluate

        evaluate(config)


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    if args["env_name"] in RENAMED_ENV_IDS:
        renamed = RENAMED_ENV_IDS[args["env_name"]]
        print(f"note: gymnasium 1.x renamed {args['env_name']} to {renamed}; using {renamed}", file=sys.stderr)
        args["env_name"] = renamed
    try:
        config = (TrainConfig if command == "train" else EvalConfig)(**args)
        run(command, config)
    except ConfigError as error:
        commands[command].error(str(error))  # exits 2, like every other usage error
    except RunError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
