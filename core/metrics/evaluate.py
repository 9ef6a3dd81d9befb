"""evaluate(): N generated vs N real images -> SWD, FID, KID, IS, precision/recall, with cached real statistics."""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import laplacian_swd as swd_mod
from . import scores
from .cache import cached_stats, stats_key
from .features import FeatureNet, FeatureNetUnavailable, extract, get_feature_net

METRICS = ("swd", "fid", "kid", "is", "pr", "ppl")
# What an evaluation computes unless told: the image-set metrics. PPL is asked for by name (it samples
# its own 2 x ppl_n images, so it would double a default CPU evaluation's cost).
DEFAULT_METRICS = ("swd", "fid", "kid", "is", "pr")
FEATURE_METRICS = ("fid", "kid", "is", "pr")
# Row names: "pr" yields two rows, precision and recall.
LOWER_IS_BETTER = {"swd": True, "fid": True, "kid": True, "is": False, "precision": False, "recall": False,
                   "ppl_z": True, "ppl_w": True}
LABELS = {
    "swd": "SWD x1e3 (Laplacian pyramid, no weights)",
    "fid": "FID",
    "kid": "KID",
    "is": "Inception Score",
    "precision": "Precision (k=3)",
    "recall": "Recall (k=3)",
    "pr": "Precision / recall",
    "ppl_z": "PPL in z (slerp, eps 1e-4)",
    "ppl_w": "PPL in w (lerp, eps 1e-4)",
    "ppl": "Perceptual path length",
}
SWD_NET = "laplacian-pyramid-7x7"
EVALUATIONS = "evaluations.jsonl"


@dataclass
class MetricResult:
    metric: str
    value: float
    std: float | None
    n: int
    feature_net: str
    label: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Source:
    G: nn.Module
    step: int | None = None
    checkpoint: str | None = None
    cfg: Any = None
    channels: int | None = None
    num_classes: int = 0


def parse_metrics(spec: str | Sequence[str]) -> list[str]:
    names = [m.strip().lower() for m in (spec.split(",") if isinstance(spec, str) else spec) if m.strip()]
    bad = [m for m in names if m not in METRICS]
    if bad:
        raise ValueError(f"unknown metric {bad[0]!r}; valid: {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def _resolve_generator(obj: Any, checkpoint: str | os.PathLike | None) -> _Source:
    from ..generator import LoadedGenerator, load_generator
    if isinstance(obj, (str, os.PathLike)):
        obj = load_generator(checkpoint or obj)
    if isinstance(obj, LoadedGenerator):
        return _Source(obj.G, obj.step, str(obj.source), obj.cfg, obj.channels, obj.num_classes)
    if isinstance(obj, nn.Module):
        return _Source(obj, channels=getattr(obj, "channels", None), num_classes=getattr(obj, "num_classes", 0))
    raise TypeError(f"expected a generator module, a run folder or a checkpoint path, got {type(obj).__name__}")


def _real_images(real: Any, src: _Source) -> tuple[torch.Tensor, str | None]:
    """(uint8 N x C x R x R, dataset fingerprint or None)."""
    if real is None:
        if src.cfg is None:
            raise ValueError("give real_images when evaluating a bare generator module")
        from ..data import load_dataset
        real = load_dataset(src.cfg.data, src.cfg.resolution, channels=src.channels or src.cfg.channels)
    if hasattr(real, "images") and hasattr(real, "fingerprint"):
        return real.images, real.fingerprint
    if torch.is_tensor(real):
        return (real if real.dtype == torch.uint8 else _to_uint8(real)), None
    raise TypeError(f"real_images must be an ImageDataset or an image tensor, got {type(real).__name__}")


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def select_real(images: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """The same n real images for the same seed (all of them when the dataset is smaller)."""
    if n >= len(images):
        return images[:]
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed + 7))[:n]
    return images[idx.sort().values].clone()  # sorted indices read a memmap sequentially


@torch.no_grad()
def generate_images(G: nn.Module, n: int, seed: int = 0, batch_size: int = 64,
                    device: torch.device | str | None = None, autocast: Any = None) -> torch.Tensor:
    """n images (uint8, CPU) from a fixed latent set: the same latents every evaluation, so
    successive evaluations differ only by the generator. Eval mode, no grad; global RNG untouched."""
    dev = torch.device(device) if device is not None else next(G.parameters()).device
    g = torch.Generator().manual_seed(seed + 0x5EED)
    z = torch.randn(n, G.latent_dim, generator=g)
    k = int(getattr(G, "num_classes", 0) or 0)
    y = torch.randint(0, k, (n,), generator=g) if k else None
    was_training = G.training
    G.eval()
    out = []
    try:
        for i in range(0, n, batch_size):
            zb = z[i:i + batch_size].to(dev)
            yb = y[i:i + batch_size].to(dev) if y is not None else None
            if autocast is not None:
                with autocast():
                    x = G(zb, yb)
            else:
                x = G(zb, yb)
            out.append(_to_uint8(x))
    finally:
        G.train(was_training)
    return torch.cat(out)


