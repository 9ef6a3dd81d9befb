"""The generator bundle (safetensors + JSON): its metadata, and loading it without running code from the file."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..models import build_models
from ..train.checkpoint import CheckpointError
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
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path} is not a GAN Studio generator bundle (no '{BUNDLE_FORMAT}' format marker); refusing to load it")
    if int(meta.get("version", 0)) > BUNDLE_VERSION:
        raise BundleError(f"{path} was written by a newer GAN Studio (bundle v{meta.get('version')}); update to load it")
    for k in ("config", "channels", "num_classes", "step"):
        if k not in meta:
            raise BundleError(f"{path}: bundle metadata lacks '{k}'")
    return meta


def read_bundle_meta(path: str | Path) -> tuple[dict[str, Any], Path]:
    """(metadata, weights file) of a bundle given its .safetensors or .json file; BundleError otherwise."""
    p = Path(path)
    if not p.is_file():
        raise BundleError(f"bundle not found: {p}")
    if p.suffix.lower() == ".json":
        try:
            meta = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BundleError(f"{p} is not readable JSON ({e})") from None
        meta = _check_meta(meta, p)
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
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise BundleError(f"{p}: the bundle metadata is not valid JSON") from None
    return _check_meta(meta, p), p


def load_bundle(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedGenerator:
    """Rebuild the generator from a bundle (.safetensors or its .json): registry + safetensors, no code from the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta, weights = read_bundle_meta(path)
    try:
        cfg = TrainConfig.from_dict(meta["config"])
        G, _ = build_models(cfg, int(meta["channels"]), int(meta["num_classes"]))
        G.load_state_dict(load_file(str(weights), device=str(map_location)))
    except SafetensorError as e:  # the JSON names a weights file that is not safetensors (e.g. a pickle)
        raise BundleError(f"{weights} is not a safetensors file ({str(e).splitlines()[0] if str(e) else ''}); "
                          "refusing to load it") from None
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise BundleError(f"{weights} does not match the generator its config describes "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    G.eval().requires_grad_(False)
    ds = dict(meta.get("dataset") or {})
    n = int(meta["num_classes"])
    names = list(meta.get("class_names") or [])
    if n and len(names) != n:
        names = [str(i) for i in range(n)]
    return LoadedGenerator(G, cfg, int(meta["step"]), int(meta["channels"]), n, weights, names if n else [],
                           bool(meta.get("uses_ema")), None, ds, None)


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
