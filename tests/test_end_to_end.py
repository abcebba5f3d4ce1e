import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TINY, read_checkpoint
from PIL import Image, ImageSequence
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from soft_actor_critic.__main__ import main

LOGGED = {
    "loss/critic",
    "loss/policy",
    "loss/temperature",
    "train/alpha",
    "train/entropy",
    "train/q",
    "episode/return",
    "episode/length",
    "time/sps",
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("runs")
    argv = ["train", *TINY, "--memory-size", "1000", "--num-steps", "500", "--directory", str(directory)]
    assert main([*argv, "--run-name", "tiny"]) == 0
    return directory / "tiny"


def test_run_folder_holds_config_checkpoint_and_events(trained_run):
    config = json.loads((trained_run / "config.json").read_text())
    assert config["env_name"] == "Pendulum-v1" and config["run_name"] == "tiny" and config["hidden_units"] == [32, 32]
    checkpoint = read_checkpoint(trained_run)
    assert checkpoint["step"] == 500
    assert {"policy", "critic", "target_critic", "log_alpha"} <= set(checkpoint)
    assert {"policy_optimizer", "critic_optimizer", "alpha_optimizer"} <= set(checkpoint)
    assert not list(trained_run.glob("*.tmp"))


def test_every_metric_and_the_config_are_logged(trained_run):
    events = EventAccumulator(str(trained_run))
    events.Reload()
    assert set(events.Tags()["scalars"]) >= LOGGED
    (text,) = events.Tensors("config/text_summary")
    shown = text.tensor_proto.string_val[0].decode()
    assert json.loads(shown) == json.loads((trained_run / "config.json").read_text())
    assert all(line.startswith("    ") for line in shown.splitlines())  # a code block in markdown
    lengths = [event.value for event in events.Scalars("episode/length")]
    assert lengths == [200.0, 200.0]  # Pendulum truncates at 200: 500 steps hold two whole episodes


def test_the_runs_flags_are_its_hparams_beside_its_returns(trained_run):
    """TensorBoard's HPARAMS tab compares the runs of a folder: each run's own event file (no sub-folder)
    holds the experiment, which names the metrics, and the session, which holds the run's flags."""
    content = EventAccumulator(str(trained_run)).Reload().PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(content)
    experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {metric.name.tag for metric in experiment.metric_infos} == {"eval/return", "episode/return"}
    hparams = HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info.hparams
    config = json.loads((trained_run / "config.json").read_text())
    assert hparams["learning_rate"].number_value == config["learning_rate"] and hparams["seed"].number_value == 1
    assert hparams["env_name"].string_value == "Pendulum-v1" and hparams["run_name"].string_value == "tiny"
    assert hparams["hidden_units"].string_value == "32,32"  # a tuple, as a string
    assert not [path for path in trained_run.iterdir() if path.is_dir()]


def test_eval_reads_the_run_config_and_prints_a_mean(trained_run, capsys):
    argv = ["eval", "--run-name", "tiny", "--directory", str(trained_run.parent), "--num-episodes", "2"]
    assert main([*argv, "--deterministic"]) == 0
    first = capsys.readouterr().out
    assert main([*argv, "--deterministic"]) == 0
    assert capsys.readouterr().out == first  # same seed, deterministic policy: same episodes
    assert first.count("episode ") == 2
    assert "mean return" in first.splitlines()[-1] and "over 2 episodes" in first


def test_eval_takes_the_path_of_a_run_folder(trained_run, capsys, monkeypatch):
    monkeypatch.chdir(trained_run.parent.parent)
    path = f"{trained_run.parent.name}/tiny/"  # as a shell completes it; --directory is not used
    assert main(["eval", "--run-name", path, "--num-episodes", "1"]) == 0
    assert f"from {trained_run.parent.name}/tiny/checkpoint.pt" in capsys.readouterr().out
    for missing, words in ((f"{path}x", "does not exist"), (str(trained_run.parent) + "/", "is not a run folder")):
        assert main(["eval", "--run-name", missing]) == 1
        error = capsys.readouterr().err
        assert words in error and error.count("\n") == 1


def test_eval_refuses_flags_that_contradict_the_run(trained_run, capsys):
    argv = ["eval", "--run-name", "tiny", "--directory", str(trained_run.parent)]
    for flags, words in ((["--hidden-units", "64"], "--hidden-units"), (["--env-name", "Hopper-v5"], "--env-name")):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, *flags])
        error = capsys.readouterr().err
        assert exit_info.value.code == 2 and words in error and "differs from the run's" in error
    assert main([*argv, "--env-name", "Pendulum-v1", "--hidden-units", "32", "32", "--num-episodes", "1"]) == 0