def _content_key(images: torch.Tensor) -> str:
    h = hashlib.sha1(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().tobytes())
    return h.hexdigest()


def real_swd_stats(real: torch.Tensor, fingerprint: str | None, seed: int = 0,
                   cache_dir: str | os.PathLike | None = None) -> tuple[swd_mod.RealDescriptors, bool]:
    """Real-side SWD descriptors for ``real`` (already selected), cached by fingerprint + n + seed."""
    key = stats_key(kind="swd", data=fingerprint or _content_key(real), n=len(real), seed=seed,
                    per_image=swd_mod.DESCRIPTORS_PER_IMAGE, res=real.shape[-1])
    st, hit = cached_stats(key, lambda: swd_mod.real_descriptors(real, seed).state(), cache_dir)
    return swd_mod.RealDescriptors.from_state(st), hit


def real_features(net: FeatureNet, real: torch.Tensor, fingerprint: str | None, seed: int = 0,
                  batch_size: int = 64, device: Any = "cpu", cache_dir: str | os.PathLike | None = None
                  ) -> tuple[torch.Tensor, bool]:
    key = stats_key(kind="features", net=net.name, data=fingerprint or _content_key(real), n=len(real), seed=seed)
    # Only named, deterministic networks are worth caching on disk (a user's module may change).
    use_disk = net.comparable_with_papers
    st, hit = cached_stats(key, lambda: {"features": extract(net, real, batch_size, device=device)["features"].float()},
                           cache_dir, use_disk=use_disk)
    return st["features"].double(), hit


# Bytes per pixel an evaluation holds at once: the generated and the selected real images (uint8) and
# SWD's float Laplacian pyramids of both (4 bytes x ~1.34 levels each).
EVAL_BYTES_PER_PIXEL = 2 + 2 * 4 * 1.34
EVAL_HEADROOM = 0.7  # of free memory an evaluation may plan to use


def _check_memory(n: int, shape: tuple[int, ...]) -> None:
    """A ValueError naming n (and an n that fits) when n images of ``shape`` would not fit in free memory:
    50,000 at 256 px hold ~125 GB here, which used to end in the allocator instead of a message."""
    from ..memory import free_memory_bytes
    from ..units import human_bytes
    pixels = 1
    for d in shape:
        pixels *= int(d)
    need = n * pixels * EVAL_BYTES_PER_PIXEL
    free = free_memory_bytes(torch.device("cpu"))  # the images are gathered on the CPU whatever the device
    if free and need > EVAL_HEADROOM * free:
        fit = int(EVAL_HEADROOM * free / (pixels * EVAL_BYTES_PER_PIXEL))
        raise ValueError(f"n={n:,}: {n:,} generated and {n:,} real images of {'x'.join(map(str, shape))} need about "
                         f"{human_bytes(int(need))} of memory but {human_bytes(free)} is free; use n <= {max(fit, 4):,}")


