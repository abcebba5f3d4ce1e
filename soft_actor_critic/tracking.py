"""Where a run's curves go: TensorBoard's event files in the run folder and, with --track, also a Weights &
Biases run (as CleanRL's --track) that gets the same scalars, the config and the eval videos. The training
loop writes to one writer and knows neither."""

from __future__ import annotations

import dataclasses
import importlib.util
import secrets
from pathlib import Path

from PIL import Image
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

from soft_actor_critic.config import Interrupted, RunError, TrainConfig, reported

WANDB_ID_FILE = "wandb_id.txt"  # the run's W&B id: --resume continues that W&B run


class RunWriter(SummaryWriter):
    """TensorBoard's writer of a run, which also takes GIFs."""

    def __init__(self, run_dir: Path, config: TrainConfig, *, purge_step: int | None = None) -> None:
        super().__init__(str(run_dir), purge_step=purge_step)

    def add_gif(self, tag: str, path: Path, step: int) -> None:
        """A GIF file, shown in TensorBoard's Images tab where it plays: an image summary of the GIF's bytes, as
        add_video writes one (add_video itself would need moviepy to encode frames the eval has encoded already)."""
        with Image.open(path) as gif:
            width, height = gif.size
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=path.read_bytes())
        self.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)


class TrackedWriter(RunWriter):
    """A RunWriter whose scalars and GIFs also go to a W&B run of their own, with the run's config, named after
    the run folder and kept in it (<run>/wandb). Its id is kept in the folder, so that a resumed run continues
    the same W&B run; the scalars are plotted against `global_step`, the env step. (W&B keeps what a stopped
    run logged after its last checkpoint beside what the resumed run logs again for those steps, where
    TensorBoard hides the first.)"""

    def __init__(self, run_dir: Path, config: TrainConfig, *, purge_step: int | None = None) -> None:
        # W&B first: a run that cannot start it opens no TensorBoard file
        with reported("--track: cannot start a W&B run", Exception):  # a broken install, no login, a bad entity...
            import wandb

            self.run = wandb.init(
                project=config.wandb_project,
                entity=config.wandb_entity,
                group=config.wandb_group,
                name=run_dir.name,
                id=wandb_id(run_dir),
                resume="allow",
                dir=run_dir,
                config=dataclasses.asdict(config),
                reinit="create_new",  # packed seeds: one W&B run per run, all in this process
            )
        self.wandb, self.failed = wandb, False
        self.run.define_metric("global_step")
        self.run.define_metric("*", step_metric="global_step")
        super().__init__(run_dir, config, purge_step=purge_step)

    def add_scalar(self, tag: str, scalar_value, global_step: int | None = None, *args, **kwargs) -> None:
        super().add_scalar(tag, scalar_value, global_step, *args, **kwargs)
        self.run.log({tag: scalar_value, "global_step": global_step})

    def add_gif(self, tag: str, path: Path, step: int) -> None:
        super().add_gif(tag, path, step)
        self.run.log({tag: self.wandb.Video(str(path), format="gif"), "global_step": step})

    def __exit__(self, error_type, error, traceback) -> None:
        # a run stopped by an error is a failed W&B run; one stopped by Ctrl-C or SIGTERM has checkpointed
        self.failed = error_type is not None and not issubclass(error_type, Interrupted)
        super().__exit__(error_type, error, traceback)

    def close(self) -> None:
        super().close()
        self.run.finish(exit_code=1 if self.failed else 0)


def wandb_id(run_dir: Path) -> str:
    """The run's W&B id, made (and kept in the run folder) the first time the run is tracked."""
    path = run_dir / WANDB_ID_FILE
    if not path.is_file():
        with reported(f"cannot write {path}", OSError):
            path.write_text(secrets.token_hex(8) + "\n")
    return path.read_text().strip()


def writer_class(config: TrainConfig) -> type[RunWriter]:
    """The writer of a run of `config`. Called before the run folder is made: --track without wandb is refused
    before anything is written."""
    if not config.track:
        return RunWriter
    if importlib.util.find_spec("wandb") is None:
        raise RunError("--track needs Weights & Biases: pip install -r requirements-track.txt")
    return TrackedWriter
