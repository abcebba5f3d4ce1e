"""config.py on its own: the flag names, the one type table, validation, and what a resume may change."""

import dataclasses
import subprocess
import sys

import pytest
from conftest import ROOT

from soft_actor_critic.config import EXECUTION_SETTINGS, RESUME_FLAGS, ConfigError, EvalConfig, PlotConfig, TrainConfig
from soft_actor_critic.flags import FIELD_TYPES, flag_name
from soft_actor_critic.study_config import SweepConfig


def test_a_flag_is_its_field_name_with_dashes():
    assert flag_name("num_steps") == "--num-steps" and flag_name("seed") == "--seed"


@pytest.mark.parametrize("config_class", [TrainConfig, EvalConfig, PlotConfig, SweepConfig])
def test_every_field_has_its_type_in_the_one_table(config_class):
    assert all(field.type in FIELD_TYPES for field in dataclasses.fields(config_class))


@pytest.mark.parametrize(
    ("annotation", "fits", "does_not_fit"),
    [
        ("int", [0, 256], [1.5, 256.0, "256", True, None]),
        ("float", [3e-4, 1], ["0.1", None, [1.0]]),
        ("bool", [True, False], [1, "true"]),
        ("str | None", ["run", None], [1]),
        ("tuple[int, ...]", [[256, 256], []], [[256.0], ["256"], 256, (256,)]),
    ],
)
def test_a_json_value_must_have_its_fields_type_exactly(annotation, fits, does_not_fit):
    field_type = FIELD_TYPES[annotation]
    assert all(field_type.fits(value) for value in fits)
    assert not any(field_type.fits(value) for value in does_not_fit)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"batch_size": 0}, "--batch-size must be positive, got 0"),
        ({"start_step": -1}, "--start-step must be zero or more, got -1"),
        ({"learning_rate": float("nan")}, "--learning-rate must be positive, got nan"),
        ({"gamma": 1.5}, r"--gamma must be in \(0, 1\], got 1.5"),
        ({"batch_size": 64, "memory_size": 32}, r"--batch-size \(64\) must not exceed --memory-size \(32\)"),
        ({"hidden_units": ()}, "--hidden-units needs at least one layer width"),
        ({"run_name": "a/b"}, "must be a plain folder name"),
    ],
)
def test_a_bad_value_is_a_config_error_that_names_its_flag(settings, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**settings)


def test_a_resume_may_change_how_long_and_how_a_run_is_carried_out_and_nothing_else():
    assert set(EXECUTION_SETTINGS) < set(RESUME_FLAGS)
    resumed = TrainConfig().resumed_with({"num_steps": 5, "device": "cpu", "save_buffer": False})
    assert (resumed.num_steps, resumed.device, resumed.save_buffer) == (5, "cpu", False)
    with pytest.raises(
        ConfigError,
        match=r"--learning-rate 0.1 differs from the run.s 0.0003: .* \(only --num-steps, --checkpoint-every",
    ):
        TrainConfig().resumed_with({"learning_rate": 0.1})


def test_config_loads_without_torch_or_gymnasium():
    """`--help` and usage errors answer at once because config.py imports neither."""
    code = "import sys, soft_actor_critic.config; print(sorted({'torch', 'gymnasium'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout == "[]\n"
