"""Multi-process training under torchrun: process group set-up and rank-aware create/resume.

Only rank 0 owns the run folder; every rank builds the same Trainer (DDP inside) on its shard.
The batch size in the config is per rank: the global batch is batch_size x world size.
"""
from __future__ import annotations

import gc
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ..config import TrainConfig
from ..data import load_dataset
from .checkpoint import load_checkpoint
from .trainer import Trainer


def world_from_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) as set by torchrun; (0, 1, 0) in a plain process."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def is_distributed_launch() -> bool:
    """Started by torchrun (any number of processes, one included), or with WORLD_SIZE > 1."""
    return world_from_env()[1] > 1 or "TORCHELASTIC_RUN_ID" in os.environ


def init_process_group(cfg: TrainConfig) -> torch.device:
    """nccl on GPUs (one per local rank), gloo on CPUs; returns this rank's device."""
    rank, world, local = world_from_env()
    use_cuda = torch.cuda.is_available() and cfg.device in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(minutes=30))
    return device


def _broadcast(obj: Any) -> Any:
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _dataset_rank0_first(cfg: TrainConfig):
    """Rank 0 builds the decoded cache once; the others then open the same cache file."""
    if cfg.task != "generate":  # translation folders have no shared cache: every rank decodes its own copy
        from ..translate.data import load_translation_data
        return load_translation_data(cfg.data, cfg.task, cfg.resolution, cfg.channels)
    rank = dist.get_rank()
    ds = load_dataset(cfg.data, cfg.resolution, channels=cfg.channels) if rank == 0 else None
    dist.barrier()
    return ds if ds is not None else load_dataset(cfg.data, cfg.resolution, channels=cfg.channels)


def create_distributed(cfg: TrainConfig, runs_dir: str | Path) -> Trainer:
    from .setup import create_run
    device = init_process_group(cfg)
    rank, world = dist.get_rank(), dist.get_world_size()
    ds = _dataset_rank0_first(cfg)
    if rank == 0:
        t = create_run(cfg, runs_dir, dataset=ds, rank=rank, world_size=world, device=device,
                       meta={"distributed": {"world_size": world, "backend": dist.get_backend()}})
        _broadcast(str(t.store.path))
        return t
    # Build first: DDP's constructor is a collective that rank 0 runs inside create_run, before
    # its broadcast, and collectives must come in the same order on every rank.
    t = Trainer(cfg.validate(), ds, None, rank=rank, world_size=world, device=device)
    if cfg.init_from:  # every rank starts from the same transferred weights (DDP synced only the random ones)
        from . import transfer
        transfer.apply(t, transfer.load_source(cfg.init_from, cfg, ds.channels, ds.num_classes)[1])
    _broadcast(None)
    return t


def resume_distributed(run_dir: str | Path, steps: int | None = None, minutes: float | None = None,
                       changes: dict | None = None) -> Trainer:
    """All ranks resume from the checkpoint rank 0 chose (broadcast by path)."""
    from ..runs import load_run
    from .setup import resume_run
    cfg0 = TrainConfig.from_dict(load_run(run_dir).config)
    upd = dict(changes or {})
    if steps is not None:
        upd["steps"] = steps
    if minutes is not None:
        upd["minutes"] = minutes
    device = init_process_group(cfg0)
    rank, world = dist.get_rank(), dist.get_world_size()
    ds = _dataset_rank0_first(cfg0)
    if rank == 0:
        t = resume_run(run_dir, steps=steps, minutes=minutes, changes=changes, rank=rank, world_size=world,
                       device=device, dataset=ds)
        _broadcast(str(t.resumed_from) if t.resumed_from else None)
        return t
    # The same config rank 0 derives (resume_run validates it there); built before the broadcast
    # for the same collective-order reason as in create_distributed.
    t = Trainer(cfg0.replace(**upd), ds, None, rank=rank, world_size=world, device=device)
    ckpt = _broadcast(None)
    if ckpt:
        t.load_state_dict(load_checkpoint(ckpt))
    return t


def shutdown(trainer: Trainer | None = None, in_step: bool = True) -> None:
    """End this rank's part of the job: wait for the others, then free the process group here.

    Why both: a rank that tears gloo down while a peer is still inside a collective (rank 0 writes
    the final checkpoint and samples after the loop), or whose process group outlives
    destroy_process_group() because the DDP wrappers still hold it and is then freed during
    interpreter exit, can abort with "terminate called without an active exception" after a run
    that finished fine. `in_step=False` (this rank may have failed on its own) skips the barrier,
    which the other ranks would never reach.
    """
    if not dist.is_initialized():
        return
    if in_step:
        dist.barrier()
    if trainer is not None:  # drop the DDP wrappers (and with them their hold on the group)
        trainer.G_fwd, trainer.D_fwd = trainer.G, trainer.D
    gc.collect()
    dist.destroy_process_group()
