"""The training loop around Trainer.step: logging, samples, checkpoints, control, failure handling."""
from __future__ import annotations

import errno
import math
import resource
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..fsutil import atomic_write_bytes
from ..imaging import grid_png
from ..runs import read_control, read_control_checked
from .checkpoint import BEST_NAME, checkpoint_name, rotate_checkpoints, save_checkpoint
from .ranks import any_across_ranks, mean_across_ranks

if TYPE_CHECKING:
    from .trainer import Trainer

CONTROL_POLL_S = 0.5
# status.json is rewritten at least this often (also while paused), so readers can tell a live run
# from a dead one: core.runs treats a run whose status is older than STALE_AFTER_S as interrupted.
HEARTBEAT_S = 60.0


class Diverged(RuntimeError):
    """Training produced non-finite losses or weights."""


# A log hook: ``hook(trainer, row) -> list[event dict] | None``, called at every log step before
# the metrics row is written, so it may add keys to ``row`` (e.g. ``metric/swd``); each returned
# event (``{"type": "finding", ...}``) is appended to events.jsonl and passed to ``on_event``.
# The caller builds them (core.train.session.standard_hooks): the loop knows none by name.
Hook = Callable[["Trainer", dict], "list[dict[str, Any]] | None"]


class LoopContext:
    """Mutable bookkeeping of one ``run_loop`` call (kept off the Trainer so the Trainer stays pure)."""

    def __init__(self, t: Trainer, hooks: Sequence[Hook], should_stop, on_event, on_status):
        self.t = t
        self.should_stop = should_stop or (lambda: False)
        self.on_event = on_event or (lambda ev: None)
        self.on_status = on_status or (lambda st: None)
        self.last_fields: dict[str, Any] = {}
        self.start_wall = time.time()
        self.start_step = t.step_count
        # Wall time spent training (pauses excluded) in every session so far: the minutes budget and ETA.
        self.active_s = t.train_seconds
        self.window: dict[str, torch.Tensor] = {}
        self.window_n = 0
        self.window_t0 = time.perf_counter()
        self.window_step0 = t.step_count
        self.sec_per_step: float | None = None
        self.last_control_check = 0.0
        self.control_mtime = None
        self.control_warned: set[tuple[str, str]] = set()
        # Requests already in control.json when this process starts were meant for an earlier one.
        self.ckpt_seq_seen = read_control(t.store.path).get("checkpoint_seq") if t.store else None
        self.paused = False
        self.want_pause = False
        self.ckpt_requested = False
        self.last_sample_step = self.last_ckpt_step = -1
        self.stop_requested = False
        self.budget_used = False
        self.hooks = list(hooks)
        self.last_status = time.monotonic()

    # ---------------------------------------------------------------- events
    def event(self, type: str, **fields: Any) -> None:
        ev = {"type": type, "step": self.t.step_count, **fields}
        if self.t.store is not None:
            ev = self.t.store.log_event(type, step=self.t.step_count, **fields)
        self.on_event(ev)

    def status(self, **fields: Any) -> None:
        """Write status.json (rank 0) and tell ``on_status`` (a progress bar) what it now says."""
        self.last_fields.update(fields)
        if self.t.store is not None:
            self.t.store.write_status(**fields)
            self.last_status = time.monotonic()
            self.on_status(self.t.store.status)
        else:
            self.on_status(dict(self.last_fields))

    def heartbeat(self) -> None:
        """Refresh status.json's timestamp when nothing else has for HEARTBEAT_S (a long pause, slow steps)."""
        if time.monotonic() - self.last_status >= HEARTBEAT_S:
            self.status()

    # ---------------------------------------------------------------- control
    def poll_control(self) -> None:
        """Read control.json when it changed (stat is cheap; reading it every step would not be)."""
        now = time.monotonic()
        if now - self.last_control_check < CONTROL_POLL_S or self.t.store is None:
            return
        self.last_control_check = now
        path = self.t.store.path / "control.json"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return
        if mtime == self.control_mtime:
            return
        self.control_mtime = mtime
        ctl, problems = read_control_checked(self.t.store.path)
        for field, why in problems:  # what cannot be used is ignored, and said once per problem
            if (field, why) not in self.control_warned:
                self.control_warned.add((field, why))
                where = "control.json" if field == "control.json" else f"{field} in control.json"
                self.event("warning", message=f"Ignored {where} ({path}): {why}. Training goes on; "
                                              "write the file again with the studio or `write_control`.")
        seq = ctl.get("checkpoint_seq")
        if seq is not None and seq != self.ckpt_seq_seen:
            self.ckpt_seq_seen = seq
            self.ckpt_requested = True
        if "state" in ctl and "time" not in ctl:
            return  # a command without a valid time cannot be told from one left over by an earlier process
        if ctl.get("time", 0) < self.start_wall:
            return  # a command left over from before this process started (e.g. "stopped" before resume)
        state = ctl.get("state")
        if state == "stopped":
            self.stop_requested = True
        elif state in ("paused", "running"):
            self.want_pause = state == "paused"

    def decide(self) -> tuple[bool, bool, bool]:
        """(stop, paused, checkpoint_now), shared by every rank so that all ranks stop, pause and
        checkpoint at the same step (collectives would hang otherwise). Rank 0 reads the run's
        control file and time budget; a stop asked of any rank (SIGTERM from torchrun on Ctrl-C or
        a scheduler's preemption reaches every worker) stops them all. ``budget_used`` records
        whether the stop is the time budget's (a normal finish) on every rank alike."""
        t = self.t
        if self.should_stop():
            self.stop_requested = True
        if t.rank == 0:
            self.poll_control()
            budget = t.cfg.minutes > 0 and self.active_s >= t.cfg.minutes * 60
            flags = [self.stop_requested, budget, self.want_pause, self.ckpt_requested]
        else:
            flags = [self.stop_requested, False, False, False]
        if t.world_size > 1:
            flags = any_across_ranks(flags, t.device)
        user_stop, budget, pause, ckpt = flags
        self.stop_requested = user_stop
        self.budget_used = budget and not user_stop
        stop = user_stop or budget
        self.ckpt_requested = False
        if pause != self.paused and not stop:
            self.paused = pause
            self.status(state="paused" if pause else "running")
            self.event("state", state="paused" if pause else "running", message="Paused" if pause else "Resumed")
        return stop, pause, ckpt

    # ---------------------------------------------------------------- outputs
    def sample(self) -> None:
        t = self.t
        if t.store is None:
            return
        png = grid_png(t.sample_fixed(), nrow=8)
        path = t.store.samples_dir / f"step_{t.step_count:07d}.png"
        atomic_write_bytes(path, png, fsync=False, inside=t.store.path)  # a link swapped in mid-run is refused
        self.last_sample_step = t.step_count
        self.event("sample", path=f"samples/{path.name}")

    def checkpoint(self, reason: str = "periodic") -> None:
        t = self.t
        if t.store is None and t.world_size == 1:
            return
        if not t.weights_finite():
            raise Diverged("weights became non-finite; the last good checkpoint is kept")
        t.train_seconds = self.active_s
        state = t.state_dict()  # a collective under DDP: every rank takes part
        self.last_ckpt_step = t.step_count
        if t.store is None:
            return
        path = t.store.checkpoints_dir / checkpoint_name(t.step_count)
        save_checkpoint(path, state)
        rotate_checkpoints(t.store.checkpoints_dir, t.cfg.keep_checkpoints)
        self.last_ckpt_step = t.step_count
        self.event("checkpoint", path=f"checkpoints/{path.name}", reason=reason)

    def save_best_if_asked(self) -> list[dict[str, Any]]:
        """Write checkpoints/best.pt when a hook asked for it (``t.best_requested``, set by the quality
        monitor on a new best score). Hooks run on rank 0 only, while the state to save is a
        collective (every rank's RNG is gathered), so under DDP the ranks first agree on whether to
        save: each log step costs one tiny all-reduce, and no rank is left waiting in a collective
        the others never join."""
        t = self.t
        want = bool(t.best_requested)
        t.best_requested = False
        if t.world_size > 1:
            (want,) = any_across_ranks([want], t.device)
        if not want:
            return []
        state = t.state_dict()
        if t.store is None:
            return []
        try:
            save_checkpoint(t.store.checkpoints_dir / BEST_NAME, state)
        except OSError as e:  # the training itself is fine: say so and keep going
            return [{"type": "warning", "message": f"Could not save checkpoints/{BEST_NAME}: {e}. "
                                                   "The previous best.pt (if any) is intact."}]
        return []

    def log(self, last: bool = False) -> dict[str, Any]:
        """Write a metrics row for the steps since the previous one; ``last``: the run ends here
        (hooks then also do their end-of-run work, e.g. score the final generator)."""
        t, cfg = self.t, self.t.cfg
        t.finishing = last
        now = time.perf_counter()
        n_steps = t.step_count - self.window_step0
        dt = max(now - self.window_t0, 1e-9)
        row: dict[str, Any] = {"step": t.step_count, "time": time.time()}
        if t.world_size > 1:
            self.window = mean_across_ranks(self.window, t.device)
        for k, v in self.window.items():
            row[k] = float(v) / max(self.window_n, 1) if not k.startswith(("grad/", "prog/")) else float(v)
        nonfinite = [k for k in ("loss/d", "loss/g") if k in row and not math.isfinite(row[k])]
        sps = dt / max(n_steps, 1)
        self.sec_per_step = sps if self.sec_per_step is None else 0.7 * self.sec_per_step + 0.3 * sps
        img_per_s = n_steps * cfg.batch_size * cfg.n_critic * t.world_size / dt
        row.update({"lr/g": t.opt_g.param_groups[0]["lr"], "lr/d": t.opt_d.param_groups[0]["lr"],
                    "perf/img_per_s": img_per_s, "perf/sec_per_step": sps, "epoch": t.sampler.epoch})
        row["mem/peak_gb"] = _peak_memory_gb(t.device)
        if t.threads:
            row["perf/threads"] = t.threads  # explains a throughput change when the thread count adapts
        self.window, self.window_n = {}, 0
        self.window_t0, self.window_step0 = now, t.step_count
        events = []
        if not nonfinite:
            for hook in self.hooks:
                try:
                    events.extend(hook(t, row) or [])
                except Exception as e:  # a diagnostic must never end a training run (nor, under DDP,
                    # leave the other ranks waiting in the next collective)
                    events.append({"type": "warning", "message": f"A log hook ({type(hook).__name__}) failed at "
                                   f"step {t.step_count} and was skipped: {type(e).__name__}: {e}"})
        events.extend(self.save_best_if_asked())
        if t.store is not None:
            t.store.log_metrics(row)
        for ev in events:
            ev = dict(ev)
            ev.pop("step", None)
            self.event(ev.pop("type", "finding"), **ev)
        self.status(state="running", step=t.step_count, total_steps=cfg.steps, img_per_s=img_per_s,
                    sec_per_step=self.sec_per_step, eta_s=self.eta(), elapsed_s=self.active_s,
                    images_seen=t.images_seen, epoch=t.sampler.epoch, threads=t.threads,
                    last={k: row.get(k) for k in ("loss/d", "loss/g", "d/real", "d/fake")})
        if nonfinite:
            raise Diverged(f"non-finite {' and '.join(nonfinite)} at step {t.step_count}")
        return row

    def eta(self) -> float | None:
        t, cfg = self.t, self.t.cfg
        if self.sec_per_step is None:
            return None
        eta = (cfg.steps - t.step_count) * self.sec_per_step
        if cfg.minutes > 0:
            eta = min(eta, max(0.0, cfg.minutes * 60 - self.active_s))
        return eta


