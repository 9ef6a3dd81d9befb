"""A class-aware quality measure for labelled data: FD, class coverage and recall in the features of a small classifier trained on the data itself.

SWD compares pixel statistics and cannot see that a generator dropped whole classes; Inception
features (FID) need downloaded weights. A small CNN trained once on the labelled training set
(Fashion-MNIST for the quality benchmark) is offline, fast on a CPU, and its penultimate features
separate exactly the classes a user would name. It is cached in the user cache by the data's
fingerprint; it is never trained in a test on real data and never downloaded. Numbers computed
with it are labelled ``classifier-fd`` and are comparable only between runs on the same data.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..fsutil import atomic_write_bytes
from .cache import stats_dir, stats_key
from .features import FeatureNet
from .scores import fid, precision_recall

VERSION = 1  # bump when the network or its training recipe changes


class SmallClassifier(FeatureNet):
    """uint8 N x C x R x R -> 128 penultimate features; ``logits`` -> N x classes. Three conv blocks, global pool."""

    name = "classifier-fd"
    num_features = 128
    has_logits = True

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.channels, self.num_classes = channels, num_classes

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*block(channels, 32), *block(32, 64), *block(64, 128),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())  # 128
        self.fc = nn.Linear(128, num_classes)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 127.5 - 1
        if x.shape[1] != self.channels:  # generated RGB for a greyscale classifier, or the reverse
            x = x.mean(dim=1, keepdim=True) if self.channels == 1 else x.expand(-1, self.channels, -1, -1)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self._prep(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward(x))


def train_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int, epochs: int = 2,
                     batch_size: int = 256, seed: int = 0) -> tuple[SmallClassifier, float]:
    """Train on uint8 images with labels; returns the net (eval mode) and its accuracy on a held-out tenth."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(images), generator=g)
    n_val = max(1, len(images) // 10)
    val, train = perm[:n_val], perm[n_val:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallClassifier(images.shape[1], num_classes)
        opt = torch.optim.Adam(net.parameters(), 2e-3)
        net.train()
        for _ in range(epochs):
            order = train[torch.randperm(len(train), generator=g)]
            for i in range(0, len(order), batch_size):
                idx = order[i:i + batch_size]
                loss = F.cross_entropy(net.logits(images[idx]), labels[idx].long())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net.logits(images[val[i:i + 1024]]).argmax(1) for i in range(0, len(val), 1024)])
    return net, float((pred == labels[val].long()).float().mean())


def cached_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int, fingerprint: str,
                      cache_dir: str | os.PathLike | None = None, epochs: int = 2) -> tuple[SmallClassifier, dict]:
    """The classifier for this data, trained once and kept in the user cache (``metrics/``)."""
    key = stats_key(kind="classifier", v=VERSION, data=fingerprint, classes=num_classes, epochs=epochs,
                    shape=list(images.shape[1:]))
    path = stats_dir(cache_dir) / f"{key}.classifier.pt"
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            net = SmallClassifier(images.shape[1], num_classes)
            net.load_state_dict(saved["state"])
            return net.eval(), {"accuracy": saved["accuracy"], "cached": True}
        except Exception:
            pass  # unreadable or from another version: train again
    net, acc = train_classifier(images, labels, num_classes, epochs=epochs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save({"state": net.state_dict(), "accuracy": acc}, buf)
        atomic_write_bytes(path, buf.getvalue(), fsync=False)
    except OSError:
        pass  # a cache that cannot be written only costs a retrain next time
    return net, {"accuracy": acc, "cached": False}


@dataclass
class ClassAwareScores:
    fd: float                 # Frechet distance in classifier features, generated vs real (lower is better)
    coverage: int             # classes that get at least half their fair share of generated images
    num_classes: int
    class_share: list[float]  # fraction of generated images predicted as each class
    precision: float          # Kynkaanniemi et al. 2019 in classifier features
    recall: float

    def as_metrics(self) -> dict[str, Any]:
        return {"classifier/fd": self.fd, "classifier/coverage": self.coverage,
                "classifier/precision": self.precision, "classifier/recall": self.recall}


@torch.no_grad()
def class_aware_scores(net: SmallClassifier, real: torch.Tensor, fake: torch.Tensor, batch_size: int = 512) -> ClassAwareScores:
    """Scores of uint8 ``fake`` against uint8 ``real`` (same count is best) in ``net``'s features."""
    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, preds = [], []
        for i in range(0, len(x), batch_size):
            f = net(x[i:i + batch_size])
            feats.append(f.double())
            preds.append(net.fc(f).argmax(1))
        return torch.cat(feats), torch.cat(preds)
    fr, _ = run(real)
    ff, pf = run(fake)
    share = torch.bincount(pf, minlength=net.num_classes).double() / max(len(pf), 1)
    covered = int((share >= 0.5 / net.num_classes).sum())
    p, r = precision_recall(fr.float(), ff.float(), k=3)
    return ClassAwareScores(fid(fr, ff), covered, net.num_classes, [round(float(s), 4) for s in share], p, r)
