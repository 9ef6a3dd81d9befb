"""core.metrics.classifier: a classifier FD that sees missing classes, trained once and cached."""
from __future__ import annotations

import pytest
import torch

from core.metrics.classifier import cached_classifier, class_aware_scores, train_classifier


def two_classes(n=400, r=16, seed=0):
    """Class 0: a bright left half; class 1: a bright right half (with noise)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    x = torch.rand((n, 1, r, r), generator=g) * 60
    x[labels == 0, :, :, : r // 2] += 180
    x[labels == 1, :, :, r // 2:] += 180
    return x.clamp(0, 255).to(torch.uint8), labels


@pytest.fixture(scope="module")
def net():
    x, y = two_classes()
    n, acc = train_classifier(x, y, 2, epochs=2, batch_size=64)
    assert acc > 0.95, acc
    return n


def test_scores_see_a_missing_class(net):
    real, y = two_classes(seed=1)
    same = class_aware_scores(net, real, two_classes(seed=2)[0])
    assert same.coverage == 2 and abs(same.class_share[0] - 0.5) < 0.1
    only_left = real[y == 0]
    dropped = class_aware_scores(net, real, torch.cat([only_left, only_left]))
    assert dropped.coverage == 1 and dropped.class_share[0] > 0.95
    assert dropped.fd > 5 * max(same.fd, 1e-3)
    assert dropped.recall < same.recall


def test_rgb_fakes_are_scored_by_a_greyscale_classifier(net):
    real, _ = two_classes(seed=3)
    s = class_aware_scores(net, real, real.expand(-1, 3, -1, -1).contiguous())
    assert s.coverage == 2 and s.fd < 1.0


def test_the_classifier_is_trained_once_then_read_from_the_cache(tmp_path, monkeypatch):
    x, y = two_classes(n=64)
    calls = []
    import core.metrics.classifier as C
    real_train = C.train_classifier

    def counting(*a, **k):
        calls.append(1)
        return real_train(*a, **k)
    monkeypatch.setattr(C, "train_classifier", counting)
    a, info_a = cached_classifier(x, y, 2, "fp-test", cache_dir=tmp_path, epochs=1)
    b, info_b = cached_classifier(x, y, 2, "fp-test", cache_dir=tmp_path, epochs=1)
    assert len(calls) == 1 and not info_a["cached"] and info_b["cached"]
    assert info_a["accuracy"] == info_b["accuracy"]
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    cached_classifier(x, y, 2, "other-data", cache_dir=tmp_path, epochs=1)
    assert len(calls) == 2  # another dataset's fingerprint trains its own
