"""``--tensorboard``: a log hook mirroring a run's metrics, sample grids and findings into RUN/tb/ for TensorBoard.

It reads what the run folder already holds (the metrics row it is handed, new events.jsonl lines:
sample grids by path, findings), so it needs no other hook's cooperation and the run folder stays
the record; RUN/tb/ is only a copy in TensorBoard's format (``tensorboard --logdir runs``).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import ConfigError
from ..fsutil import read_jsonl

if TYPE_CHECKING:
    from .trainer import Trainer

TB_DIR = "tb"


def check_available() -> None:
    """ConfigError naming --tensorboard when the package is missing (checked before a run folder is made)."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError("--tensorboard", "needs the tensorboard package: pip install tensorboard "
                                           "(or pip install '.[tensorboard]')") from None


def _summary_writer(log_dir: Path):
    check_available()
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(log_dir=str(log_dir))


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class TensorBoardMirror:
    """hook(trainer, row): every numeric metric as a scalar at the row's step; each new ``sample`` event's
    PNG as an image; each new ``finding`` event as text (kind, severity, status, suggestion)."""

    def __init__(self, trainer: Trainer):
        if trainer.store is None:
            raise ConfigError("--tensorboard", "needs a run folder (rank 0 of a run)")
        self.run = Path(trainer.store.path)
        self.writer = _summary_writer(self.run / TB_DIR)
        # A resumed run: mirror only what happens from now on (the earlier sessions wrote their own).
        self.offset = read_jsonl(self.run / "events.jsonl")[1] if (self.run / "events.jsonl").exists() else 0

    def __call__(self, trainer: Trainer, row: dict) -> None:
        step = int(row.get("step", trainer.step_count))
        for k, v in row.items():
            if _is_num(v) and k != "step":
                self.writer.add_scalar(k, v, step)
        self._events(step)
        self.writer.flush()

    def _events(self, step: int) -> None:
        events, self.offset = read_jsonl(self.run / "events.jsonl", self.offset)
        for ev in events:
            at = int(ev["step"]) if _is_num(ev.get("step")) else step
            if ev.get("type") == "sample" and isinstance(ev.get("path"), str):
                self._image(self.run / ev["path"], at)
            elif ev.get("type") == "finding":
                text = (f"**{ev.get('kind')}** ({ev.get('severity')}, {ev.get('status')}): "
                        f"{ev.get('suggestion') or ev.get('explanation') or ev.get('message') or ''}")
                self.writer.add_text(f"findings/{ev.get('kind')}", text, at)

    def _image(self, path: Path, step: int) -> None:
        import numpy as np
        from PIL import Image
        if not path.is_file() or not path.resolve().is_relative_to(self.run.resolve()):
            return  # gone already (pruned) or not inside the run: nothing to mirror
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
        self.writer.add_image("samples", arr, step, dataformats="HWC")

    def close(self) -> None:
        """The events written after the last log step (the final grid), then close the event file."""
        self._events(-1)
        self.writer.close()
