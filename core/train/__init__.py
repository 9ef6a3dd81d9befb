"""Training: the Trainer, its loop, checkpoints, and run creation/resume/fork."""
from .checkpoint import CheckpointError, latest_valid_checkpoint, load_checkpoint, save_checkpoint
from .device import pick_device, pick_precision
from .loop import run_loop
from .session import run_training, standard_hooks
from .setup import create_run, fork_run, resume_run
from .trainer import Trainer

__all__ = ["Trainer", "run_training", "run_loop", "standard_hooks", "create_run", "resume_run", "fork_run", "load_checkpoint", "save_checkpoint",
           "latest_valid_checkpoint", "CheckpointError", "pick_device", "pick_precision"]
