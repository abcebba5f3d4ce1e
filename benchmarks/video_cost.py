"""What `train --capture-video` adds to a periodic eval: one deterministic episode of an untrained policy (its
length is the env's time limit when nothing ends it first), timed without a video and with one (every
frame_skip-th frame, up to the eval's VIDEO_FRAMES, rendered off-screen, quantized and written as the GIF the
eval writes), each `--repeats` times, alternating.

    python3 benchmarks/video_cost.py                                  # HalfCheetah-v5 and Hopper-v5
    python3 benchmarks/video_cost.py --envs Pendulum-v1 LunarLanderContinuous-v3 --repeats 5

It prints, per env, the episode's length, the frames the GIF keeps, and the median seconds of the episode
without and with its video, and their ratio. Where no GPU renders (Mesa's software OpenGL on a CPU machine),
rendering dominates.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from soft_actor_critic.agent import policy_network  # noqa: E402
from soft_actor_critic.config import TrainConfig  # noqa: E402
from soft_actor_critic.environment import make_env  # noqa: E402
from soft_actor_critic.evaluate import gif_frame_skip, rollout, steps_per_second, write_gif  # noqa: E402
from soft_actor_critic.periodic_eval import VIDEO_FRAMES  # noqa: E402


def timed_episode(env, policy, frame_skip: int | None, folder: Path) -> tuple[float, int, int]:
    """Seconds of one seeded episode (and of writing its GIF, with frame_skip), its length and its frames."""
    start = time.perf_counter()
    _, length, frames = rollout(env, policy, deterministic=True, seed=1, frame_skip=frame_skip, max_frames=VIDEO_FRAMES)
    if frames:
        write_gif(frames, folder / "episode.gif", steps_per_second(env) / frame_skip)
    return time.perf_counter() - start, length, len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["HalfCheetah-v5", "Hopper-v5"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| env | steps | GIF frames | eval episode, s | with video, s | ratio |\n|---|---:|---:|---:|---:|---:|")
    for env_name in args.envs:
        config = TrainConfig(env_name=env_name)
        env = make_env(config, render_mode="rgb_array")
        space = env.action_space
        policy = policy_network(config, env.observation_space.shape[0], space.shape[0], space.low, space.high)
        plain, filmed = [], []
        with tempfile.TemporaryDirectory() as folder:
            for _ in range(args.repeats):
                seconds, length, _ = timed_episode(env, policy, None, Path(folder))
                plain.append(seconds)
                seconds, _, frames = timed_episode(env, policy, gif_frame_skip(env), Path(folder))
                filmed.append(seconds)
        without, with_video = statistics.median(plain), statistics.median(filmed)
        print(f"| {env_name} | {length} | {frames} | {without:.2f} | {with_video:.2f} | {with_video / without:.1f} |")
        env.close()


if __name__ == "__main__":
    main()
