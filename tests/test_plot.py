"""The plot subcommand: learning curves of runs into a PNG, seeds averaged into one curve."""

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from soft_actor_critic.__main__ import main
from soft_actor_critic.config import TrainConfig
from soft_actor_critic.plot import RunCurves, draw, draw_env, find_runs, group_by_setting, load_run, smooth
from soft_actor_critic.training import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> str:
    """Two seeds of one setting and one run of another, each with two episodes and two evals."""
    directory = tmp_path_factory.mktemp("runs")
    base = TrainConfig(
        env_name="Pendulum-v1",
        hidden_units=(16,),
        directory=str(directory),
        batch_size=16,
        memory_size=500,
        num_steps=400,
        start_step=100,
        eval_every=200,
        eval_episodes=1,
    )
    for name, changes in (("a1", {"seed": 1}), ("a2", {"seed": 2}), ("b", {"learning_rate": 1e-3})):
        train(dataclasses.replace(base, run_name=name, **changes))
    return str(directory)


def test_plot_writes_a_png_beside_the_runs(runs, capsys):
    assert main(["plot", runs]) == 0
    path = f"{runs}/plot.png"
    assert f"wrote {path} (3 runs)" in capsys.readouterr().out
    with Image.open(path) as image:
        image.verify()  # a complete, valid PNG
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= 800 and image.height >= 300


def test_plot_writes_where_output_says_and_counts_a_run_once(runs, tmp_path, capsys):
    output = tmp_path / "curves.png"
    assert main(["plot", f"{runs}/a1", runs, "--output", str(output)]) == 0  # a1 is named twice
    assert f"wrote {output} (3 runs)" in capsys.readouterr().out
    assert output.stat().st_size > 0


def test_seeds_of_one_setting_are_one_curve(runs):
    grouped = group_by_setting([load_run(path, window=1) for path in find_runs((runs,))])
    assert list(grouped) == ["Pendulum-v1"]
    curves = grouped["Pendulum-v1"]
    assert sorted(curves) == ["learning-rate=0.0003", "learning-rate=0.001"]
    assert sorted(run.path.name for run in curves["learning-rate=0.0003"]) == ["a1", "a2"]


def curves_of(seed: int, *, evals: bool, name: str) -> RunCurves:
    points = (np.array([100, 200]), np.array([-900.0, -300.0]))
    empty = (np.array([], dtype=int), np.array([]))
    return RunCurves(Path(name), TrainConfig(env_name="Pendulum-v1", seed=seed), points, points if evals else empty)


def test_a_curve_counts_distinct_seeds_in_each_panel_and_a_single_run_is_named_by_its_folder():
    """Two runs of seed 1 (a short one and a longer one, say) are one seed; the eval panel has only the
    runs that have evals, here one, which it names."""
    runs = [
        curves_of(1, evals=True, name="a"),
        curves_of(1, evals=False, name="b"),
        curves_of(2, evals=False, name="c"),
    ]
    (groups,) = group_by_setting(runs).values()
    figure = Figure()
    draw_env(figure, "Pendulum-v1", groups, window=1)
    train_axes, eval_axes = figure.axes
    assert [line.get_label() for line in train_axes.lines] == ["Pendulum-v1, 2 seeds (3 runs)"]
    assert [line.get_label() for line in eval_axes.lines] == ["a"]


def test_a_panel_with_nothing_logged_is_left_out():
    (groups,) = group_by_setting([curves_of(1, evals=False, name="a"), curves_of(2, evals=False, name="b")]).values()
    figure = Figure()
    draw_env(figure, "Pendulum-v1", groups, window=1)
    (train_axes,) = figure.axes
    assert train_axes.get_title().startswith("Pendulum-v1: episode return")


def test_a_run_logs_its_episode_returns_and_evals(runs):
    run_dir = find_runs((f"{runs}/a1",))[0]
    run = load_run(run_dir, window=1)
    events = EventAccumulator(str(run_dir))
    events.Reload()
    with open(run_dir / "eval.csv", newline="") as file:
        eval_means = [float(row["return_mean"]) for row in csv.DictReader(file)]
    np.testing.assert_array_equal(run.returns[0], [200, 400])  # Pendulum episodes are 200 steps
    np.testing.assert_array_equal(run.returns[1], [event.value for event in events.Scalars("episode/return")])
    np.testing.assert_array_equal(run.evals[0], [200, 400])
    np.testing.assert_array_equal(run.evals[1], eval_means)


