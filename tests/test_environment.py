import gymnasium as gym
import numpy as np
import pytest

from soft_actor_critic.__main__ import main
from soft_actor_critic.config import RunError, TrainConfig
from soft_actor_critic.environment import check_spaces, make_env

BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


class SpacesEnv(gym.Env):
    """An env that only has spaces: enough for the checks."""

    def __init__(self, observation_space=BOX, action_space=BOX):
        self.observation_space, self.action_space = observation_space, action_space


@pytest.mark.parametrize(
    "spaces, words",
    [
        ({"action_space": gym.spaces.Discrete(3)}, r"actions of type Discrete\(3\); SAC needs a flat Box"),
        ({"action_space": gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32)}, r"actions of type Box\(.*\(2, 2\)"),
        ({"action_space": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)}, r"actions of type Box\(-inf"),
        ({"observation_space": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)}, "observes pixels .*not images"),
        ({"observation_space": gym.spaces.Box(0.0, 1.0, (3, 8, 8), np.float32)}, "observes pixels"),
        ({"observation_space": gym.spaces.Dict({"camera": gym.spaces.Box(0, 255, (8,), np.uint8)})}, "pixels"),
        ({"observation_space": gym.spaces.Dict({"grid": gym.spaces.Box(0, 1, (2, 2))})}, "type Dict.*a Dict of them"),
        ({"observation_space": gym.spaces.Box(-1.0, 1.0, (), np.float32)}, "observations of type .*flat Box"),
    ],
)
def test_spaces_sac_cannot_drive_are_refused(spaces, words):
    with pytest.raises(RunError, match=words):
        check_spaces(SpacesEnv(**spaces))


def test_a_flat_bounded_box_env_is_made_with_its_spaces():
    gym.register("test/FlatBox-v0", entry_point=lambda **kwargs: SpacesEnv())
    try:
        env = make_env(TrainConfig(env_name="test/FlatBox-v0"))
    finally:
        del gym.registry["test/FlatBox-v0"]
    assert env.observation_space == BOX and env.action_space == BOX


def train_on(entry_point, capsys, tmp_path) -> str:
    """Run `train` on an env registered for the test; returns stderr after checking the exit and folder."""
    gym.register("test/Made-v0", entry_point=entry_point)
    try:
        assert main(["train", "--env-name", "test/Made-v0", "--directory", str(tmp_path)]) == 1
    finally:
        del gym.registry["test/Made-v0"]
    assert list(tmp_path.iterdir()) == []
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    return error


def test_image_observations_are_a_one_line_error_with_nothing_written(capsys, tmp_path):
    image = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
    error = train_on(lambda **kwargs: SpacesEnv(observation_space=image), capsys, tmp_path)
    assert "observes pixels" in error and "not images" in error


def test_a_dict_of_flat_and_scalar_boxes_is_flattened_in_the_sorted_order_of_its_keys():
    scalar = gym.spaces.Box(-1.0, 1.0, (), np.float64)  # as DeepMind Control's observations have
    space = gym.spaces.Dict({"velocity": scalar, "position": gym.spaces.Box(-1.0, 1.0, (2,), np.float64)})
    env = check_spaces(SpacesEnv(observation_space=space))
    assert env.observation_space.shape == (3,)
    flat = env.observation({"velocity": np.float64(0.5), "position": np.array([0.1, 0.2])})
    assert flat.tolist() == [0.1, 0.2, 0.5]  # position before velocity: gymnasium sorts a dict's keys


def test_an_env_whose_constructor_fails_is_a_one_line_error(capsys, tmp_path):
    # SpacesEnv takes no render_mode, so gym.make's call fails inside the env's own code
    assert "cannot make test/Made-v0" in train_on(lambda: SpacesEnv(), capsys, tmp_path)


def test_the_deprecation_mujoco_finds_in_gymnasiums_xml_is_not_printed(capfd):
    """MuJoCo 4 warns of it on every make of a MuJoCo task, train's two envs included; only gymnasium
    could act on it. Any other MuJoCo warning still reaches stderr."""
    mujoco = pytest.importorskip("mujoco")
    mujoco.set_mju_user_warning(None)  # MuJoCo's own printer, as in a fresh process
    make_env(TrainConfig(env_name="InvertedPendulum-v5")).close()
    assert capfd.readouterr().err == ""
    mujoco.get_mju_user_warning()("Nan, Inf or huge value in QACC")
    assert capfd.readouterr().err == "WARNING: Nan, Inf or huge value in QACC\n"
