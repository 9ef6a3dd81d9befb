"""Pluggable feature networks for FID/KID/IS/PR: the standard FID Inception-v3 (local weights only) or your own."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

WEIGHTS_ENV = "GAN_STUDIO_INCEPTION_WEIGHTS"
# The file torch-fidelity (and so torchmetrics) downloads: the TF FID Inception graph converted to PyTorch.
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_FILE)


class FeatureNetUnavailable(RuntimeError):
    """A feature network cannot be built here (missing weights or library); the message says how to fix it."""


class FeatureNet(nn.Module):
    """Interface: ``forward(uint8 N x 3 x H x W) -> N x num_features`` features, optional ``logits`` for IS.

    ``name`` is written next to every number computed with it, so numbers from different
    networks are never mixed up.
    """

    name: str = "custom"
    num_features: int = 0
    has_logits: bool = False
    comparable_with_papers: bool = False

    def logits(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError(f"{self.name} has no class logits, so it cannot give an Inception Score")


def as_rgb_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] or uint8, 1 or 3 channels -> uint8 with 3 channels (what Inception expects)."""
    if images.dtype != torch.uint8:
        images = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images


def weights_search_paths(path: str | os.PathLike | None = None) -> list[Path]:
    """Where the Inception weights are looked for, in order."""
    out = []
    if path:
        out.append(Path(path).expanduser())
    if os.environ.get(WEIGHTS_ENV):
        out.append(Path(os.environ[WEIGHTS_ENV]).expanduser())
    out.append(Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE)  # where torch-fidelity caches it
    from ..data import default_cache_dir
    out.append(default_cache_dir() / WEIGHTS_FILE)
    return out


def find_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """The first existing weights file, or FeatureNetUnavailable naming every place looked at."""
    candidates = weights_search_paths(path)
    if path and not candidates[0].is_file():
        raise FeatureNetUnavailable(f"Inception weights not found at {candidates[0]} (the path you gave).")
    for p in candidates:
        if p.is_file():
            return p
    looked = "\n  ".join(str(p) for p in candidates)
    raise FeatureNetUnavailable(
        "FID/KID/IS/precision-recall need the standard FID Inception-v3 weights, which are not on this "
        f"machine (and are never downloaded during evaluation). Looked in:\n  {looked}\n"
        f"To enable them, download {WEIGHTS_URL} (~92 MB) on a machine with internet and either put it in "
        f"{candidates[-2].parent} or {candidates[-1].parent}, or set {WEIGHTS_ENV}=/path/to/{WEIGHTS_FILE} "
        "(or pass --inception-weights). Until then only SWD (needs no weights) is computed.")


def inception_weights_available(path: str | os.PathLike | None = None) -> bool:
    """Whether FID/KID/IS can run here (the weights are on disk); never downloads, never raises."""
    try:
        find_inception_weights(path)
        return True
    except FeatureNetUnavailable:
        return False


class InceptionFeatures(FeatureNet):
    """The FID Inception-v3 (torch-fidelity's port of the TF graph used by the original FID code):
    2048-d pool features and 1008 unbiased logits, so FID/KID/IS are comparable with papers."""

    name = "inception-v3-fid"
    num_features = 2048
    has_logits = True
    comparable_with_papers = True

    def __init__(self, weights: str | os.PathLike | None = None):
        super().__init__()
        path = find_inception_weights(weights)
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError:
            raise FeatureNetUnavailable("the Inception feature network needs the torch-fidelity package: "
                                        "pip install torch-fidelity (it downloads no weights by itself)") from None
        # torch-fidelity loads the file with weights_only=False; load it safely first so a file
        # holding anything but tensors is refused before that happens.
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise FeatureNetUnavailable(f"{path} is not a usable Inception weights file: {type(e).__name__}: "
                                        f"{str(e).splitlines()[0] if str(e) else ''}") from None
        if not isinstance(sd, dict) or "Mixed_7c.branch_pool.conv.weight" not in sd:
            raise FeatureNetUnavailable(f"{path} does not hold the FID Inception-v3 weights ({WEIGHTS_FILE})")
        del sd
        self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                               feature_extractor_weights_path=str(path))
        self.net.eval().requires_grad_(False)
        self.weights_path = path

    def train(self, mode: bool = True) -> InceptionFeatures:
        return super().train(False)  # never leaves eval mode

    @torch.no_grad()
    def both(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pool features, logits) in one pass; images of any size are resized to 299 inside."""
        feats, logits = self.net(as_rgb_uint8(images))
        return feats, logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.both(images)[0]

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.both(images)[1]


class TinyRandomFeatures(FeatureNet):
    """NOT a quality metric: a small randomly initialised conv net, for testing the metric plumbing
    offline (its FID has no meaning beyond "same" vs "different" and is never comparable with papers)."""

    name = "tiny-random-conv (test only)"
    has_logits = True

    def __init__(self, num_features: int = 32, seed: int = 0):
        super().__init__()
        self.num_features = num_features
        g = torch.Generator().manual_seed(seed)
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1), nn.LeakyReLU(0.2),     # 16 x R/2 x R/2
            nn.Conv2d(16, num_features, 3, 2, 1), nn.LeakyReLU(0.2),  # F x R/4 x R/4
            nn.AdaptiveAvgPool2d(1), nn.Flatten())             # F
        self.head = nn.Linear(num_features, 10)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (0.5 if p.dim() > 1 else 0.1))
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = as_rgb_uint8(images).float().div(127.5).sub(1.0)
        return self.body(x)

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward(images))


def get_feature_net(feature: str | nn.Module | None = "inception", weights: str | os.PathLike | None = None) -> FeatureNet:
    """``"inception"`` (default) or any module mapping uint8 images to features; FeatureNetUnavailable if not here."""
    if feature is None or feature == "inception":
        return InceptionFeatures(weights)
    if isinstance(feature, FeatureNet):
        return feature
    if isinstance(feature, nn.Module):
        return _Wrapped(feature)
    raise ValueError(f"unknown feature network {feature!r}; use 'inception' or pass an nn.Module")


class _Wrapped(FeatureNet):
    """A user's plain nn.Module used as a feature network (named after its class)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module.eval()
        self.name = getattr(module, "name", type(module).__name__)
        self.has_logits = hasattr(module, "logits")

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.module(as_rgb_uint8(images)).flatten(1)

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.module.logits(as_rgb_uint8(images))


@torch.no_grad()
def extract(net: FeatureNet, images: torch.Tensor, batch_size: int = 64, logits: bool = False,
            device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Features (and logits if asked and available) for a set of images, batched, on the CPU in float64."""
    net = net.to(device)
    feats, logs = [], []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device)
        if logits and isinstance(net, InceptionFeatures):
            f, lg = net.both(x)
            logs.append(lg.double().cpu())
        else:
            f = net(x)
            if logits and net.has_logits:
                logs.append(net.logits(x).double().cpu())
        feats.append(f.double().cpu())
    out = {"features": torch.cat(feats)}
    if logs:
        out["logits"] = torch.cat(logs)
    return out
