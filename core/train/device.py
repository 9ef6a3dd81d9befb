"""Device, precision and CPU-thread choices for a TrainConfig."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..config import ConfigError, TrainConfig


def pick_device(name: str = "auto") -> torch.device:
    """auto -> CUDA, then MPS, then CPU; an explicit device that is not there is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device", f"{name} asked for but CUDA is not available on this machine; use auto or cpu")
        idx = int(name.split(":")[1]) if ":" in name else 0
        if idx >= torch.cuda.device_count():
            raise ConfigError("device", f"{name} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device", "mps asked for but Apple's Metal backend is not available; use auto or cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Precision:
    autocast_dtype: torch.dtype | None  # None = plain fp32
    use_scaler: bool                     # fp16 needs loss scaling; bf16 does not

    @property
    def label(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]


def pick_precision(cfg: TrainConfig, device: torch.device) -> Precision:
    """auto: bf16 autocast on CUDA GPUs that support it, fp16 + scaler on older ones, fp32 elsewhere.

    fp32 on CPU is deliberate: CPUs without bf16 hardware run bf16 autocast ~25x slower.
    """
    p = cfg.precision
    if p == "auto":
        if device.type == "cuda":
            p = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            p = "fp32"
    if p == "fp32":
        return Precision(None, False)
    if device.type == "cpu" and p == "fp16":
        raise ConfigError("precision", "fp16 is not supported on the CPU; use fp32 (or auto)")
    if p == "bf16":
        return Precision(torch.bfloat16, False)
    return Precision(torch.float16, device.type == "cuda")


def physical_cores() -> int:
    n = os.cpu_count() or 1
    try:
        # Linux: count distinct (physical id, core id) pairs; hyper-threads do not speed up convolutions.
        with open("/proc/cpuinfo") as f:
            pairs, phys = set(), None
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    pairs.add((phys, line.split(":")[1].strip()))
        if pairs:
            n = len(pairs)
    except OSError:
        pass
    try:
        n = min(n, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        pass
    return max(1, n)


def choose_threads(cfg: TrainConfig, shared_cpu: bool, cores: int | None = None, world_size: int = 1) -> int:
    """Intra-op threads for CPU training (with ``threads=0``, where the adaptive tuner starts).

    When the studio's server and browser share the CPU (``shared_cpu``), leave one core to them:
    with every core busy in training, any other activity stalls the OpenMP barrier and a step
    gets several times slower, while one core fewer costs at most its share. Ranks of a CPU DDP
    job on one machine split the cores between them (more threads than cores in all would
    oversubscribe the CPU and make every rank wait for the slowest at each collective).
    """
    if cfg.threads:
        return cfg.threads
    cores = cores or physical_cores()
    if world_size > 1:
        local = int(os.environ.get("LOCAL_WORLD_SIZE") or world_size)
        return max(1, cores // max(1, local))
    return max(1, cores - 1) if shared_cpu else cores


def use_channels_last(device: torch.device, arch: str) -> bool:
    """NHWC activations for conv nets: the layout cuDNN's tensor-core kernels and oneDNN's CPU
    convolutions run natively (the default NCHW makes oneDNN reorder at every conv). Measured
    ~1.2x per DCGAN step on a 2-core AVX-512 CPU; not used on MPS (no gain measured there)."""
    return arch != "mlp" and device.type in ("cuda", "cpu")


def configure_cuda_math() -> None:
    """TF32 for fp32 matmuls and convolutions, and cuDNN's autotuner (process-wide).

    Why: on Ampere and newer GPUs fp32 matmuls otherwise run on the slow full-precision path, and
    GAN steps repeat the same conv shapes thousands of times, so benchmarking algorithms once per
    shape pays back within a few steps. TF32 keeps fp32's range with a 10-bit mantissa, far finer
    than the bf16/fp16 autocast already trades for speed. Only the new fp32_precision API is used:
    mixing it with the legacy allow_tf32 flags is an error in this torch.
    """
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    torch.backends.cudnn.conv.fp32_precision = "tf32"
    torch.backends.cudnn.benchmark = True
