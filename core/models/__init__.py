"""Model families (mlp, dcgan, resnet-sn, stylegan2, fastgan, r3gan) behind one registry: ``build_models(cfg, channels, num_classes)``."""
from __future__ import annotations

from torch import nn

# Importing the family modules runs their @register decorators (registry.LISTED_ORDER orders them for users).
from core.models import dcgan, fastgan, mlp, r3gan, resnet_sn, stylegan2  # noqa: F401,E402
from core.models.base import Discriminator, Generator
from core.models.layers import MinibatchStdDev, SelfAttention, resolve_d_norm
from core.models.registry import available_archs, build_models, register


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; a spectral-normed weight counts once (its ``original``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["build_models", "register", "available_archs", "count_parameters", "resolve_d_norm",
           "Generator", "Discriminator", "MinibatchStdDev", "SelfAttention"]
