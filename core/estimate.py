"""Before you press Start: parameter counts, FLOPs, memory and time per step of a config.

``estimate(cfg, channels, num_classes)`` builds the run's own ``core.train.Trainer`` on a small
synthetic in-memory dataset of the chosen shape and times its real ``step()`` (the configured
loss, n_critic, EMA, DiffAugment, penalties, precision, channels_last and threads): one or two
warm-up steps, then the median of a few timed ones, within ``TIME_BUDGET_S``. Parameters, FLOPs
and the tensors autograd keeps for backward are counted on the CPU by running the same step at
batch 2 and 4 and extrapolating linearly to the configured batch; on CUDA the memory is the
allocator's measured peak instead. The caller's RNG state and thread count are given back, and
one estimate runs at a time per process (a caller's ``cancelled()`` lets a stale one give up).
No Streamlit here; the studio caches the result per ``cost_config``.
"""
from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .config import ConfigError, TrainConfig

# Rough sustained throughput used when a step is not timed (a job is busy on the device).
_ROUGH_FLOPS = {"cpu": 1.5e10, "cuda": 2.0e13, "mps": 2.0e12}
TIME_BUDGET_S = 3.0   # timed steps (warm-up excluded) stop once they would pass this
PROBE_BATCH = 8       # a larger batch is first timed at this size, to see whether a full step fits the budget
MAX_TIMED = 3         # the median of at most this many timed steps ...
MIN_TIMED = 2         # ... and of at least this many (a batch that cannot afford them is not timed)
COUNT_BATCHES = (2, 4)  # FLOPs and saved bytes are linear in the batch: two points fix the line
SYNTHETIC_MAX_BYTES = 256 * 2**20  # the synthetic images kept in memory for one timing, at most
# One estimate at a time per process: two at once (a tab's superseded rerun still timing, a
# second tab) would time each other; measured in the studio, a 20 ms step read as 430 ms.
_ONE_AT_A_TIME = threading.Lock()
# Fields that change what a step costs. The others (schedule, naming, seed) only change when or
# how often things happen, so the studio need not re-measure when they change.
COST_FREE = ("data", "steps", "minutes", "sample_every", "checkpoint_every", "log_every", "eval_every",
             "eval_samples", "eval_metric", "keep_checkpoints", "on_diverge", "seed", "name")


class EstimateCancelled(Exception):
    """The caller's ``cancelled()`` said yes: nobody wants this estimate any more."""


def _never() -> bool:
    return False


def _step(trainer, cancelled: Callable[[], bool]) -> None:
    if cancelled():
        raise EstimateCancelled
    trainer.step()


@dataclass
class Estimate:
    device: str
    params_g: int = 0
    params_d: int = 0
    flops_per_step: float = 0.0     # n_critic D updates + 1 G update, forward + backward
    weights_bytes: int = 0          # weights, buffers, grads, optimiser state, EMA copy
    activations_bytes: int = 0      # peak of the tensors autograd keeps alive, at the configured batch
    dataset_bytes: int = 0          # decoded uint8 images (when the image count is known)
    sec_per_step: float | None = None
    sec_range: tuple[float, float] | None = None  # fastest and slowest timed step (scaled like sec_per_step)
    sec_source: str = ""            # "measured" | "rough, from FLOPs"
    memory_source: str = ""         # "measured peak on cuda" | "counted on the CPU"
    notes: list[str] = field(default_factory=list)

    @property
    def memory_bytes(self) -> int:
        return self.weights_bytes + self.activations_bytes

    def total_seconds(self, steps: int) -> float | None:
        return None if self.sec_per_step is None else self.sec_per_step * steps


