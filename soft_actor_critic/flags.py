"""How a config field is written: its command-line flag and the words that flag takes, and its exact types
in config.json. Free of torch and gymnasium, as config.py is."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import MISSING, dataclass

from soft_actor_critic.algorithms import SameAs


def flag_name(field_name: str) -> str:
    """The command-line flag of a config field: --num-steps for num_steps."""
    return f"--{field_name.replace('_', '-')}"


@dataclass(frozen=True)
class FieldType:
    """How a config field of one annotation is read: from a word of the command line, and from config.json."""

    parse: Callable[[str], object] | None  # one word of the command line; None: a switch, which takes no word
    json: tuple[type, ...]  # the exact JSON types its value may have (each element's, for a tuple)
    sequence: bool = False  # a tuple: one word per element, a list in JSON

    def fits(self, value) -> bool:
        """Whether a value read from JSON has this type exactly: a 1.5 seed or a "256" batch would fail only later."""
        if self.sequence:
            return isinstance(value, list) and all(type(element) in self.json for element in value)
        return type(value) in self.json


def whole_number(text: str) -> int:
    """An integer flag's word: 100000, 100_000 or 1e5 (exact up to 2**53, past any value a flag takes). A
    fraction such as 2.5 is refused, saying why."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)


def layer_widths(text: str) -> tuple[int, ...]:
    """Layer widths in one word, as a sweep's --hidden-units and tune's --space write them: 256,256."""
    try:
        return tuple(whole_number(width) for width in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of widths such as 256,256") from None


FIELD_TYPES = {  # by the annotation, as dataclasses.fields() gives it under `from __future__ import annotations`
    "int": FieldType(whole_number, (int,)),
    "int | None": FieldType(whole_number, (int, type(None))),
    "float": FieldType(float, (int, float)),
    "float | None": FieldType(float, (int, float, type(None))),
    "bool": FieldType(None, (bool,)),
    "str": FieldType(str, (str,)),
    "str | None": FieldType(str, (str, type(None))),
    "tuple[int, ...]": FieldType(whole_number, (int,), sequence=True),
    "tuple[int, ...] | None": FieldType(whole_number, (int,), sequence=True),
    "tuple[str, ...]": FieldType(str, (str,), sequence=True),
}


def flag(default=MISSING, help: str = "", **argparse_options):
    """A config field that is also a command-line flag: its default, its help text, and what else
    argparse needs (metavar, choices, nargs, action) live here; `__main__` builds the parsers from them."""
    return dataclasses.field(default=default, metadata={"help": help, **argparse_options})


LAYER_WIDTHS = {"nargs": "+", "metavar": "N"}  # --hidden-units 256 256


def show(value) -> str:
    """A value as the command line spells it: 256 256 for layer widths, --hidden-units for SameAs("hidden_units")."""
    if isinstance(value, SameAs):
        return flag_name(value.field)
    return " ".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
