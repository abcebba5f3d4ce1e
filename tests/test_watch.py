"""Watching a run: `train --capture-video` (a GIF of each eval, in the run folder and in TensorBoard) and
`--track` (a Weights & Biases run, read here from the files W&B writes offline; no network)."""

import os
import struct
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import ROOT, TINY
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from soft_actor_critic.__main__ import main
from soft_actor_critic.tracking import WANDB_ID_FILE

RUN = [*TINY, "--num-steps", "400", "--eval-every", "200", "--eval-episodes", "2", "--device", "cpu"]


def sweep(directory: Path, *flags: str) -> list[str]:
    """A sweep of seeds 1 and 2 of RUN (whose widths it reads as one setting)."""
    return ["sweep", "--sweep-name", "s", *RUN, "--hidden-units", "32,32", "--directory", str(directory), *flags]


def train(directory: Path, name: str, *flags: str) -> list[str]:
    return ["train", *RUN, "--directory", str(directory), "--run-name", name, *flags]


def test_each_eval_films_its_first_episode_and_returns_the_same_evals_as_without(tmp_path):
    assert main(train(tmp_path, "filmed", "--capture-video")) == 0
    assert main(train(tmp_path, "plain")) == 0
    filmed, plain = tmp_path / "filmed", tmp_path / "plain"
    assert (filmed / "eval.csv").read_text() == (plain / "eval.csv").read_text()
    assert sorted(path.name for path in (filmed / "videos").iterdir()) == ["step=200.gif", "step=400.gif"]
    assert not (plain / "videos").exists()
    durations = []
    with Image.open(filmed / "videos" / "step=400.gif") as gif:
        for frame in range(gif.n_frames):
            gif.seek(frame)
            durations.append(gif.info["duration"])
    # Pendulum's 200 steps of 0.05 s (and the last frame) play in 10 s: at the env's own speed
    assert sum(durations) == pytest.approx(10_000, abs=100)
    events = EventAccumulator(str(filmed), size_guidance={"images": 0})
    events.Reload()
    videos = events.Images("eval/video")
    assert [video.step for video in videos] == [200, 400]
    assert videos[0].encoded_image_string == (filmed / "videos" / "step=200.gif").read_bytes()


def test_a_deepmind_control_task_films_its_evals_in_a_process_that_set_no_renderer(tmp_path):
    pytest.importorskip("shimmy")  # requirements-dmc.txt
    # DeepMind Control reads MUJOCO_GL when it is imported: train must set it before its first env
    environment = {key: value for key, value in os.environ.items() if key not in ("MUJOCO_GL", "DISPLAY")}
    flags = ["--env-name", "dm_control/cartpole-balance-v0", "--max-episode-steps", "50", "--num-steps", "150"]
    flags += ["--start-step", "100", "--eval-every", "150", "--eval-episodes", "1", "--hidden-units", "8", "8"]
    command = [sys.executable, "-m", "soft_actor_critic", "train", *flags, "--device", "cpu", "--capture-video"]
    run = subprocess.run(
        [*command, "--directory", str(tmp_path), "--run-name", "r"], cwd=ROOT, env=environment, capture_output=True
    )
    assert run.returncode == 0, run.stderr.decode()
    assert [path.name for path in (tmp_path / "r" / "videos").iterdir()] == ["step=150.gif"]


class Blind(gym.Env):
    """An env with no rgb_array rendering."""

    observation_space = gym.spaces.Box(-1, 1, (2,))
    action_space = gym.spaces.Box(-1, 1, (1,))

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}

    def render(self):
        return None


