"""Start, resume and fork runs: the glue between TrainConfig, the dataset, the run folder and a Trainer."""
from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..config import RESUME_LOCKED, ConfigError, TrainConfig
from ..data import DataError, ImageDataset, load_cached_dataset, load_dataset
from ..runs import HOST, RunError, RunStore, load_run
from . import transfer
from .checkpoint import BEST_NAME, CheckpointError, latest_valid_checkpoint, list_checkpoints, load_usable_checkpoint
from .device import pick_device
from .memory_check import check_fits
from .trainer import Trainer

# Fields that fix the networks' shapes: a fork may change anything else (even the data).
SHAPE_FIELDS = ("resolution", "arch", "latent_dim", "g_width", "d_width", "conditional", "d_norm",
                "spectral_norm", "minibatch_std", "task")


def library_versions() -> dict[str, str]:
    import numpy
    import PIL
    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
           "pillow": PIL.__version__}
    try:
        import torchvision
        out["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def dataset_meta(ds: ImageDataset) -> dict[str, Any]:
    return {"source": ds.source, "fingerprint": ds.fingerprint, "count": len(ds), "channels": ds.channels,
            "resolution": ds.resolution, "class_names": list(ds.class_names)}


def default_name(cfg: TrainConfig) -> str:
    if cfg.name:
        return cfg.name
    data = Path(cfg.data).name if ("/" in cfg.data or "\\" in cfg.data) else cfg.data
    # The loss is in the name: runs of one family on one dataset were otherwise indistinguishable
    # in the run list (#20 item 7: every run read "0000N-dcgan-emoji64").
    return f"{cfg.arch}-{cfg.loss}-{data}" if cfg.task == "generate" else f"{cfg.task}-{data}"


def _load_data(cfg: TrainConfig, progress=None) -> ImageDataset:
    if cfg.task != "generate":  # paired or unpaired folders for image-to-image translation
        from ..translate.data import load_translation_data
        return load_translation_data(cfg.data, cfg.task, cfg.resolution, cfg.channels)
    return load_dataset(cfg.data, cfg.resolution, channels=cfg.channels, progress=progress)


def create_run(cfg: TrainConfig, runs_dir: str | Path, dataset: ImageDataset | None = None,
               progress: Callable[[int, int], None] | None = None, shared_cpu: bool = False,
               meta: dict[str, Any] | None = None, rank: int = 0, world_size: int = 1,
               device: torch.device | None = None) -> Trainer:
    """Validate, load the data (errors stop here, before any folder exists), create the run folder."""
    cfg = cfg.validate()
    ds = dataset or _load_data(cfg, progress)
    if cfg.conditional and ds.num_classes < 2:
        raise ConfigError("conditional", f"needs at least two classes, but {cfg.data} has "
                          f"{'none (no class subfolders)' if ds.num_classes == 0 else 'only one'}")
    # A step that cannot fit in free memory is refused here, naming batch_size, not at step 0 by the allocator.
    check_fits(cfg, ds.channels, ds.num_classes if cfg.conditional else 0, device or pick_device(cfg.device))
    # The transfer source is checked before the run folder exists: a bad one leaves nothing behind.
    source = transfer.load_source(cfg.init_from, cfg, ds.channels, ds.num_classes) if cfg.init_from else None
    if source is not None:
        meta = {**(meta or {}), "init_from": {"checkpoint": str(source[0]), "step": int(source[1].get("step", 0))}}
    store = RunStore.create(runs_dir, default_name(cfg), cfg.to_dict(),
                            {"versions": library_versions(), "dataset": dataset_meta(ds), "created": time.time(),
                             **(meta or {})})
    store.lock()  # a new folder: free, but held so a resume can never join this training
    store.log_event("state", state="starting", step=0, message=f"Created run {store.path.name}")
    t = Trainer(cfg, ds, store, shared_cpu=shared_cpu, rank=rank, world_size=world_size, device=device)
    if source is not None:
        transfer.apply(t, source[1])
        store.log_event("transfer", step=0, message=f"Started from the weights of {source[0]} "
                                                    f"(step {meta['init_from']['step']})")
    return t


def check_resume_changes(old: TrainConfig, new: TrainConfig, locked=RESUME_LOCKED, verb="resuming") -> None:
    for name in locked:
        if getattr(old, name) != getattr(new, name):
            raise ConfigError(name, f"cannot change from {getattr(old, name)!r} to {getattr(new, name)!r} when "
                              f"{verb}: it changes the networks or the data. Fork a new run instead.")


def newest_checkpoint(folder: str | Path, skipped: list[tuple[Path, str]] | None = None
                      ) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads and fits its config: the newest periodic one, or best.pt when its
    step is later (a crash after an evaluation but before the next periodic checkpoint, or a folder where
    the user kept only best.pt). Both hold the full training state. Files passed over for being unusable
    are added to ``skipped`` as (path, why)."""
    folder = Path(folder)
    found = latest_valid_checkpoint(folder, skipped=skipped)
    best = folder / BEST_NAME
    if best.is_file():
        try:
            state = load_usable_checkpoint(best)
        except CheckpointError as e:
            state = None
            if skipped is not None:
                skipped.append((best, str(e)))
        if state is not None and (found is None or state["step"] > found[1]["step"]):
            return best, state
    return found


def _recorded_step(info) -> int:
    """The last step a run folder recorded (status, sample grids, metric rows); 0 if none."""
    steps = [info.step] + [s for s, _ in info.samples()]
    if not any(steps):  # metrics.jsonl can be large: read only when the cheap records say nothing
        steps += [r["step"] for r in info.metrics() if isinstance(r.get("step"), int)]
    return max(steps)


def resume_run(run_dir: str | Path, steps: int | None = None, minutes: float | None = None,
               changes: dict[str, Any] | None = None, shared_cpu: bool = False, rank: int = 0,
               world_size: int = 1, device: torch.device | None = None,
               dataset: ImageDataset | None = None) -> Trainer:
    """Continue a run in its own folder from its newest valid checkpoint (or from scratch if it has
    neither a checkpoint nor any history). The folder is locked before anything slow happens, so a
    second resume (another thread, another process) is refused rather than trained alongside."""
    info = load_run(run_dir)
    if not info.config:
        raise RunError(f"cannot resume {info.path}: " + ("; ".join(info.problems) or "no config.json"))
    if info.state in ("starting", "running", "paused"):
        host = info.status.get("host")  # another machine's pid alone would point at nothing here
        raise RunError(f"{info.path.name} is still {info.state} (pid {info.status.get('pid')}"
                       + (f" on {host}" if host and host != HOST else "") + "); stop it first")
    store = RunStore(run_dir)
    store.lock()
    try:
        return _resume(info, store, steps, minutes, changes, shared_cpu, rank, world_size, device, dataset)
    except BaseException:
        store.unlock()
        raise


def _resume(info, store: RunStore, steps, minutes, changes, shared_cpu, rank, world_size, device,
            dataset) -> Trainer:
    run_dir = info.path
    old = TrainConfig.from_dict(info.config, source=str(Path(run_dir) / "config.json"))
    upd = dict(changes or {})
    if steps is not None:
        upd["steps"] = steps
    if minutes is not None:
        upd["minutes"] = minutes
    cfg = old.replace(**upd).validate()
    check_resume_changes(old, cfg)
    skipped: list[tuple[Path, str]] = []
    found = newest_checkpoint(store.checkpoints_dir, skipped)
    if found is None and (list_checkpoints(store.checkpoints_dir) or (store.checkpoints_dir / BEST_NAME).exists()):
        raise CheckpointError(f"every checkpoint in {store.checkpoints_dir} is unreadable or unusable"
                              + (f" (newest: {skipped[0][1]})" if skipped else ""))
    if found is None and (last := _recorded_step(info)) > 0:
        # Starting again at step 0 would truncate metrics.jsonl and overwrite samples and best.pt.
        raise RunError(f"{info.path.name} has trained up to step {last} (metrics.jsonl, samples/) but has no "
                       "checkpoint to continue from; resuming would start again at step 0 and erase that "
                       "history. Fork it instead (a new run folder with the same settings) or start a new run.")
    if found is not None:
        check_resume_changes(TrainConfig.from_dict(found[1]["config"]), cfg)
        if found[1]["step"] >= cfg.steps:
            raise ConfigError("steps", f"the run is already at step {found[1]['step']}; "
                              f"ask for more steps than that (e.g. --steps {found[1]['step'] * 2})")
        used_min = float(found[1].get("train_seconds") or 0.0) / 60
        if cfg.minutes > 0 and used_min >= cfg.minutes:
            raise ConfigError("minutes", f"the run has already trained {used_min:.1f} of its {cfg.minutes:g} "
                              f"minutes (a total, like steps); ask for more minutes than that "
                              f"(e.g. --minutes {max(1, round(used_min * 2))}) or 0 for no time limit")
    fp_then = info.meta.get("dataset", {}).get("fingerprint")
    fp_last = (found[1].get("dataset") or {}).get("fingerprint") if found else fp_then
    data_note = None
    try:
        ds = dataset or _load_data(cfg)
    except DataError as e:
        # The folder moved or vanished: the decoded cache of what the run last trained on still works.
        ds = load_cached_dataset(fp_last, cfg.data, cfg.resolution) if fp_last else None
        if ds is None:
            raise DataError(f"{e}; and the decoded cache of the data this run used is gone too") from None
        data_note = (f"{cfg.data} is unavailable ({e}); training continues on the decoded cache of the data "
                     "this run last used.")
    for tmp in store.checkpoints_dir.glob(".step_*.tmp"):  # left by a writer killed mid-checkpoint
        try:
            tmp.unlink()
        except OSError:
            pass
    for path, why in skipped:  # as documented: an unusable newer checkpoint is passed over, and said so
        store.log_event("warning", step=found[1]["step"] if found else 0,
                        message=f"Skipped checkpoints/{path.name}: {why}"
                        + (f"; resuming from {found[0].name}" if found else ""))
    if data_note:
        store.log_event("warning", step=found[1]["step"] if found else 0, message=data_note)
    elif fp_then and fp_then != ds.fingerprint:
        store.log_event("warning", step=found[1]["step"] if found else 0,
                        message=f"The data in {cfg.data} changed since this run started; training continues on it.")
    t = Trainer(cfg, ds, store, shared_cpu=shared_cpu, rank=rank, world_size=world_size, device=device)
    if found is not None:
        t.load_state_dict(found[1])
        t.resumed_from = found[0]
    store.truncate_metrics_after(t.step_count)  # no step appears twice in metrics.jsonl
    if cfg != old:
        from ..fsutil import UnsafePathError, atomic_write_json, read_json
        raw = read_json(store.path / RunStore.CONFIG)
        raw["config"] = cfg.to_dict()
        try:
            atomic_write_json(store.path / RunStore.CONFIG, raw, inside=store.path)
        except UnsafePathError as e:
            raise RunError(str(e)) from None
    store.write_status(state="starting", step=t.step_count, total_steps=cfg.steps, message="Resuming")
    if found is None:
        how = "Restarted (no checkpoint yet)"
    elif found[0].name == BEST_NAME:
        how = f"Resumed from {BEST_NAME} at step {t.step_count} (no periodic checkpoint that loads is as recent)"
    else:
        how = f"Resumed from {found[0].name}"
    store.log_event("state", state="starting", step=t.step_count, message=how)
    return t


def fork_run(run_dir: str | Path, changes: dict[str, Any], runs_dir: str | Path | None = None,
             shared_cpu: bool = False) -> Trainer:
    """A new run folder initialised with the source run's latest weights and an edited config."""
    info = load_run(run_dir)
    if not info.config:
        raise RunError(f"cannot fork {info.path}: " + ("; ".join(info.problems) or "no config.json"))
    old = TrainConfig.from_dict(info.config)
    cfg = old.replace(**changes)
    if "name" not in changes:
        cfg = cfg.replace(name=(old.name or default_name(old))[:52] + "-fork")
    if "init_from" not in changes:  # a fork starts from its source's checkpoint, not from its source's source
        cfg = cfg.replace(init_from="")
    cfg = cfg.validate()
    check_resume_changes(old, cfg, locked=SHAPE_FIELDS, verb="forking")
    found = newest_checkpoint(Path(run_dir) / "checkpoints")
    start_step = found[1]["step"] if found else 0
    if cfg.steps <= start_step:
        raise ConfigError("steps", f"the source is at step {start_step}; the fork needs more steps than that")
    ds = _load_data(cfg)
    if found and found[1]["dataset"]["channels"] != ds.channels:
        raise ConfigError("channels", "the new data has a different number of channels than the source run")
    t = create_run(cfg, runs_dir or Path(run_dir).parent, dataset=ds, shared_cpu=shared_cpu,
                   meta={"forked_from": {"run": str(Path(run_dir).name), "step": start_step,
                                         "changes": changes}})
    if found is not None:
        same_opt = cfg.loss == old.loss and cfg.beta1 == old.beta1 and cfg.beta2 == old.beta2
        t.load_state_dict(found[1], weights_only=True)
        if same_opt:  # keep Adam's moments: a fork that only tweaks a rate continues smoothly
            t.opt_g.load_state_dict(found[1]["opt_g"])
            t.opt_d.load_state_dict(found[1]["opt_d"])
            for opt, lr in ((t.opt_g, cfg.lr_g), (t.opt_d, cfg.lr_d)):
                for g in opt.param_groups:
                    g["lr"] = lr
    return t


__all__ = ["create_run", "resume_run", "fork_run", "DataError", "ConfigError", "CheckpointError", "RunError"]
