"""Closed registry of model families: ``@register(name)`` builders and ``build_models(cfg, ...)``."""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from core.config import ConfigError, TrainConfig

Builder = Callable[[TrainConfig, int, int], "tuple[nn.Module, nn.Module]"]
_BUILDERS: dict[str, Builder] = {}
# The order families are listed to users (the curriculum's, oldest first), whatever order their
# modules happen to be imported in; a family missing here is listed after these, by name.
LISTED_ORDER = ("mlp", "dcgan", "resnet-sn", "stylegan2", "fastgan", "r3gan")


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn(cfg, channels, num_classes) -> (G, D)`` under ``name``."""
    def deco(fn: Builder) -> Builder:
        _BUILDERS[name] = fn  # re-registering (a module reload) replaces the old builder
        return fn
    return deco


def available_archs() -> tuple[str, ...]:
    return tuple(sorted(_BUILDERS, key=lambda n: (LISTED_ORDER.index(n) if n in LISTED_ORDER else len(LISTED_ORDER), n)))


def build_models(cfg: TrainConfig, channels: int, num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) for ``cfg`` with ``channels`` image channels and ``num_classes`` dataset classes.

    ``num_classes`` is ignored unless ``cfg.conditional``; unconditional models ignore labels.
    """
    if cfg.task != "generate":  # image-to-image translation: U-Net / ResNet G and PatchGAN D (core/translate)
        from ..translate.models import build_translation_models
        return build_translation_models(cfg, channels)
    if cfg.arch not in _BUILDERS:
        raise ConfigError("arch", f"unknown architecture {cfg.arch!r}; valid: {', '.join(available_archs())}")
    r = cfg.resolution
    if not (isinstance(r, int) and 16 <= r <= 256 and r & (r - 1) == 0):
        raise ConfigError("resolution", f"must be a power of two between 16 and 256, got {r!r}")
    if not (isinstance(channels, int) and channels >= 1):
        raise ConfigError("channels", f"need at least one image channel, got {channels!r}")
    if cfg.conditional and num_classes < 2:
        raise ConfigError("conditional", "needs a labelled dataset with at least two classes "
                                         f"(class subfolders or a labelled built-in dataset); found {num_classes}")
    k = num_classes if cfg.conditional else 0
    g, d = _BUILDERS[cfg.arch](cfg, channels, k)
    if cfg.pac > 1:
        from core.models.tricks import PackedDiscriminator
        # The family's own D, built for pac x channels input channels (its G is discarded).
        d = PackedDiscriminator(_BUILDERS[cfg.arch](cfg, channels * cfg.pac, k)[1], cfg.pac, channels)
    if cfg.minibatch_disc:
        from core.models.tricks import MinibatchDiscrimination
        inner = d.inner if cfg.pac > 1 else d
        if getattr(inner, "feature_dim", None) is None:
            raise ConfigError("minibatch_disc", f"arch={cfg.arch} exposes no feature size for minibatch discrimination")
        inner.mbd = MinibatchDiscrimination(inner.feature_dim)
    return g, d