def resolve_device(name: str) -> str:
    """``auto`` → cuda, then mps, then cpu; anything else is returned as given."""
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def cost_config(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the fields that do not change a step's cost reset: equal cost configs compare equal."""
    default = TrainConfig()
    return cfg.replace(**{k: getattr(default, k) for k in COST_FREE})


def synthetic_dataset(cfg: TrainConfig, channels: int, num_classes: int, n: int):
    """``n`` random uint8 images of the chosen shape (labels 0..num_classes-1 when conditional), in
    memory: no disk, no cache. A step costs the same whatever the pixels are."""
    from .data.dataset import ImageDataset

    gen = torch.Generator().manual_seed(0)  # its own generator: the global RNG is the caller's
    images = torch.randint(0, 256, (n, channels, cfg.resolution, cfg.resolution), dtype=torch.uint8, generator=gen)
    labelled = cfg.conditional and num_classes > 0
    labels = torch.arange(n) % num_classes if labelled else None
    names = [f"class {i}" for i in range(num_classes)] if labelled else []
    return ImageDataset(images=images, labels=labels, class_names=names, channels=channels,
                        resolution=cfg.resolution, fingerprint="synthetic-estimate", source="synthetic")


def _trainer(cfg: TrainConfig, channels: int, num_classes: int, batch: int):
    from .train.trainer import Trainer  # lazily: the studio imports this module for its formatting helpers

    run_cfg = cfg.replace(batch_size=batch)
    # Two batches of images where they fit in SYNTHETIC_MAX_BYTES (the sampler then reshuffles as
    # in a real epoch), one batch at least.
    n = max(batch, min(2 * batch, SYNTHETIC_MAX_BYTES // (channels * cfg.resolution ** 2)))
    return Trainer(run_cfg, synthetic_dataset(run_cfg, channels, num_classes, n), store=None)


@contextlib.contextmanager
def _isolated(device: str):
    """Building a Trainer seeds torch's global RNG and sets this thread's intra-op thread count:
    the studio's own random numbers and threads must come out as they went in."""
    threads = torch.get_num_threads()
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.init()  # initialised now, so that its generators are saved and restored too
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        torch.set_num_threads(threads)


class _NoModules:
    """Stands in for FlopCounterMode's per-module tracker, whose backward hooks make
    ``torch.autograd.grad`` on a leaf (the gradient penalty, R1) fail; we only need the total."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _SavedBytes:
    """Peak bytes of the tensors autograd keeps for backward, alive at the same time.

    Each saved tensor is wrapped; the wrapper's release (its graph freed after backward) lowers
    the count. Storages are counted once, and parameters not at all (they are weights, not
    activations). Use ``hooks()`` around the step.
    """

    def __init__(self, exclude: set[int]):
        self.exclude, self.refs, self.size = exclude, {}, {}
        self.current = self.peak = 0

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda held: held if isinstance(held, torch.Tensor) else held.t)

    def _pack(self, t: torch.Tensor):
        try:
            key, nbytes = t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):  # a tensor without a plain storage
            key, nbytes = id(t), t.numel() * t.element_size()
        if key in self.exclude:
            return t
        self.refs[key] = self.refs.get(key, 0) + 1
        if self.refs[key] == 1:
            self.size[key] = nbytes
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        return _Held(t, key, self)

    def release(self, key: int) -> None:
        self.refs[key] -= 1
        if self.refs[key] == 0:
            self.current -= self.size.pop(key)


class _Held:
    __slots__ = ("t", "key", "meter")

    def __init__(self, t: torch.Tensor, key: int, meter: _SavedBytes):
        self.t, self.key, self.meter = t, key, meter

    def __del__(self):
        self.meter.release(self.key)


def _state_bytes(trainer) -> int:
    """Weights, buffers, gradients, optimiser state and the EMA copy after a step, each storage once."""
    tensors = [x for m in (trainer.G, trainer.D) for x in (*m.parameters(), *m.buffers())]
    tensors += [p.grad for m in (trainer.G, trainer.D) for p in m.parameters() if p.grad is not None]
    for opt in (trainer.opt_g, trainer.opt_d):
        tensors += [v for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    if trainer.ema is not None:
        tensors += [*trainer.ema.model.parameters(), *trainer.ema.model.buffers()]
    sizes = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(sizes.values())


def _count(cfg: TrainConfig, channels: int, num_classes: int, est: Estimate, cancelled: Callable[[], bool]) -> None:
    """Parameters, state bytes, FLOPs and saved bytes of the real step, on the CPU at two small batches."""
    from torch.utils.flop_counter import FlopCounterMode

    # fp32: the CPU refuses fp16, and FLOPs do not depend on the precision.
    count_cfg = cfg.replace(device="cpu", precision="fp32", compile=False)
    flops, saved = [], []
    for b in COUNT_BATCHES:
        t = _trainer(count_cfg, channels, num_classes, b)
        params = {p.untyped_storage().data_ptr() for m in (t.G, t.D) for p in m.parameters()}
        meter = _SavedBytes(params)
        fc = FlopCounterMode(display=False)
        fc.mod_tracker = _NoModules()
        with fc, meter.hooks():
            _step(t, cancelled)
        flops.append(fc.get_total_flops())
        saved.append(meter.peak)
    est.params_g = sum(p.numel() for p in t.G.parameters())
    est.params_d = sum(p.numel() for p in t.D.parameters())
    est.weights_bytes = _state_bytes(t)
    (b0, b1), n = COUNT_BATCHES, cfg.batch_size

    def at_batch(v0: float, v1: float) -> float:
        return max(0.0, v0 + (v1 - v0) / (b1 - b0) * (n - b0))
    est.flops_per_step = at_batch(*flops)
    est.activations_bytes = int(at_batch(*saved))
    # pick_precision's rule, without asking a GPU that may not be there.
    mixed = cfg.precision in ("bf16", "fp16") or (cfg.precision == "auto" and est.device.startswith("cuda"))
    est.memory_source = "counted on the CPU" + (" in fp32 (mixed precision keeps less)" if mixed else "")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _time_steps(trainer, cancelled: Callable[[], bool], warmup: int, budget_s: float, max_timed: int = MAX_TIMED,
                min_timed: int = MIN_TIMED, guess: float = 0.0) -> list[float]:
    """Seconds of each timed ``trainer.step()`` after ``warmup`` untimed ones; past ``min_timed``,
    stops before the next step (the median so far, or ``guess`` before the first) would overrun ``budget_s``."""
    for _ in range(warmup):
        _step(trainer, cancelled)
    _sync(trainer.device)
    times: list[float] = []
    while len(times) < max_timed and (len(times) < min_timed
                                      or sum(times) + (statistics.median(times) if times else guess) <= budget_s):
        if cancelled():
            raise EstimateCancelled
        t0 = time.perf_counter()
        trainer.step()
        _sync(trainer.device)
        times.append(time.perf_counter() - t0)
    return times


def _timed_trainer(cfg: TrainConfig, channels: int, num_classes: int, batch: int, warmup: int, max_timed: int,
                   cancelled: Callable[[], bool]):
    """Build the run's Trainer at ``batch`` and time it; also its CUDA peak bytes beyond what was
    allocated before (weights, optimiser state and activations; the synthetic images left out)."""
    from .train.device import pick_device

    dev = pick_device(cfg.device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    t = _trainer(cfg, channels, num_classes, batch)
    times = _time_steps(t, cancelled, warmup, TIME_BUDGET_S, max_timed)
    peak = None
    if dev.type == "cuda":
        images = t.sampler.images
        peak = torch.cuda.max_memory_allocated(dev) - base - (images.numel() if images.device == dev else 0)
    return t, times, peak


def _measure(cfg: TrainConfig, channels: int, num_classes: int, est: Estimate, cancelled: Callable[[], bool]) -> None:
    """Time the real step on the chosen device at the configured batch when a warm-up and
    ``MIN_TIMED`` steps of it fit the budget (judged from a probe at ``PROBE_BATCH``), else at the
    largest batch that fits, scaled to the configured one."""
    warmup = 2 if est.device.startswith("cuda") else 1  # CUDA's first steps also pick kernels and handles
    n = cfg.batch_size
    probe = min(n, PROBE_BATCH)
    t, times, peak = _timed_trainer(cfg, channels, num_classes, probe, warmup, MAX_TIMED if probe == n else 1, cancelled)
    batch, per_image = probe, statistics.median(times) / probe
    # Per image, small batches cost more than large ones: the probe's rate makes this a safe bound.
    fits = min(n, int(TIME_BUDGET_S / ((warmup + MIN_TIMED) * per_image)))
    if fits >= 2 * probe or fits == n > probe:
        del t  # freed before the next is built, so the CUDA peak below is this batch's alone
        batch = n if fits == n else 1 << (fits.bit_length() - 1)  # a power of two, as batches usually are
        t, times, peak = _timed_trainer(cfg, channels, num_classes, batch, warmup, MAX_TIMED, cancelled)
    elif probe < n:
        times += _time_steps(t, cancelled, 0, TIME_BUDGET_S - sum(times), MAX_TIMED - 1, min_timed=0, guess=times[0])
    if batch < n:
        est.notes.append(f"timed at batch {batch} on {t.device} and scaled to {n} (timing batch {n} itself "
                         f"would take about {(warmup + MIN_TIMED) * per_image * n:.0f} s)")
    est.sec_per_step = statistics.median(times) * n / batch
    est.sec_range = (min(times) * n / batch, max(times) * n / batch)
    est.sec_source = "measured"
    if peak is not None:
        # The counted state (fp32 weights, grads, optimiser, EMA) is the same on the GPU; the rest
        # of the measured peak is activations and workspace, which grow with the batch.
        est.activations_bytes = int(max(0, peak - est.weights_bytes) * n / batch)
        est.memory_source = "measured peak on cuda" + (f" at batch {batch}, scaled to {n}" if batch != n else "")


def estimate(cfg: TrainConfig, channels: int = 3, num_classes: int = 0, measure: bool = True,
             image_count: int | None = None, threads: int | None = None,
             cancelled: Callable[[], bool] | None = None) -> Estimate:
    """Estimate the cost of ``cfg``; raises only for a config the models cannot build (a ConfigError
    naming the field), or EstimateCancelled.

    ``threads``: the CPU thread count to time with (default: what a run of ``cfg`` starts with).
    ``measure=False`` (the device is busy training) counts on the CPU only and derives a rough time from FLOPs.
    ``cancelled`` is asked before each step and while waiting for another estimate in this process to end.
    """
    from .train.device import choose_threads

    cancelled = cancelled or _never
    channels = cfg.channels or channels or 3
    device = resolve_device(cfg.device)
    est = Estimate(device=device)
    nthreads = threads if threads is not None else choose_threads(cfg, shared_cpu=False)
    # A fixed count, so the thread tuner does not wander while we time; compile is left out (see _measure).
    run_cfg = cfg.replace(threads=max(1, nthreads), compile=False)
    while not _ONE_AT_A_TIME.acquire(timeout=0.05):
        if cancelled():
            raise EstimateCancelled
    try:
        _estimate(cfg, run_cfg, channels, num_classes, measure, est, cancelled)
    finally:
        _ONE_AT_A_TIME.release()
    if image_count:
        est.dataset_bytes = int(image_count) * channels * cfg.resolution ** 2
    if est.sec_per_step is None:
        rate = _ROUGH_FLOPS.get(device.split(":")[0], _ROUGH_FLOPS["cpu"])
        est.sec_per_step = est.flops_per_step / rate
        est.sec_source = "rough, from FLOPs"
    return est


def _estimate(cfg: TrainConfig, run_cfg: TrainConfig, channels: int, num_classes: int, measure: bool,
              est: Estimate, cancelled: Callable[[], bool]) -> None:
    """Count, then time, with the caller's RNG state and thread count kept (see _isolated)."""
    device = est.device
    with _isolated(device):
        _count(run_cfg, channels, num_classes, est, cancelled)
        if measure:
            try:
                _measure(run_cfg, channels, num_classes, est, cancelled)
                if cfg.compile:
                    est.notes.append("timed without torch.compile: compiling takes minutes; compiled steps are "
                                     "usually faster")
                if device == "cpu" and not cfg.threads:
                    est.notes.append(f"timed with {run_cfg.threads} CPU thread(s); threads=0 adapts the count "
                                     "while training")
            except (ConfigError, EstimateCancelled):
                raise  # ConfigError, e.g. fp16 on the CPU: the run would refuse it too, so say so now, by field
            except Exception as e:  # a device that is busy or missing must not break the page
                est.notes.append(f"could not time a step on {device}: {type(e).__name__}: {e}")


def images_per_second(est: Estimate, cfg: TrainConfig) -> float | None:
    """Real images D sees per second: n_critic batches per step, as the Monitor counts them."""
    return cfg.batch_size * cfg.n_critic / est.sec_per_step if est.sec_per_step else None


def run_length(est: Estimate, cfg: TrainConfig) -> dict[str, Any]:
    """How long the whole run takes and which limit ends it.

    ``seconds``: (low, typical, high) from the fastest, median and slowest timed step, each capped
    by the minutes budget; ``limit``: "steps" (the step count is reached first), "minutes" (the
    time budget runs out first) or "either" (the budget falls inside the range); ``steps``: the
    steps trained at the typical speed (fewer than ``cfg.steps`` when the minutes end the run)."""
    per = est.sec_per_step or 0.0
    lo, hi = est.sec_range or (per, per)
    lo, hi = min(lo, per), max(hi, per)
    budget = cfg.minutes * 60 if cfg.minutes else None
    secs = tuple(x * cfg.steps if budget is None else min(x * cfg.steps, budget) for x in (lo, per, hi))
    if budget is None or hi * cfg.steps <= budget:
        limit = "steps"
    elif lo * cfg.steps >= budget:
        limit = "minutes"
    else:
        limit = "either"
    steps = cfg.steps if budget is None or per <= 0 else min(cfg.steps, int(budget / per))
    return {"seconds": secs, "limit": limit, "steps": steps}


def summary(est: Estimate, cfg: TrainConfig) -> dict[str, Any]:
    """Plain numbers for display."""
    return {
        "params_g": est.params_g, "params_d": est.params_d, "flops_per_step": est.flops_per_step,
        "memory_bytes": est.memory_bytes, "sec_per_step": est.sec_per_step,
        "total_s": est.total_seconds(cfg.steps),
        "img_per_s": images_per_second(est, cfg),
    }
