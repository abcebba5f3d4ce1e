"""Command line: `python3 soft_actor_critic <command>`, `python3 -m soft_actor_critic`, `soft-actor-critic`.

Only the config is imported up front; torch and gymnasium load once a command runs, so `--help`
and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
from pathlib import Path

if not __package__:  # `python3 soft_actor_critic` runs this file as a script: import the package instead
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from soft_actor_critic.config import (
    ALGORITHMS,
    ONE_VALUE_IN_A_SWEEP,
    PROGRAM,
    ConfigError,
    EvalConfig,
    ExportConfig,
    Interrupted,
    PlotConfig,
    RunError,
    TrainConfig,
    check_run_reference,
)
from soft_actor_critic.flags import FIELD_TYPES, flag_name, layer_widths, show
from soft_actor_critic.study_config import SweepConfig, TuneConfig


def program(argv0: str | None = None, python: str | None = None) -> str:
    """This program as the user ran it, for usage lines and hints: `python3 soft_actor_critic`,
    `python3 -m soft_actor_critic`, or the installed `soft-actor-critic`."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    python = python or Path(sys.executable or "python3").name
    path = Path(argv0)
    if path.name == "__main__.py" and path.parent.name == "soft_actor_critic":  # python3 -m soft_actor_critic
        return f"{python} -m soft_actor_critic"
    if path.name == "soft_actor_critic" or (path / "__main__.py").is_file():  # python3 soft_actor_critic
        return f"{python} {shlex.quote(argv0)}"
    return PROGRAM  # the console script, or main() called from Python


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's default after its help; one that depends on --algorithm is in its help already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return action.help if "(default:" in (action.help or "") else super()._get_help_string(action)


def algorithm_defaults(name: str) -> str:
    """' (default: sac: 0.0003; crossq: 0.001)' for a field whose default depends on --algorithm, else ''."""
    if name not in ALGORITHMS[TrainConfig.algorithm].defaults:
        return ""
    return f" (default: {'; '.join(f'{key}: {show(each.defaults[name])}' for key, each in ALGORITHMS.items())})"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not the whole usage block) and still exits 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_flags(
    parser: argparse.ArgumentParser,
    config_class: type,
    *,
    several: bool = False,
    defaults: bool = True,
    skip: tuple[str, ...] = (),
) -> None:
    """One argument per field of the config dataclass: `--field-name`, with the field's default, help
    text and argparse options (config.flag); a field with no default is required, or positional if marked.
    With `several` (a sweep's grid), each flag but the switches and --directory takes one or more values.
    Without `defaults`, a flag that is not given is left out of the parsed arguments; `skip` names fields
    that get no flag."""
    for field in dataclasses.fields(config_class):
        if field.name in skip or (several and field.name == "run_name"):
            continue  # a sweep names its runs after their settings
        options, default = dict(field.metadata), field.default
        options["help"] += algorithm_defaults(field.name)
        parse = FIELD_TYPES[field.type].parse
        if parse is None:
            options.setdefault("action", argparse.BooleanOptionalAction)
        else:
            options["type"] = parse
        if several and parse is not None and field.name not in ONE_VALUE_IN_A_SWEEP:
            many = options.get("nargs") == "+"
            options |= {"nargs": "+", "type": layer_widths if many else parse, "metavar": "N,N" if many else None}
            default = [field.default]
        if options.pop("positional", False):
            parser.add_argument(field.name, **options)
        elif field.default is dataclasses.MISSING:
            parser.add_argument(flag_name(field.name), required=True, default=argparse.SUPPRESS, **options)
        else:
            parser.add_argument(flag_name(field.name), default=default if defaults else argparse.SUPPRESS, **options)


