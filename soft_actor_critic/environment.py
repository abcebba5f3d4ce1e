"""Making a Gymnasium env that SAC can drive, or a one-line reason why not."""

from __future__ import annotations

import difflib
import sys

import gymnasium as gym

from soft_actor_critic.config import RunError, reported

# MuJoCo 4 warns, on every make of gymnasium 1.4's MuJoCo tasks, that their XML uses a deprecated
# attribute. Only gymnasium can change that, so that one warning is dropped; any other still prints.
GYMNASIUM_XML_DEPRECATION = "compiler attribute 'settotalmass' is deprecated"


def make_env(env_name: str, render_mode: str | None = None) -> gym.Env:
    """gym.make with the checks SAC needs: an id gymnasium knows (or the closest ones it does), a flat Box
    observation and a bounded Box action."""
    if env_name not in gym.registry:
        matches = difflib.get_close_matches(env_name, list(gym.registry), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(matches)}?" if matches else ""
        raise RunError(f"unknown environment {env_name!r}{hint}")
    if str(gym.spec(env_name).entry_point).startswith("gymnasium.envs.mujoco"):
        drop_gymnasium_xml_deprecation()
    with reported(f"cannot make {env_name}", Exception):  # the env's own constructor may raise anything
        env = gym.make(env_name, render_mode=render_mode)
    try:
        check_spaces(env)
    except RunError:
        env.close()
        raise
    return env


def check_spaces(env: gym.Env) -> None:
    name = env.spec.id if env.spec else type(env).__name__
    actions, observations = env.action_space, env.observation_space
    if not (isinstance(actions, gym.spaces.Box) and len(actions.shape) == 1 and actions.is_bounded()):
        raise RunError(f"{name} has actions of type {actions}; SAC needs a flat Box with finite bounds")
    if not (isinstance(observations, gym.spaces.Box) and len(observations.shape) == 1):
        raise RunError(f"{name} has observations of type {observations}; SAC needs a flat Box")


def drop_gymnasium_xml_deprecation() -> None:
    import mujoco

    def warn(message: str) -> None:
        if not message.startswith(GYMNASIUM_XML_DEPRECATION):
            print(f"WARNING: {message}", file=sys.stderr)

    mujoco.set_mju_user_warning(warn)
