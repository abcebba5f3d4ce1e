"""PointReach-v0: a point in the plane that must reach a target, written from scratch as a user's own env.

Importing this module registers it, so that, from the repository's root,

    python3 soft_actor_critic train --env-name examples.point_reach:PointReach-v0 --env-kwargs target=0.5 noise=0.01

trains SAC on it. Its observation is a Dict (the point's position and the target's), which training flattens;
its action is the point's velocity, each coordinate in [-1, 1]; its reward is minus the distance to the target,
so that a policy that heads straight there scores about -5 over an episode of 50 steps, and one that stays
put about -40."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

STEP = 0.1  # how far one action of 1 moves the point
SIZE = 64  # pixels of a rendered frame's side


class PointReach(gym.Env):
    """`target`: the target's two coordinates (one number: both the same); `noise`: the standard deviation of
    the Gaussian noise added to each move."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, target: float | list[float] = 0.5, noise: float = 0.0, render_mode: str | None = None):
        self.target = np.broadcast_to(np.asarray(target, dtype=np.float32), (2,)).copy()
        self.noise = noise
        self.render_mode = render_mode
        plane = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
        self.observation_space = gym.spaces.Dict({"position": plane, "target": plane})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.position = np.zeros(2, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        return self.observation(), {}

    def step(self, action):
        move = STEP * np.clip(action, -1.0, 1.0) + self.noise * self.np_random.normal(size=2)
        self.position = np.clip(self.position + move, -2.0, 2.0).astype(np.float32)
        distance = float(np.linalg.norm(self.position - self.target))
        return self.observation(), -distance, False, False, {"distance": distance}

    def observation(self) -> dict:
        return {"position": self.position.copy(), "target": self.target.copy()}

    def render(self):
        """The plane as an RGB image: the target green, the point white."""
        frame = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
        for (x, y), color in ((self.target, (0, 200, 0)), (self.position, (255, 255, 255))):
            column, row = (int((coordinate + 2.0) / 4.0 * (SIZE - 1)) for coordinate in (x, -y))
            frame[max(row - 1, 0) : row + 2, max(column - 1, 0) : column + 2] = color
        return frame


gym.register("PointReach-v0", entry_point=PointReach, max_episode_steps=50)