def evaluate(generator_or_run: Any, real_images: Any = None, n: int = 2048,
             metrics: str | Sequence[str] = DEFAULT_METRICS, feature: str | nn.Module | None = "inception",
             inception_weights: str | os.PathLike | None = None, checkpoint: str | os.PathLike | None = None,
             seed: int = 0, batch_size: int = 64, device: str | torch.device | None = None,
             cache_dir: str | os.PathLike | None = None,
             progress: Callable[[str], None] | None = None, ppl_n: int = 2000,
             ppl_feature: nn.Module | None = None) -> dict[str, Any]:
    """Evaluate a generator (module, run folder, or checkpoint) on ``n`` generated vs ``n`` real images.

    Returns ``{"step", "checkpoint", "n", "n_real", "results": [MetricResult as dict, ...],
    "unavailable": {metric: reason}, "seconds": {...}}``. Metrics that need a feature network
    which is not available here (no Inception weights offline) are listed under ``unavailable``
    with the reason, never replaced by another metric under their name. ``ppl`` (core.metrics.ppl) uses
    ``ppl_n`` latent pairs and no real images; alone, it generates no image set either.
    """
    say = progress or (lambda msg: None)
    wanted = parse_metrics(metrics)
    if n < 4:
        raise ValueError("n must be at least 4")
    src = _resolve_generator(generator_or_run, checkpoint)
    dev = torch.device(device) if device is not None else next(src.G.parameters()).device
    src.G.to(dev)
    out: dict[str, Any] = {"step": src.step, "checkpoint": src.checkpoint, "n": n, "n_real": 0,
                           "results": [], "unavailable": {}, "seconds": {}}
    res: list[MetricResult] = []
    if "ppl" in wanted:
        from .ppl import ppl
        t = time.perf_counter()
        say(f"PPL over {ppl_n} latent pairs...")
        p = ppl(src.G, n=ppl_n, feature=ppl_feature, seed=seed, batch_size=batch_size, device=dev)
        res.append(MetricResult(p.metric, p.value, p.std, p.n, p.feature_net, LABELS[p.metric],
                                {"kept": p.kept, "epsilon": p.epsilon}))
        out["seconds"]["ppl"] = time.perf_counter() - t
        if wanted == ["ppl"]:
            out["results"] = [asdict(r) for r in res]
            return out
    reals_all, fingerprint = _real_images(real_images, src)
    _check_memory(n, tuple(reals_all.shape[1:]))
    real = select_real(reals_all, n, seed)
    out["n_real"] = len(real)
    t0 = time.perf_counter()
    say(f"generating {n} images...")
    fake = generate_images(src.G, n, seed, batch_size, dev)
    out["seconds"]["generate"] = time.perf_counter() - t0
    if fake.shape[1:] != real.shape[1:]:
        raise ValueError(f"generated images are {tuple(fake.shape[1:])} but real ones {tuple(real.shape[1:])}")
    if "swd" in wanted:
        t = time.perf_counter()
        say("SWD...")
        ref, _ = real_swd_stats(real, fingerprint, seed, cache_dir)
        levels = swd_mod.swd(ref, fake.to(dev) if dev.type == "cuda" else fake, seed=seed)
        avg = levels.pop("avg")
        res.append(MetricResult("swd", avg, None, n, SWD_NET, LABELS["swd"], {"levels": levels}))
        out["seconds"]["swd"] = time.perf_counter() - t
    feat_wanted = [m for m in wanted if m in FEATURE_METRICS]
    if feat_wanted:
        try:
            net = get_feature_net(feature, inception_weights)
        except FeatureNetUnavailable as e:
            for m in feat_wanted:
                out["unavailable"][m] = str(e)
            feat_wanted = []
        if feat_wanted:
            res.extend(_feature_metrics(net, feat_wanted, real, fake, fingerprint, seed, batch_size, dev,
                                        cache_dir, say, out))
    out["results"] = [asdict(r) for r in res]
    return out


def _feature_metrics(net: FeatureNet, wanted: list[str], real: torch.Tensor, fake: torch.Tensor,
                     fingerprint: str | None, seed: int, batch_size: int, dev: torch.device,
                     cache_dir: Any, say: Callable[[str], None], out: dict[str, Any]) -> list[MetricResult]:
    res: list[MetricResult] = []
    t = time.perf_counter()
    need_logits = "is" in wanted and net.has_logits
    if "is" in wanted and not net.has_logits:
        out["unavailable"]["is"] = f"the feature network {net.name} has no class logits"
    say(f"{net.name} features of {len(fake)} generated images...")
    f = extract(net, fake, batch_size, logits=need_logits, device=dev)
    fr: torch.Tensor | None = None
    if any(m in wanted for m in ("fid", "kid", "pr")):
        say(f"{net.name} features of {len(real)} real images (cached after the first time)...")
        fr, _ = real_features(net, real, fingerprint, seed, batch_size, dev, cache_dir)
    out["seconds"]["features"] = time.perf_counter() - t
    name, nf = net.name, len(fake)
    if "fid" in wanted:
        res.append(MetricResult("fid", scores.fid(fr, f["features"]), None, nf, name, LABELS["fid"]))
    if "kid" in wanted:
        m, s = scores.kid(fr, f["features"], seed=seed)
        res.append(MetricResult("kid", m, s, nf, name, LABELS["kid"]))
    if need_logits:
        m, s = scores.inception_score(f["logits"], seed=seed)
        res.append(MetricResult("is", m, s, nf, name, LABELS["is"]))
    if "pr" in wanted:
        p, r = scores.precision_recall(fr, f["features"])
        res.append(MetricResult("precision", p, None, nf, name, LABELS["precision"]))
        res.append(MetricResult("recall", r, None, nf, name, LABELS["recall"]))
    return res


def record(run_dir: str | os.PathLike, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Append one line per metric to RUN_DIR/evaluations.jsonl (append-only; readers skip a torn line)."""
    from ..fsutil import JsonlAppender
    rows = [{"step": result.get("step"), "checkpoint": _rel(run_dir, result.get("checkpoint")),
             "metric": r["metric"], "value": r["value"], "std": r["std"], "n": r["n"],
             "feature_net": r["feature_net"], "n_real": result.get("n_real"), "time": time.time(),
             **({"detail": r["detail"]} if r.get("detail") else {})} for r in result["results"]]
    if rows:
        w = JsonlAppender(Path(run_dir) / EVALUATIONS)
        try:
            w.write_many(rows)
        finally:
            w.close()
    return rows


def read_evaluations(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    from ..fsutil import read_jsonl
    return read_jsonl(Path(run_dir) / EVALUATIONS)[0]


def _rel(run_dir: Any, path: str | None) -> str | None:
    if not path:
        return path
    try:
        return str(Path(path).resolve().relative_to(Path(run_dir).resolve()))
    except ValueError:
        return str(path)