def build_parser(
    *, prog: str = PROGRAM, defaults: bool = True
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = Parser(prog=prog, description="Soft Actor-Critic for continuous Gymnasium envs.", allow_abbrev=False)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{train,eval,export,plot,sweep,tune}", parser_class=Parser
    )
    # Flags are spelled in full (no abbreviations), so `train --resume` can tell which ones were given.
    options = {"formatter_class": HelpFormatter, "allow_abbrev": False}
    train = commands.add_parser("train", help="train a new agent, or resume one", **options)
    add_flags(train, TrainConfig, defaults=defaults)
    train.add_argument(
        "--resume", action="store_true", help="continue the run --run-name from its checkpoint, to --num-steps in total"
    )
    evaluate = commands.add_parser("eval", help="roll out a trained agent", **options)
    add_flags(evaluate, EvalConfig)
    export = commands.add_parser("export", help="write a run's policy as an ONNX file", **options)
    add_flags(export, ExportConfig)
    plot = commands.add_parser("plot", help="draw learning curves of runs into a PNG", **options)
    add_flags(plot, PlotConfig)
    sweep = commands.add_parser(
        "sweep", help="train every combination of several values per train flag, here or on Ray", **options
    )
    add_flags(sweep, SweepConfig)
    add_flags(sweep, TrainConfig, several=True)
    tune = commands.add_parser("tune", help="search train's flags with Optuna, here or on Ray", **options)
    add_flags(tune, TuneConfig, defaults=defaults)  # given_flags tells a study's flags given from its stored ones
    add_flags(tune, TrainConfig, skip=("seed", "run_name"), defaults=defaults)  # the trials name and seed their runs
    return parser, {"train": train, "eval": evaluate, "export": export, "plot": plot, "sweep": sweep, "tune": tune}


def given_flags(argv: list[str]) -> set[str]:
    """The names of the train flags that appear on the command line: argv parsed again by a parser
    without defaults, which sets only what was given."""
    parser, _ = build_parser(defaults=False)
    return set(vars(parser.parse_args(argv))) - {"command", "resume"}


def resumed_config(args: dict, given: set[str]) -> TrainConfig:
    """The config of the run to resume, with the flags the user gave; a flag that would change it is refused.
    --run-name is the run's folder name inside --directory, or a path to its folder, as for eval."""
    if args["run_name"] is None:
        raise ConfigError("--resume needs the --run-name of the run to continue")
    check_run_reference(args["run_name"])  # before it is looked for: a bad name is a usage error
    from soft_actor_critic.runs import find_run, load_train_config

    run_dir = find_run(args["directory"], args["run_name"])
    flags = {name: args[name] for name in given if name in args}
    # The run is where it was found now, whatever its config says about where it was made.
    return load_train_config(run_dir).resumed_with(flags | {"directory": str(run_dir.parent), "run_name": run_dir.name})


def own_config(args: dict, config_class: type) -> tuple:
    """A sweep's or a study's own flags as its config, and the train flags: a sweep's grid (each field's list
    of values), or what a study's trials share."""
    own = {field.name for field in dataclasses.fields(config_class)}
    return config_class(**{name: args[name] for name in own}), {name: args[name] for name in args if name not in own}


def run_command(command: str, args: dict, *, resume: bool = False, argv: list[str], prog: str = PROGRAM) -> None:
    """Carry out a parsed command: its config first, so that a bad flag is refused before torch loads, then
    the command. `prog` and `argv` are the command line, which the hints that continue a sweep or an
    interrupted run repeat."""
    if command == "sweep":
        config = own_config(args, SweepConfig)
        from soft_actor_critic.sweep import sweep

        sweep(*config, command=f"{prog} {shlex.join(argv)}")
    elif command == "tune":
        config = (*own_config(args, TuneConfig), given_flags(argv))
        from soft_actor_critic.tune import tune

        tune(*config, command=f"{prog} {shlex.join(argv)}", program=prog)
    elif command == "train":
        config = resumed_config(args, given_flags(argv)) if resume else TrainConfig(**args)
        from soft_actor_critic.training import train

        train(config, resume, program=prog)
    elif command == "eval":
        config = EvalConfig(**args)
        from soft_actor_critic.evaluate import evaluate

        evaluate(config)
    elif command == "export":
        config = ExportConfig(**args)
        from soft_actor_critic.export import export

        export(config)
    else:
        config = PlotConfig(**args)
        from soft_actor_critic.plot import plot

        plot(config)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    prog = program()
    parser, commands = build_parser(prog=prog)
    args, unknown = parser.parse_known_args(argv)
    args = vars(args)
    command = args.pop("command")
    if unknown:  # the command's error, not the program's, as every other error of the command
        commands[command].error(f"unrecognized arguments: {' '.join(unknown)}")
    resume = args.pop("resume", False)
    try:
        run_command(command, args, resume=resume, argv=argv, prog=prog)
    except ConfigError as error:
        commands[command].error(str(error))  # exits 2, like every other usage error
    except Interrupted as error:  # every message of a command starts as its usage errors do: "<prog> train:"
        print(f"{commands[command].prog}: {error}", file=sys.stderr)
        return 128 + error.signum
    except RunError as error:
        print(f"{commands[command].prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{commands[command].prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # whoever read the output left (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # else exit's flush raises again
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
