"""FID, KID and IS through torchmetrics on precomputed features; precision/recall (no library covers it)."""
from __future__ import annotations

import torch
from torch import nn


class _Precomputed(nn.Module):
    """An identity "feature network": features are extracted (and real ones cached) by us, then
    handed to torchmetrics, which does the statistics exactly as the library defines them."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the two feature sets (torchmetrics)."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    m = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]))
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    return float(m.compute())


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std of the polynomial-kernel MMD over random subsets (torchmetrics)."""
    import warnings

    from torchmetrics.image.kid import KernelInceptionDistance
    n = min(len(real), len(fake))
    # Subsets must be smaller than the sets, or every subset is the whole set and the std is 0.
    size = subset_size if subset_size < n else max(2, n // 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "saves all features in a buffer": that is intended
        m = KernelInceptionDistance(feature=_Precomputed(real.shape[1]), subsets=subsets, subset_size=size)
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # torchmetrics draws subsets from the global RNG
        torch.manual_seed(seed)
        mean, std = m.compute()
    return float(mean), float(std)


def inception_score(logits: torch.Tensor, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """Inception Score exp(E KL(p(y|x) || p(y))): mean and std over splits (torchmetrics). Higher is better."""
    import warnings

    from torchmetrics.image.inception import InceptionScore
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "saves all features in a buffer": that is intended
        m = InceptionScore(feature=_Precomputed(logits.shape[1]), splits=max(1, min(splits, len(logits) // 2)))
    m.update(logits.double())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = m.compute()
    return float(mean), float(std)


def _kth_radii(x: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
    out = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)
        # The smallest distance is the point to itself (0), so the k-th neighbour is at index k.
        out.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(out)


def _coverage(points: torch.Tensor, ref: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> float:
    """Fraction of ``points`` inside at least one ball (ref_i, radii_i): inside the ref manifold estimate."""
    inside = 0
    for i in range(0, len(points), chunk):
        d = torch.cdist(points[i:i + chunk], ref)
        inside += int((d <= radii[None, :]).any(dim=1).sum())
    return inside / max(len(points), 1)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its points reaching their k-th nearest
    neighbour. Precision = share of generated samples inside the real manifold (fidelity);
    recall = share of real samples inside the generated manifold (variety). Both in [0, 1].
    """
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set")
    real, fake = real.double(), fake.double()
    precision = _coverage(fake, real, _kth_radii(real, k))
    recall = _coverage(real, fake, _kth_radii(fake, k))
    return precision, recall