def test_an_env_that_cannot_render_is_said_at_the_start_and_trains_without_videos(tmp_path, capsys):
    gym.register("BlindForVideo-v0", entry_point=Blind, max_episode_steps=50)
    flags = ["--env-name", "BlindForVideo-v0", "--directory", str(tmp_path), "--capture-video", "--run-name", "r"]
    assert main(["train", *flags, "--num-steps", "200", "--start-step", "100", "--eval-every", "100"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "--capture-video" in line]
    assert len(lines) == 1 and "cannot render BlindForVideo-v0" in lines[0] and "training without videos" in lines[0]
    assert (tmp_path / "r" / "eval.csv").is_file() and not (tmp_path / "r" / "videos").exists()


def test_capture_video_without_evals_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(train(tmp_path, "r", "--capture-video", "--eval-every", "0"))
    assert exit.value.code == 2 and "--capture-video films the evals" in capsys.readouterr().err


def test_track_without_wandb_names_the_install_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if it were not installed
    assert main(train(tmp_path, "r", "--track")) == 1
    assert "pip install -r requirements-track.txt" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(sweep(tmp_path, "--seed", "1", "2", "--track")) == 1 and not (tmp_path / "s").exists()


BLOCK = 32768  # the offline .wandb file: a 7-byte header, then LevelDB's log format in blocks of this size


def wandb_runs(run_dir: Path) -> list[dict]:
    """Each W&B run written offline into the run folder (one per train command), read from its .wandb file:
    its id, group and config, and its history rows {key: value}."""
    from wandb.proto import wandb_internal_pb2

    runs = []
    for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        data, records, pieces, position = path.read_bytes(), [], b"", 7
        while position + 7 <= len(data):
            if BLOCK - position % BLOCK < 7:  # a block's tail too short for a chunk header is padding
                position += BLOCK - position % BLOCK
                continue
            length, kind = struct.unpack("<HB", data[position + 4 : position + 7])
            pieces += data[position + 7 : position + 7 + length]
            position += 7 + length
            if kind in (1, 4):  # a record's whole (1) or last (4) chunk
                records.append(wandb_internal_pb2.Record.FromString(pieces))
                pieces = b""
        run = next(record.run for record in records if record.WhichOneof("record_type") == "run")
        history = [
            {item.key or "/".join(item.nested_key): item.value_json for item in record.history.item}
            for record in records
            if record.WhichOneof("record_type") == "history"
        ]
        config = {item.key: item.value_json for item in run.config.update}
        runs.append({"id": run.run_id, "group": run.run_group, "config": config, "history": history})
    return runs


def logged(run: dict, key: str) -> list[int]:
    """The env steps at which the W&B run got `key`."""
    return [int(row["global_step"]) for row in run["history"] if key in row or f"{key}/_type" in row]


def test_a_w_and_b_run_that_cannot_start_leaves_no_run_folder(tmp_path, capsys, monkeypatch):
    wandb = pytest.importorskip("wandb")

    def no_login(**settings):
        raise wandb.errors.UsageError("api_key not configured (no-tty)")

    monkeypatch.setattr(wandb, "init", no_login)
    assert main(train(tmp_path, "r", "--track")) == 1
    error = capsys.readouterr().err
    assert "--track: cannot start a W&B run: api_key not configured" in error and error.count("\n") == 1
    assert not (tmp_path / "r").exists()  # so that the same command, once logged in, starts it
    assert main(train(tmp_path, "r")) == 0
    capsys.readouterr()
    resume = ["train", "--resume", "--directory", str(tmp_path), "--run-name", "r", "--num-steps", "600", "--track"]
    assert main(resume) == 1 and "cannot start a W&B run" in capsys.readouterr().err
    assert '"track": false' in (tmp_path / "r" / "config.json").read_text()  # a resume that failed changed nothing


@pytest.fixture
def offline(monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def test_a_tracked_run_sends_its_scalars_config_and_videos_and_its_resume_continues_it(offline, tmp_path):
    assert main(train(tmp_path, "r", "--track", "--capture-video")) == 0
    run_dir = tmp_path / "r"
    (first,) = wandb_runs(run_dir)
    assert first["id"] == (run_dir / WANDB_ID_FILE).read_text().strip()
    assert first["config"]["env_name"] == '"Pendulum-v1"' and first["config"]["track"] == "true"
    assert logged(first, "eval/return") == [200, 400] and logged(first, "eval/video") == [200, 400]
    assert logged(first, "loss/critic") == [250]  # every LOG_INTERVAL steps once the updates began
    assert main(["train", "--resume", "--directory", str(tmp_path), "--run-name", "r", "--num-steps", "600"]) == 0
    first, resumed = wandb_runs(run_dir)
    assert resumed["id"] == first["id"]  # the same W&B run, continued
    assert logged(resumed, "eval/return") == [600] and logged(resumed, "loss/critic") == [500]


@pytest.mark.parametrize("processes", [["--workers", "2"], ["--seeds-per-process", "2"]], ids=["workers", "packed"])
def test_a_tracked_sweep_groups_its_runs_by_its_name(processes, offline, tmp_path):
    assert main(sweep(tmp_path, "--seed", "1", "2", "--track", *processes)) == 0
    runs = [wandb_runs(tmp_path / "s" / f"seed={seed}")[0] for seed in (1, 2)]
    assert [run["group"] for run in runs] == ["s", "s"]
    assert runs[0]["id"] != runs[1]["id"]
    assert [run["config"]["seed"] for run in runs] == ["1", "2"]


def test_a_tracked_study_groups_its_trials_runs_by_its_name(offline, tmp_path):
    pytest.importorskip("optuna")  # requirements-tune.txt
    flags = ["--study-name", "st", *RUN, "--directory", str(tmp_path), "--trials", "1", "--seeds", "1", "--track"]
    assert main(["tune", *flags, "--num-steps", "200", "--eval-every", "100"]) == 0
    (run,) = wandb_runs(tmp_path / "st" / "trial=0_seed=1")
    assert run["group"] == "st" and logged(run, "eval/return") == [100, 200]