def run_loop(t: Trainer, hooks: Sequence[Hook] = (), should_stop: Callable[[], bool] | None = None,
             on_event: Callable[[dict], None] | None = None,
             on_status: Callable[[dict], None] | None = None) -> str:
    """Train until steps/minutes are used up or a stop is asked for; return the final state.

    ``hooks`` run at every log step (rank 0 builds them; other ranks pass none); ``should_stop``
    is polled between steps; ``on_event`` receives every event written to events.jsonl and
    ``on_status`` the status after each update. Failures never propagate: they end the run as
    ``failed`` or ``diverged`` with a readable message in events.jsonl, and the last good
    checkpoint stays on disk.
    """
    t.apply_threads()  # this may be a new thread: thread settings are per thread
    ctx = LoopContext(t, hooks, should_stop, on_event, on_status)
    cfg = t.cfg
    ctx.status(state="running", step=t.step_count, total_steps=cfg.steps, device=str(t.device),
               precision=t.precision.label, threads=t.threads, message="")
    ctx.event("state", state="running", message=f"Training on {t.device} ({t.precision.label})"
              + (f", CPU threads adapt to the load ({'/'.join(map(str, t.thread_tuner.candidates))}, "
                 f"starting with {t.threads})" if t.thread_tuner else
                 f", {t.threads} CPU thread(s)" if t.threads else ""))
    final, message, tb = "finished", "Finished", None
    try:
        if t.store is not None and not (t.store.path / "reals.png").exists():
            atomic_write_bytes(t.store.path / "reals.png", grid_png(t.dataset.grid_sample(64, cfg.seed), nrow=8),
                               fsync=False, inside=t.store.path)
        if t.step_count == 0 or not any(t.store.samples_dir.glob("*.png") if t.store else []):
            ctx.sample()
        while True:
            try:
                final, message = _train(t, ctx, final, message)
                break
            except Diverged as e:
                if not _roll_back(t, ctx, e):
                    raise
    except Diverged as e:
        final = "diverged"
        message = (f"Training diverged: {e}. Lower the learning rates (lr_g, lr_d) by 2-10x, "
                   "enable spectral_norm, or use the wgan-gp / hinge loss. The last good checkpoint is kept.")
        ctx.event("finding", kind="divergence", severity="critical", status="started", evidence={"error": str(e)},
                  explanation="The losses or weights became NaN/infinite: the updates grew without bound, "
                              "usually because a learning rate is too high for this loss and architecture.",
                  suggestion="Fork from the last good checkpoint with both learning rates divided by 4.",
                  fix={"lr_g": cfg.lr_g / 4, "lr_d": cfg.lr_d / 4})
    except torch.OutOfMemoryError:
        final = "failed"
        half = max(2, cfg.batch_size // 2)
        message = (f"Out of memory on {t.device} at batch_size={cfg.batch_size}, resolution={cfg.resolution}. "
                   f"Try batch_size={half} or a smaller resolution/width.")
        if t.device.type == "cuda":
            torch.cuda.empty_cache()  # so a retry (or another run) can start on this GPU right away
        # As a finding with a fix, the studio offers the retry at half the batch size as one click
        # ("Fork with this fix" continues from the last checkpoint).
        ctx.event("finding", kind="out_of_memory", severity="critical", status="started",
                  evidence={"batch_size": cfg.batch_size, "resolution": cfg.resolution, "device": str(t.device)},
                  explanation="The networks' activations for one batch did not fit in the device's memory.",
                  suggestion=f"Retry with batch_size={half} (fork from the last checkpoint).",
                  fix={"batch_size": half})
    except OSError as e:
        final = "failed"
        if e.errno == errno.ENOSPC:
            message = f"Disk full while writing to {t.store.path if t.store else 'the run folder'}: free some space, then resume. The previous checkpoint is intact."
        else:
            message = f"File error: {e}. The previous checkpoint is intact."
    except Exception as e:  # a crash must end as a readable failure, never kill the server
        final = "failed"
        message = f"{type(e).__name__}: {e}"
        tb = traceback.format_exc()
    try:
        if final in ("diverged", "failed"):
            ctx.event("error" if final == "failed" else "diverged", message=message,
                      **({"traceback": tb} if tb else {}))
        ctx.status(state=final, step=t.step_count, eta_s=0 if final == "finished" else None, message=message,
                   elapsed_s=ctx.active_s)
        ctx.event("state", state=final, message=message)
    except OSError:  # the disk may still be full: the state is lost, the checkpoints are not
        pass
    t.train_seconds = ctx.active_s
    if t.store is not None:
        t.store.close()
    t.last_message = message if tb is None else f"{message}\n{tb}"
    return final


def _train(t: Trainer, ctx: LoopContext, final: str, message: str) -> tuple[str, str]:
    """Steps until done or stopped; returns (final state, message)."""
    cfg = t.cfg
    last_tick = time.perf_counter()
    # Under DDP the decision is a collective: take it every few steps, not every step.
    decide_every = 1 if t.world_size == 1 else 10
    while t.step_count < cfg.steps:
        if ctx.paused or t.step_count % decide_every == 0:
            stop, paused, ckpt = ctx.decide()
            if ckpt:
                ctx.checkpoint(reason="requested")
            if stop:
                if ctx.budget_used:
                    break  # the time budget is used up: this is a normal finish (on every rank)
                final, message = "stopped", f"Stopped by the user at step {t.step_count}"
                break
            if paused:
                time.sleep(0.2)
                last_tick = time.perf_counter()
                ctx.window_t0 = last_tick  # a pause must not count as slow steps
                ctx.heartbeat()
                continue
        want_norms = (t.step_count + 1) % cfg.log_every == 0
        out = t.step(want_grad_norms=want_norms)
        for k, v in out.items():
            ctx.window[k] = ctx.window[k] + v if (k in ctx.window and not k.startswith(("grad/", "prog/"))) else v
        ctx.window_n += 1
        now = time.perf_counter()
        ctx.active_s += now - last_tick
        t.train_seconds = ctx.active_s  # the instance-noise schedule follows a minutes budget too
        last_tick = now
        s = t.step_count
        if s % cfg.log_every == 0 or s == 1:
            ctx.log(last=s >= cfg.steps)
        if s % cfg.sample_every == 0:
            ctx.sample()
        if s % cfg.checkpoint_every == 0:
            ctx.checkpoint()
        ctx.heartbeat()
    # (A stop or time budget that lands exactly on a log step has no steps left to log, so that
    # run's final generator keeps its last periodic score.)
    if ctx.window_n:
        ctx.log(last=True)
    if final == "finished" and cfg.minutes > 0 and t.step_count < cfg.steps:
        message = f"Time budget of {cfg.minutes:g} min used at step {t.step_count}"
    if ctx.last_sample_step != t.step_count:
        ctx.sample()
    if ctx.last_ckpt_step != t.step_count:
        ctx.checkpoint(reason="final")
    return final, message


def _roll_back(t: Trainer, ctx: LoopContext, err: Diverged) -> bool:
    """``on_diverge=rollback``: once per run, reload the last good checkpoint with both learning
    rates divided by 4 and carry on. False (the run then ends as diverged) if not enabled, already
    used, distributed (every rank would have to agree), or no finite checkpoint exists."""
    from .checkpoint import latest_valid_checkpoint, state_is_finite
    if t.cfg.on_diverge != "rollback" or t.extra_state.get("rolled_back_at") or t.store is None or t.world_size > 1:
        return False
    found = latest_valid_checkpoint(t.store.checkpoints_dir)
    if found is None or not all(state_is_finite(found[1][k]) for k in ("G", "D")):
        return False
    path, state = found
    diverged_at = t.step_count
    t.load_state_dict(state)
    for opt in (t.opt_g, t.opt_d):
        for group in opt.param_groups:
            group["lr"] = group["lr"] / 4  # kept by later checkpoints, so a resume continues with it
    t.extra_state["rolled_back_at"] = diverged_at
    # Metrics past the checkpoint belong to the abandoned trajectory; the appender must reopen
    # on the rewritten file.
    t.store.close()
    t.store.truncate_metrics_after(t.step_count)
    ctx.window, ctx.window_n = {}, 0
    ctx.window_t0, ctx.window_step0 = time.perf_counter(), t.step_count
    ctx.last_ckpt_step = t.step_count
    lrs = f"lr_g={t.opt_g.param_groups[0]['lr']:.3g}, lr_d={t.opt_d.param_groups[0]['lr']:.3g}"
    ctx.event("rollback", diverged_at=diverged_at, checkpoint=f"checkpoints/{path.name}", message=(
        f"Diverged at step {diverged_at} ({err}); rolled back to step {t.step_count} ({path.name}) and "
        f"continued with both learning rates divided by 4 ({lrs}). This happens once per run."))
    ctx.status(state="running", step=t.step_count, message=f"Rolled back to step {t.step_count} after a divergence")
    return True


def _peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**30 if sys.platform == "darwin" else 2**20)
