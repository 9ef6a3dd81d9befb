"""The generator bundle (safetensors + JSON): its metadata, and loading it without running code from the file."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..fsutil import JSON_MAX_BYTES, loads_bounded
from ..models import build_models
from ..train.checkpoint import CheckpointError
from ..train.ckpt_check import check_config, shape_problem
from .loaded import LoadedGenerator

BUNDLE_FORMAT = "gan-studio-generator"
BUNDLE_VERSION = 1


class BundleError(CheckpointError):
    """A file that is not a usable GAN Studio generator bundle; the message names the file."""


# ------------------------------------------------------------------ bundle metadata
def bundle_meta(g: LoadedGenerator) -> dict[str, Any]:
    ds = {k: v for k, v in g.dataset.items() if k in ("source", "fingerprint", "count", "channels", "resolution",
                                                       "class_names")}
    return {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
        "config": g.cfg.to_dict(), "channels": g.channels, "num_classes": g.num_classes,
        "class_names": list(g.class_names), "latent_dim": g.latent_dim, "resolution": g.resolution,
        "step": g.step, "uses_ema": g.uses_ema, "dataset": ds,
        "source_run": g.run_dir.name if g.run_dir else None, "source_checkpoint": g.source.name,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "inputs": {"z": f"float32 (B, {g.latent_dim}) ~ N(0, I)",
                   **({"y": f"int64 (B,) class index in [0, {g.num_classes})"} if g.num_classes else {})},
        "output": f"float32 (B, {g.channels}, {g.resolution}, {g.resolution}) in [-1, 1]",
    }


def _check_meta(meta: Any, path: Path) -> dict[str, Any]:
    """The bundle metadata with every field load_bundle reads of the right type; BundleError naming ``path``.

    Why so careful: a bundle is a file people download and share, so its JSON may be crafted."""
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path} is not a GAN Studio generator bundle (no '{BUNDLE_FORMAT}' format marker); refusing to load it")
    version = meta.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise BundleError(f"{path}: bundle metadata has version={str(version)[:40]!r}, not a version number")
    if version > BUNDLE_VERSION:
        raise BundleError(f"{path} was written by a newer GAN Studio (bundle v{version}); update to load it")
    for k in ("config", "channels", "num_classes", "step"):
        if k not in meta:
            raise BundleError(f"{path}: bundle metadata lacks '{k}'")
    step = meta["step"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise BundleError(f"{path}: bundle metadata has step={str(step)[:40]!r}, not a step number")
    try:
        check_config(meta["config"], meta["channels"], meta["num_classes"])
    except ValueError as e:
        raise BundleError(f"{path}: bundle metadata is not usable: {e}") from None
    return meta


def _loads(data: str | bytes, path: Path) -> Any:
    try:
        return loads_bounded(data, str(path))
    except ValueError as e:
        raise BundleError(f"{e}; it is not a usable bundle") from None


def read_bundle_meta(path: str | Path) -> tuple[dict[str, Any], Path]:
    """(metadata, weights file) of a bundle given its .safetensors or .json file; BundleError otherwise."""
    p = Path(path)
    if not p.is_file():
        raise BundleError(f"bundle not found: {p}")
    if p.suffix.lower() == ".json":
        try:
            with open(p, "rb") as f:
                data = f.read(JSON_MAX_BYTES + 1)
        except OSError as e:
            raise BundleError(f"{p} is not readable ({e.strerror or type(e).__name__})") from None
        if len(data) > JSON_MAX_BYTES:
            raise BundleError(f"{p} is larger than {JSON_MAX_BYTES >> 20} MB: not a bundle's JSON")
        meta = _check_meta(_loads(data, p), p)
        wname = str(meta.get("weights") or (p.stem + ".safetensors"))
        if Path(wname).name != wname or wname in ("", ".", ".."):
            raise BundleError(f"{p}: 'weights' must name a file beside the JSON, got {wname!r}")
        weights = p.with_name(wname)
        if not weights.is_file():
            raise BundleError(f"{p} names the weights file {weights.name}, which is missing")
        return meta, weights
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(p), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise BundleError(f"{p} is not a safetensors file ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                          "refusing to load it") from None
    raw = header.get("bundle")
    if raw is None:
        side = p.with_suffix(".json")
        if side.is_file():
            return read_bundle_meta(side)[0], p
        raise BundleError(f"{p} is a safetensors file but not a GAN Studio generator bundle (no bundle metadata)")
    return _check_meta(_loads(raw, p), p), p


def load_bundle(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedGenerator:
    """Rebuild the generator from a bundle (.safetensors or its .json): registry + safetensors, no code from the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta, weights = read_bundle_meta(path)
    cfg, channels, n = check_config(meta["config"], meta["channels"], meta["num_classes"])
    _check_shapes(cfg, channels, n, weights)  # before anything is allocated: the metadata may ask for GBs
    try:
        G, _ = build_models(cfg, channels, n)
        G.load_state_dict(load_file(str(weights), device=str(map_location)))
    except SafetensorError as e:  # the JSON names a weights file that is not safetensors (e.g. a pickle)
        raise BundleError(f"{weights} is not a safetensors file ({str(e).splitlines()[0] if str(e) else ''}); "
                          "refusing to load it") from None
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise BundleError(f"{weights} does not match the generator its config describes "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    G.eval().requires_grad_(False)
    ds = dict(meta["dataset"]) if isinstance(meta.get("dataset"), dict) else {}
    names = meta.get("class_names") if isinstance(meta.get("class_names"), list) else []
    names = [str(x) for x in names]
    if n and len(names) != n:
        names = [str(i) for i in range(n)]
    return LoadedGenerator(G, cfg, int(meta["step"]), int(meta["channels"]), n, weights, names if n else [],
                           bool(meta.get("uses_ema")), None, ds, None)


def _check_shapes(cfg: TrainConfig, channels: int, n: int, weights: Path) -> None:
    """Compare the generator the config describes, built on the meta device, with the file's tensor shapes."""
    from safetensors import SafetensorError, safe_open

    with torch.device("meta"):
        G, _ = build_models(cfg, channels, n)
    want = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    try:
        with safe_open(str(weights), framework="pt") as f:
            have = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, ValueError) as e:
        raise BundleError(f"{weights} is not a safetensors file ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                          "refusing to load it") from None
    why = shape_problem(want, have, "the weights")
    if why:
        raise BundleError(f"{weights}: {why}; refusing to load it")


def find_bundle_in(folder: str | Path) -> Path | None:
    """The single bundle (.safetensors with our metadata) in a folder, if exactly one."""
    cands = sorted(Path(folder).glob("*.safetensors"))
    return cands[0] if len(cands) == 1 else None


def is_bundle(path: str | Path) -> bool:
    try:
        read_bundle_meta(path)
        return True
    except BundleError:
        return False