def test_record_writes_a_gif_per_episode_and_keeps_earlier_ones(trained_run, capsys):
    argv = ["eval", "--run-name", "tiny", "--directory", str(trained_run.parent), "--num-episodes", "2", "--record"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    gifs = sorted((trained_run / "videos").glob("*/*.gif"))
    assert len(gifs) == 2 and all(f"recorded {gif}" in out for gif in gifs)
    with Image.open(gifs[0]) as gif:
        assert gif.format == "GIF" and gif.n_frames == 201  # Pendulum's 20 steps a second: each, and the last frame
        assert gif.size == (500, 500)
        durations = [gif.info["duration"] for _ in ImageSequence.Iterator(gif)]
    # at the env's own speed (issue 43): at its render_fps of 30, 200 steps would play in 6.7 s, not 10
    assert set(durations) == {50} and sum(durations) == 201 * 50  # its dt, 0.05 s: 200 steps play in 10 s
    assert main(argv) == 0  # a second recording in the same second goes to a folder of its own
    assert len(list((trained_run / "videos").glob("*/*.gif"))) == 4


def test_record_is_silent_on_stderr_when_it_works(trained_run):
    """Pendulum renders with pygame, whose init looks for a display and a sound card and says so on
    stderr: a user would read "error" and believe the recording failed."""
    unset = {"DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "SDL_VIDEODRIVER", "SDL_AUDIODRIVER"}
    environment = {name: value for name, value in os.environ.items() if name not in unset}
    argv = ["eval", "--run-name", str(trained_run), "--num-episodes", "1", "--record"]
    result = subprocess.run(
        [sys.executable, "-m", "soft_actor_critic", *argv], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0 and "recorded" in result.stdout
    assert result.stderr == ""


def test_record_works_headless_on_mujoco(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    argv = ["--directory", str(tmp_path), "--run-name", "mujoco"]
    train = ["train", "--env-name", "InvertedPendulum-v5", "--num-steps", "30", "--start-step", "30"]
    assert main([*train, "--hidden-units", "8", "--memory-size", "64", "--batch-size", "32", *argv]) == 0
    assert main(["eval", "--record", "--num-episodes", "1", *argv]) == 0
    (gif,) = (tmp_path / "mujoco" / "videos").glob("*/episode-1.gif")
    with Image.open(gif) as image:
        assert image.n_frames >= 2


def test_render_without_a_display_points_to_record(trained_run, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["eval", "--run-name", "tiny", "--directory", str(trained_run.parent), "--render"]) == 1
    error = capsys.readouterr().err
    assert "--record" in error and error.count("\n") == 1


def test_old_lunar_lander_id_is_refused_naming_the_new_one(tmp_path, capsys):
    argv = ["train", "--env-name", "LunarLanderContinuous-v2", "--directory", str(tmp_path), "--run-name", "old"]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "did you mean LunarLanderContinuous-v3" in error and error.count("\n") == 1
    assert not (tmp_path / "old").exists()


def test_train_into_an_existing_run_is_refused(trained_run, capsys):
    before = (trained_run / "checkpoint.pt").read_bytes()
    argv = ["train", "--env-name", "Pendulum-v1", "--directory", str(trained_run.parent), "--run-name", "tiny"]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "already exists" in error and "--resume" in error and "--run-name" in error
    assert (trained_run / "checkpoint.pt").read_bytes() == before
