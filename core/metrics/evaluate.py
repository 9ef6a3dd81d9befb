"""evaluate(): N generated vs N real images -> SWD, FID, KID, IS, precision/recall, with cached real statistics."""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
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


def _selected(total: int, n: int, seed: int) -> torch.Tensor | None:
    """Sorted indices of the n real images for this seed, or None for all of them."""
    if n >= total:
        return None
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed + 7))[:n].sort().values


def select_real(images: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """The same n real images for the same seed (all of them when the dataset is smaller)."""
    idx = _selected(len(images), n, seed)
    return images[:] if idx is None else images[idx].clone()  # sorted indices read a memmap sequentially


class RealSet:
    """select_real's images read a batch at a time: the dataset (often a memmap) is never copied whole."""

    def __init__(self, images: Any, n: int, seed: int, fingerprint: str | None = None):
        self.images, self.fingerprint = images, fingerprint
        self.idx = _selected(len(images), n, seed)
        self.shape = (len(images) if self.idx is None else len(self.idx), *tuple(images.shape[1:]))

    def __len__(self) -> int:
        return self.shape[0]

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        for i in range(0, len(self), batch_size):
            yield self.images[i:i + batch_size] if self.idx is None else self.images[self.idx[i:i + batch_size]]

    def content_key(self, batch_size: int = 256) -> str:
        """_content_key of the selected images, hashed a batch at a time (the same digest)."""
        h = hashlib.sha1(str(self.shape).encode())
        for x in self.batches(batch_size):
            h.update(x.contiguous().numpy().tobytes())
        return h.hexdigest()


def _as_set(real: torch.Tensor | RealSet, fingerprint: str | None) -> RealSet:
    return real if isinstance(real, RealSet) else RealSet(real, len(real), 0, fingerprint)


@torch.no_grad()
def generated_batches(G: nn.Module, n: int, seed: int = 0, batch_size: int = 64,
                      device: torch.device | str | None = None, autocast: Any = None) -> Iterator[torch.Tensor]:
    """generate_images a batch at a time (uint8, CPU): the latents are drawn for all n first, as always,
    so batch i holds the same images whatever the batch size. Close it (contextlib.closing) if not run out."""
    dev = torch.device(device) if device is not None else next(G.parameters()).device
    g = torch.Generator().manual_seed(seed + 0x5EED)
    z = torch.randn(n, G.latent_dim, generator=g)  # n x latent_dim floats: small beside the images
    k = int(getattr(G, "num_classes", 0) or 0)
    y = torch.randint(0, k, (n,), generator=g) if k else None
    was_training = G.training
    G.eval()
    try:
        for i in range(0, n, batch_size):
            zb = z[i:i + batch_size].to(dev)
            yb = y[i:i + batch_size].to(dev) if y is not None else None
            if autocast is not None:
                with autocast():
                    x = G(zb, yb)
            else:
                x = G(zb, yb)
            yield _to_uint8(x)
    finally:
        G.train(was_training)


def generate_images(G: nn.Module, n: int, seed: int = 0, batch_size: int = 64,
                    device: torch.device | str | None = None, autocast: Any = None) -> torch.Tensor:
    """n images (uint8, CPU) from a fixed latent set: the same latents every evaluation, so
    successive evaluations differ only by the generator. Eval mode, no grad; global RNG untouched.
    All n at once: evaluate() streams generated_batches instead."""
    return torch.cat(list(generated_batches(G, n, seed, batch_size, device, autocast)))


def _content_key(images: torch.Tensor) -> str:
    h = hashlib.sha1(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().tobytes())
    return h.hexdigest()


def real_swd_stats(real: torch.Tensor | RealSet, fingerprint: str | None, seed: int = 0,
                   cache_dir: str | os.PathLike | None = None, batch_size: int = 256
                   ) -> tuple[swd_mod.RealDescriptors, bool]:
    """Real-side SWD descriptors for ``real`` (already selected), cached by fingerprint + n + seed; read
    ``batch_size`` images at a time (the descriptors do not depend on it)."""
    rs = _as_set(real, fingerprint)
    key = stats_key(kind="swd", data=rs.fingerprint or rs.content_key(batch_size), n=len(rs), seed=seed,
                    per_image=swd_mod.DESCRIPTORS_PER_IMAGE, res=rs.shape[-1])

    def compute() -> dict[str, Any]:
        stream = swd_mod.DescriptorStream(len(rs), generator=torch.Generator().manual_seed(seed))
        for x in rs.batches(batch_size):
            stream.add(x)
        return swd_mod.RealDescriptors.from_levels(stream.finish(), rs.shape[1]).state()
    st, hit = cached_stats(key, compute, cache_dir)
    return swd_mod.RealDescriptors.from_state(st), hit


def real_features(net: FeatureNet, real: torch.Tensor | RealSet, fingerprint: str | None, seed: int = 0,
                  batch_size: int = 64, device: Any = "cpu", cache_dir: str | os.PathLike | None = None
                  ) -> tuple[torch.Tensor, bool]:
    rs = _as_set(real, fingerprint)
    key = stats_key(kind="features", net=net.name, data=rs.fingerprint or rs.content_key(batch_size), n=len(rs),
                    seed=seed)
    # Only named, deterministic networks are worth caching on disk (a user's module may change).
    use_disk = net.comparable_with_papers

    def compute() -> dict[str, Any]:
        parts = [extract(net, x, batch_size, device=device)["features"].float() for x in rs.batches(batch_size)]
        return {"features": torch.cat(parts)}
    st, hit = cached_stats(key, compute, cache_dir, use_disk=use_disk)
    return st["features"].double(), hit


EVAL_HEADROOM = 0.7  # of free memory an evaluation may plan to use


def eval_memory_bytes(n: int, shape: tuple[int, ...], batch_size: int = 64, swd: bool = True,
                      features: int = 0, logits: int = 0, pr: bool = False, latent_dim: int = 512) -> int:
    """Bytes an evaluation of n images of ``shape`` (C, H, W) holds at its peak. Images are streamed, so
    only one batch of them (and of SWD's float pyramids) exists at once; what grows with n is kept per image:
    the latents, SWD's descriptors (generated float32, real float16 and float32 while computed, one level's
    normalised copies and 128 projections of both sets) and the float64 features (generated, real, and
    torchmetrics' concatenated copies), plus precision/recall's 1024-row distance blocks."""
    c, h, w = (int(d) for d in shape)
    per = latent_dim * 4 + 8
    if swd:
        desc = [swd_mod.DESCRIPTORS_PER_IMAGE * c * min(swd_mod.PATCH, lh, lw) ** 2
                for lh, lw in swd_mod.level_shapes(h, w)]
        per += 6 * sum(desc) + 8 * max(desc) + 4 * swd_mod.DESCRIPTORS_PER_IMAGE * 128 * 4
    per += features * (12 + 8 + 16) + logits * 8 * 2 + (9 * 1024 if pr else 0)
    pixels = c * h * w
    batch = batch_size * pixels * (4 + 1 + 4 + (16 if swd else 0))  # output, uint8, float copy, pyramid
    return n * per + batch


def _check_memory(n: int, shape: tuple[int, ...], **kw: Any) -> None:
    """A ValueError naming n (and an n that fits) when an evaluation of n images of ``shape`` would not fit in
    free memory (eval_memory_bytes); it used to end in the allocator instead of a message."""
    from ..memory import free_memory_bytes
    from ..units import human_bytes
    need = eval_memory_bytes(n, shape, **kw)
    free = free_memory_bytes(torch.device("cpu"))  # descriptors and features are gathered on the CPU
    if free and need > EVAL_HEADROOM * free:
        per = max(1, eval_memory_bytes(n + 1, shape, **kw) - need)
        fit = int((EVAL_HEADROOM * free - eval_memory_bytes(0, shape, **kw)) / per)
        raise ValueError(f"n={n:,}: the descriptors and features of {n:,} generated and {n:,} real images of "
                         f"{'x'.join(map(str, shape))} need about {human_bytes(int(need))} of memory but "
                         f"{human_bytes(free)} is free; use n <= {max(fit, 4):,}")


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

    Images are streamed ``batch_size`` at a time (generated, then SWD descriptors and features taken and
    the images dropped; the real ones likewise): memory holds one batch of images, never n. The numbers
    are those of scoring all n at once: same latents, same real subset, SWD's patch positions and
    projections drawn as before (laplacian_swd.DescriptorStream), the same feature batches.
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
    feat_wanted = [m for m in wanted if m in FEATURE_METRICS]
    net = None
    if feat_wanted:
        try:
            with torch.random.fork_rng(devices=[]):  # building a network draws from the global RNG
                net = get_feature_net(feature, inception_weights)
        except FeatureNetUnavailable as e:
            for m in feat_wanted:
                out["unavailable"][m] = str(e)
            feat_wanted = []
    need_logits = net is not None and "is" in feat_wanted and net.has_logits
    if net is not None and "is" in feat_wanted and not net.has_logits:
        out["unavailable"]["is"] = f"the feature network {net.name} has no class logits"
    _check_memory(n, tuple(reals_all.shape[1:]), batch_size=batch_size, swd="swd" in wanted,
                  features=(net.num_features or 2048) if net is not None else 0, logits=1008 if need_logits else 0,
                  pr="pr" in feat_wanted, latent_dim=int(getattr(src.G, "latent_dim", 512)))
    real = RealSet(reals_all, n, seed, fingerprint)
    out["n_real"] = len(real)
    if "swd" not in wanted and net is None:
        out["results"] = [asdict(r) for r in res]
        return out
    fake = _stream_generated(src.G, n, seed, batch_size, dev, real.shape[1:], "swd" in wanted, net, need_logits,
                             say, out["seconds"])
    if "swd" in wanted:
        t = time.perf_counter()
        say("SWD...")
        ref, _ = real_swd_stats(real, fingerprint, seed, cache_dir, batch_size)
        levels = swd_mod.swd_from_descriptors(ref, fake["swd"], real.shape[-1], real.shape[1], seed=seed)
        avg = levels.pop("avg")
        res.append(MetricResult("swd", avg, None, n, SWD_NET, LABELS["swd"], {"levels": levels}))
        out["seconds"]["swd"] = out["seconds"].get("swd", 0.0) + time.perf_counter() - t
    if net is not None:
        res.extend(_feature_metrics(net, feat_wanted, real, fake, fingerprint, seed, batch_size, dev,
                                    cache_dir, say, out))
    out["results"] = [asdict(r) for r in res]
    return out


def _stream_generated(G: nn.Module, n: int, seed: int, batch_size: int, dev: torch.device, shape: tuple,
                      swd: bool, net: FeatureNet | None, logits: bool, say: Callable[[str], None],
                      seconds: dict[str, float]) -> dict[str, Any]:
    """One pass over n generated images, a batch at a time: {"swd": descriptor levels, "features", "logits"}."""
    say(f"generating {n} images" + (" and their SWD descriptors" if swd else "")
        + (f" and {net.name} features" if net is not None else "") + "...")
    stream = swd_mod.DescriptorStream(n, generator=torch.Generator().manual_seed(seed)) if swd else None
    feats: list[torch.Tensor] = []
    logs: list[torch.Tensor] = []
    seconds.update(generate=0.0, swd=0.0, features=0.0)
    t = time.perf_counter()
    with contextlib.closing(generated_batches(G, n, seed, batch_size, dev)) as batches:
        for x in batches:
            now = time.perf_counter()
            seconds["generate"] += now - t
            if tuple(x.shape[1:]) != tuple(shape):
                raise ValueError(f"generated images are {tuple(x.shape[1:])} but real ones {tuple(shape)}")
            if stream is not None:
                stream.add(x.to(dev) if dev.type == "cuda" else x)
                seconds["swd"] += time.perf_counter() - now
                now = time.perf_counter()
            if net is not None:
                f = extract(net, x, batch_size, logits=logits, device=dev)
                feats.append(f["features"])
                if "logits" in f:
                    logs.append(f["logits"])
                seconds["features"] += time.perf_counter() - now
            del x  # this batch's images are not needed again
            t = time.perf_counter()
    got: dict[str, Any] = {"swd": stream.finish() if stream is not None else None}
    if feats:
        got["features"] = torch.cat(feats)
    if logs:
        got["logits"] = torch.cat(logs)
    return got


def _feature_metrics(net: FeatureNet, wanted: list[str], real: RealSet, fake: dict[str, Any],
                     fingerprint: str | None, seed: int, batch_size: int, dev: torch.device,
                     cache_dir: Any, say: Callable[[str], None], out: dict[str, Any]) -> list[MetricResult]:
    res: list[MetricResult] = []
    t = time.perf_counter()
    fr: torch.Tensor | None = None
    if any(m in wanted for m in ("fid", "kid", "pr")):
        say(f"{net.name} features of {len(real)} real images (cached after the first time)...")
        fr, _ = real_features(net, real, fingerprint, seed, batch_size, dev, cache_dir)
    out["seconds"]["features"] = out["seconds"].get("features", 0.0) + time.perf_counter() - t
    name, ff = net.name, fake["features"]
    nf = len(ff)
    if "fid" in wanted:
        res.append(MetricResult("fid", scores.fid(fr, ff), None, nf, name, LABELS["fid"]))
    if "kid" in wanted:
        m, s = scores.kid(fr, ff, seed=seed)
        res.append(MetricResult("kid", m, s, nf, name, LABELS["kid"]))
    if "is" in wanted and "logits" in fake:
        m, s = scores.inception_score(fake["logits"], seed=seed)
        res.append(MetricResult("is", m, s, nf, name, LABELS["is"]))
    if "pr" in wanted:
        p, r = scores.precision_recall(fr, ff)
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
