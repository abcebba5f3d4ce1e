"""Making the Gymnasium env of a run's config that SAC can drive, or a one-line reason why not.

The config's env is an id gymnasium knows, or `module:EnvId` (gymnasium's own syntax) for one a module
registers when imported; its constructor's keyword arguments (--env-kwargs) and time limit
(--max-episode-steps) come from the config too, so that training, its evals, `eval`, `--resume` and a
sweep's workers all make the same env. A Dict or Tuple observation of flat Box parts is flattened by
gymnasium's FlattenObservation, in the order of the space's own keys."""

from __future__ import annotations

import difflib
import importlib
import json
import logging
import os
import sys
import warnings

import gymnasium as gym

from soft_actor_critic.config import RunError, TrainConfig, reported

# MuJoCo 4 warns, on every make of gymnasium 1.4's MuJoCo tasks, that their XML uses a deprecated
# attribute. Only gymnasium can change that, so that one warning is dropped; any other still prints.
GYMNASIUM_XML_DEPRECATION = "compiler attribute 'settotalmass' is deprecated"  # DeepMind Control's XML too
DEEPMIND_CONTROL = "dm_control/"  # the ids Shimmy registers


def make_env(config: TrainConfig, render_mode: str | None = None) -> gym.Env:
    """gym.make of the config's env, with its kwargs and time limit, and the checks SAC needs: an id
    gymnasium knows (or the closest ones it does), a flat Box observation (a Dict or Tuple of them,
    flattened) and a bounded Box action."""
    if render_mode == "rgb_array" or config.capture_video:  # the eval env of --capture-video renders
        render_off_screen()
    module, _, env_id = config.env_name.rpartition(":")
    if env_id.startswith(DEEPMIND_CONTROL) and env_id not in gym.registry:
        register_deepmind_control()
    if module:
        import_env_module(module, config.env_name)
    if env_id not in gym.registry:
        known = env_ids_of(module) if module else list(gym.registry)
        matches = difflib.get_close_matches(env_id, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(matches)}?" if matches else ""
        raise RunError(f"unknown environment {env_id!r}{' in ' + module if module else ''}{hint}")
    if str(gym.spec(env_id).entry_point).startswith("gymnasium.envs.mujoco"):
        drop_gymnasium_xml_deprecation()
    options = {"render_mode": render_mode, "max_episode_steps": config.max_episode_steps}
    with reported(f"cannot make {config.env_name}", Exception):  # the env's own constructor may raise anything
        env = gym.make(env_id, **options, **env_kwargs(config))
    try:
        return check_spaces(env)
    except RunError:
        env.close()
        raise


def has_display() -> bool:
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def render_off_screen() -> None:
    """Where there is no display, the settings that render rgb_array frames without one. DeepMind Control reads
    MUJOCO_GL when it is imported, so they come before the first env of a process that renders is made."""
    if has_display():
        return
    os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo's off-screen renderer; Box2D needs none
    # pygame.init() (classic control's renderer) would look for a display and a sound card, and
    # print an error about each to stderr although it renders fine: give it SDL's null devices.
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def register_deepmind_control() -> None:
    """DeepMind Control's ids (dm_control/<domain>-<task>-v0), which Shimmy registers: gymnasium 1.x loads no
    plugins by itself."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dm_control's import warns that GLFW finds no display: no matter
            import shimmy
    except ImportError:
        raise RunError(f"{DEEPMIND_CONTROL}... envs need Shimmy: pip install -r requirements-dmc.txt") from None
    gym.register_envs(shimmy)
    logging.getLogger("absl").addFilter(lambda record: GYMNASIUM_XML_DEPRECATION not in record.getMessage())


def import_env_module(module: str, env_name: str) -> None:
    """Import the module of a `module:EnvId`, from the working folder or the installed packages."""
    if os.getcwd() not in sys.path:  # the console script and `python3 soft_actor_critic` do not look there
        sys.path.append(os.getcwd())
    with reported(f"cannot import {module} (of --env-name {env_name})", Exception):  # its own code may raise
        importlib.import_module(module)


def env_ids_of(module: str) -> list[str]:
    """The ids of the envs a module defines, for the 'did you mean' hint of an id it does not."""
    return [env_id for env_id, spec in gym.registry.items() if module_of(spec.entry_point).startswith(module)]


def module_of(entry_point) -> str:
    """The module an env's entry point is in: 'module:Class', or a class or function itself."""
    return entry_point.partition(":")[0] if isinstance(entry_point, str) else getattr(entry_point, "__module__", "")


def env_kwargs(config: TrainConfig) -> dict:
    """--env-kwargs as keyword arguments: each value read as JSON where it parses, else as text."""
    kwargs = {}
    for item in config.env_kwargs:
        key, _, text = item.partition("=")
        try:
            kwargs[key] = json.loads(text)
        except json.JSONDecodeError:
            kwargs[key] = text
    return kwargs


def check_spaces(env: gym.Env) -> gym.Env:
    """The env, its observation flattened if it is a Dict or Tuple of flat Box parts; a RunError for spaces
    SAC cannot drive, pixels included."""
    name = env.spec.id if env.spec else type(env).__name__
    actions, observations = env.action_space, env.observation_space
    if not (isinstance(actions, gym.spaces.Box) and len(actions.shape) == 1 and actions.is_bounded()):
        raise RunError(f"{name} has actions of type {actions}; SAC needs a flat Box with finite bounds")
    nested = isinstance(observations, (gym.spaces.Dict, gym.spaces.Tuple))
    if isinstance(observations, gym.spaces.Dict):
        parts = list(observations.spaces.values())
    else:
        parts = list(observations.spaces) if nested else [observations]
    if any(isinstance(part, gym.spaces.Box) and (len(part.shape) == 3 or part.dtype == "uint8") for part in parts):
        raise RunError(f"{name} observes pixels ({observations}): SAC here learns from state vectors, not images")
    if not all(flat_box(part, scalar_allowed=nested) for part in parts):
        raise RunError(f"{name} has observations of type {observations}; SAC needs a flat Box (or a Dict of them)")
    return gym.wrappers.FlattenObservation(env) if nested else env


def flat_box(space: gym.Space, *, scalar_allowed: bool) -> bool:
    """A Box of one dimension; or, as a part of a Dict or Tuple, of none: a scalar (DeepMind Control has them),
    which flattens to one number."""
    return isinstance(space, gym.spaces.Box) and (len(space.shape) == 1 or scalar_allowed and space.shape == ())


def drop_gymnasium_xml_deprecation() -> None:
    import mujoco

    def warn(message: str) -> None:
        if not message.startswith(GYMNASIUM_XML_DEPRECATION):
            print(f"WARNING: {message}", file=sys.stderr)

    mujoco.set_mju_user_warning(warn)