def test_several_seeds_draw_their_mean_and_spread_over_the_steps_they_share():
    axes = Figure().subplots()
    rising = (np.array([0, 10, 20]), np.array([0.0, 10.0, 20.0]))
    flat = (np.array([0, 5, 10]), np.array([2.0, 2.0, 2.0]))  # other steps, and it stops at 10
    draw(axes, [rising, flat], "two")
    (line,) = axes.lines
    np.testing.assert_allclose(line.get_xdata(), [0, 5, 10])  # every step of either, up to the shorter
    np.testing.assert_allclose(line.get_ydata(), [1.0, 3.5, 6.0])  # the mean at each step
    (band,) = axes.collections
    np.testing.assert_allclose(band.get_paths()[0].vertices[:, 1].max(), 10.0)  # mean + std at step 10


def test_smooth_is_a_trailing_moving_average():
    np.testing.assert_allclose(smooth(np.array([1.0, 2.0, 3.0, 4.0]), 2), [1.0, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(smooth(np.array([4.0, 2.0]), 10), [4.0, 3.0])


def test_runs_with_nothing_logged_are_refused(small_config, capsys):
    run_dir = train(dataclasses.replace(small_config, num_steps=150, eval_every=0, run_name="young"))
    capsys.readouterr()
    assert main(["plot", str(run_dir)]) == 1
    error = capsys.readouterr().err
    assert "has logged no episode returns or evals yet" in error and error.count("\n") == 1
    assert not (run_dir.parent / "plot.png").exists()


def test_several_runs_with_nothing_logged_are_refused(small_config, capsys):
    for name in ("young1", "young2"):
        train(dataclasses.replace(small_config, num_steps=150, eval_every=0, run_name=name))
    capsys.readouterr()
    assert main(["plot", small_config.directory]) == 1
    error = capsys.readouterr().err
    assert "none of the 2 runs has logged an episode return or an eval yet" in error and error.count("\n") == 1


def test_a_run_with_nothing_logged_is_left_out_of_a_folder_of_runs(runs, small_config, tmp_path, capsys):
    young = train(dataclasses.replace(small_config, num_steps=150, eval_every=0, run_name="young"))
    capsys.readouterr()
    output = tmp_path / "curves.png"
    assert main(["plot", runs, str(young), "--output", str(output)]) == 0
    captured = capsys.readouterr()
    assert f"wrote {output} (3 runs)" in captured.out
    assert f"{young} has logged no episode returns or evals yet: left out" in captured.err


def test_seeds_that_share_no_steps_are_not_averaged(capsys):
    axes = Figure().subplots()
    axes.set_title("eval")
    draw(axes, [(np.array([0, 10]), np.array([1.0, 2.0])), (np.array([20, 30]), np.array([3.0, 4.0]))], "two")
    assert not axes.lines
    assert "the runs of 'two' share no steps in 'eval': not drawn" in capsys.readouterr().err


def test_a_folder_without_runs_or_a_missing_one_is_refused(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "holds no run folder" in error and error.count("\n") == 1
    assert main(["plot", str(tmp_path / "runz")]) == 1
    assert capsys.readouterr().err.endswith(f"error: {tmp_path / 'runz'} does not exist\n")


@pytest.mark.parametrize("flags", [[], ["x", "--smooth", "0"], ["x", "--output", "plot.pdf"]])
def test_bad_plot_flags_are_usage_errors(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", *flags])
    assert exit_info.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_a_label_leaves_out_what_only_follows_from_the_algorithm():
    sac = RunCurves(Path("sac"), TrainConfig(env_name="Pendulum-v1"), *([(np.array([1]), np.array([0.0]))] * 2))
    crossq = dataclasses.replace(
        sac, path=Path("crossq"), config=TrainConfig(env_name="Pendulum-v1", algorithm="crossq")
    )
    slow = dataclasses.replace(crossq, path=Path("slow"), config=dataclasses.replace(crossq.config, learning_rate=3e-4))
    (groups,) = group_by_setting([sac, crossq, slow]).values()
    assert sorted(groups) == ["algorithm=crossq", "algorithm=crossq, learning-rate=0.0003", "algorithm=sac"]
