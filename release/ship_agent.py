"""Copy a trained run into a small run folder fit to commit: its config, its eval.csv, and a checkpoint.pt
that holds the policy's weights and the step only (no critics, optimizers or replay buffer), taken from
the run's latest checkpoint or, with --checkpoint best, from its best.pt.

    python3 release/ship_agent.py runs/lunar-tuned-seed1 runs/lunar-lander --checkpoint best

`eval --run-name lunar-lander` then works on it as on any run; `train --resume` refuses it, as it holds
nothing to continue training from.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    sys.path.insert(0, str(REPO))
    import torch

    from soft_actor_critic.config import CHECKPOINT_FILES
    from soft_actor_critic.runs import CHECKPOINT_FILE, CONFIG_FILE, EVAL_FILE, load_checkpoint, load_train_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the trained run folder")
    parser.add_argument("destination", type=Path, help="the new run folder (must not exist)")
    parser.add_argument("--checkpoint", choices=tuple(CHECKPOINT_FILES), default="last", help="which weights to ship")
    args = parser.parse_args()

    state = load_checkpoint(args.run, CHECKPOINT_FILES[args.checkpoint])
    config = load_train_config(args.run)
    if not (args.run / EVAL_FILE).is_file():
        sys.exit(f"{args.run / EVAL_FILE} is missing: ship a run trained with periodic evals")
    args.destination.mkdir(parents=True)
    shipped = dataclasses.replace(config, run_name=args.destination.name, directory=str(args.destination.parent))
    (args.destination / CONFIG_FILE).write_text(shipped.to_json())
    shutil.copyfile(args.run / EVAL_FILE, args.destination / EVAL_FILE)
    policy = {key: tensor.clone() for key, tensor in state["policy"].items()}  # no views into the full state
    torch.save({"policy": policy, "step": state["step"]}, args.destination / CHECKPOINT_FILE)
    size = (args.destination / CHECKPOINT_FILE).stat().st_size
    print(f"wrote {args.destination}: the policy of step {state['step']} ({args.checkpoint}), {size / 1e3:.0f} kB")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # a RunError names the file; anything else is worth its one line too
        sys.exit(f"ship_agent: {error}")
