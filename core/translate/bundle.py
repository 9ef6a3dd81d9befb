"""Exported translator bundles (pix2pix / cyclegan): NAME.safetensors with one ``DIRECTION.`` key prefix per
direction, NAME.json (config, directions, resolution, channels); recognised and loaded without pickles."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..data.errors import DataError

TRANSLATOR_FORMAT = "gan-studio-translator"
TRANSLATOR_VERSION = 1
JSON_MAX_BYTES = 4 << 20


class TranslatorBundleError(DataError):
    """A translator bundle that cannot be loaded; the message names the file (the CLI prints it in one line)."""


def _meta_of(p: Path) -> dict[str, Any] | None:
    """The translator metadata of a .json or .safetensors file, or None when it is not a translator bundle."""
    try:
        if p.suffix.lower() == ".json":
            if p.stat().st_size > JSON_MAX_BYTES:
                return None
            meta = json.loads(p.read_text(encoding="utf-8"))
        elif p.suffix.lower() == ".safetensors":
            from safetensors import safe_open
            with safe_open(str(p), "pt") as f:
                head = f.metadata() or {}
            if head.get("format") != TRANSLATOR_FORMAT:
                return None
            meta = json.loads(head.get("bundle", "{}"))
        else:
            return None
    except (OSError, ValueError, RecursionError, MemoryError, Exception):  # noqa: BLE001 - not ours, whatever it is
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == TRANSLATOR_FORMAT else None


def is_translator_bundle(source: str | Path) -> bool:
    p = Path(source)
    return p.is_file() and _meta_of(p) is not None


def read_translator_meta(source: str | Path) -> tuple[dict[str, Any], Path]:
    """(metadata, weights file) of a translator bundle given its .safetensors or .json."""
    p = Path(source)
    meta = _meta_of(p) if p.is_file() else None
    if meta is None:
        raise TranslatorBundleError(f"{p} is not a GAN Studio translator bundle")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > TRANSLATOR_VERSION:
        raise TranslatorBundleError(f"{p}: translator bundle version {str(version)[:20]!r} is not one this GAN Studio reads")
    wname = str(meta.get("weights") or "") if p.suffix.lower() == ".json" else p.name
    if not wname or Path(wname).name != wname or wname in (".", ".."):
        raise TranslatorBundleError(f"{p}: 'weights' must name a file beside the JSON, got {wname!r}")
    dirs = meta.get("directions")
    if not isinstance(dirs, list) or not dirs or not set(dirs) <= {"AtoB", "BtoA"}:
        raise TranslatorBundleError(f"{p}: 'directions' must list AtoB and/or BtoA")
    for k, lo, hi in (("channels", 1, 3), ("resolution", 1, 4096)):
        v = meta.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise TranslatorBundleError(f"{p}: '{k}' must be an integer in [{lo}, {hi}], got {str(v)[:20]!r}")
    if not isinstance(meta.get("config"), dict):
        raise TranslatorBundleError(f"{p}: bundle metadata lacks its training config")
    return meta, p.with_name(wname)


def load_translator_bundle(source: str | Path) -> tuple[dict[str, torch.nn.Module], TrainConfig, int]:
    """({direction: network in eval mode}, config, channels); shapes are checked on the meta device first."""
    from safetensors.torch import load_file

    from .models import build_translation_models
    meta, weights = read_translator_meta(source)
    cfg = TrainConfig.from_dict(meta["config"], source=str(source))
    if cfg.task == "generate" or cfg.resolution != meta["resolution"]:
        raise TranslatorBundleError(f"{source}: its config does not describe a {meta['resolution']} px translator")
    channels = meta["channels"]
    try:
        sd = load_file(str(weights))
    except (OSError, ValueError, Exception) as e:  # noqa: BLE001 - safetensors raises its own error types
        raise TranslatorBundleError(f"{weights}: cannot read the weights ({e})") from None
    nets: dict[str, torch.nn.Module] = {}
    for d in meta["directions"]:
        with torch.device("meta"):
            probe = build_translation_models(cfg, channels)[0]
        want = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
        got = {k[len(d) + 1:]: v for k, v in sd.items() if k.startswith(d + ".")}
        if {k: tuple(v.shape) for k, v in got.items()} != want:
            raise TranslatorBundleError(f"{weights}: the {d} weights do not match the network its JSON describes")
        G = build_translation_models(cfg, channels)[0]
        G.load_state_dict(got)
        nets[d] = G.eval()
    return nets, cfg, channels
