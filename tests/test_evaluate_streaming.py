"""evaluate() streams (#19 finding 10): one batch of images at a time, the same numbers as scoring all n at once."""
from __future__ import annotations

import importlib
import weakref

import pytest
import torch
import torch.nn.functional as F

from core.config import TrainConfig
from core.metrics import TinyRandomFeatures, evaluate, scores
from core.metrics import laplacian_swd as swd_mod
from core.metrics.cache import clear_memory
from core.metrics.features import extract
from core.models import build_models

ev = importlib.import_module("core.metrics.evaluate")  # the module; core.metrics.evaluate is the function
ALL = "swd,fid,kid,is,pr"


@pytest.fixture(autouse=True)
def _one_thread_fresh_cache():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors gain nothing from more threads; the CPU is shared
    clear_memory()
    yield
    clear_memory()
    torch.set_num_threads(threads)


def _generator(res: int = 16):
    G, _ = build_models(TrainConfig(resolution=res, g_width=8, d_width=8, latent_dim=16), 3, 0)
    return G


def _reals(n: int, res: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, res // 4, res // 4, generator=g) * 2 - 1
    x = F.interpolate(low, size=(res, res), mode="bilinear", align_corners=False)
    x = x + 0.3 * torch.sign(torch.rand(n, 1, res, res, generator=g) - 0.9)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _values(out: dict) -> dict[str, float]:
    got = {}
    for r in out["results"]:
        got[r["metric"]] = r["value"]
        if r["std"] is not None:
            got[r["metric"] + "_std"] = r["std"]
        for k, v in r.get("detail", {}).get("levels", {}).items():
            got[f"swd_{k}"] = v
    return got


# ------------------------------------------------------------------ the old path, kept as the reference
def _old_descriptors(images: torch.Tensor, seed: int, per_image: int = 32, batch: int = 256) -> list[torch.Tensor]:
    """laplacian_swd.extract_descriptors as it was before streaming (positions drawn per 256-image block)."""
    g = torch.Generator().manual_seed(seed)
    out: list[list[torch.Tensor]] = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch].float().div(127.5).sub(1.0)
        for li, lev in enumerate(swd_mod.laplacian_pyramid(x)):
            n, c, h, w = lev.shape
            k = 7 if min(h, w) >= 7 else min(h, w)
            ys = torch.randint(0, h - k + 1, (n, per_image), generator=g)
            xs = torch.randint(0, w - k + 1, (n, per_image), generator=g)
            off = torch.arange(k)
            yy = (ys[..., None, None] + off[:, None]).expand(n, per_image, k, k)
            xx = (xs[..., None, None] + off[None, :]).expand(n, per_image, k, k)
            nn_ = torch.arange(n)[:, None, None, None].expand_as(yy)
            if len(out) <= li:
                out.append([])
            out[li].append(lev.permute(0, 2, 3, 1)[nn_, yy, xx].reshape(n * per_image, -1))
    return [torch.cat(p) for p in out]


@torch.no_grad()
def _old_evaluate(G, reals: torch.Tensor, n: int, seed: int, batch: int, net) -> dict[str, float]:
    """What evaluate() computed before it streamed: all n generated and n real images in memory at once."""
    g = torch.Generator().manual_seed(seed + 0x5EED)
    z = torch.randn(n, G.latent_dim, generator=g)
    G.eval()
    fake = torch.cat([((G(z[i:i + batch], None).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
                      for i in range(0, n, batch)])
    idx = torch.randperm(len(reals), generator=torch.Generator().manual_seed(seed + 7))[:n]
    real = reals[idx.sort().values].clone()
    c = real.shape[1]
    real_levels = [d.half().float() for d in _old_descriptors(real, seed)]  # through the cache's float16 state
    stats = [swd_mod._channel_stats(d, c) for d in _old_descriptors(real, seed)]
    fake_levels = _old_descriptors(fake, seed)
    pg = torch.Generator().manual_seed(seed + 2)
    out = {}
    for r, a, b, (m, s) in zip(swd_mod.level_resolutions(real.shape[-1]), real_levels, fake_levels, stats):
        out[f"swd_{r}px"] = 1e3 * swd_mod.sliced_wasserstein(swd_mod._normalise(a, m, s, c),
                                                              swd_mod._normalise(b, m, s, c), 256, pg)
    out["swd"] = sum(out.values()) / len(out)
    f = extract(net, fake, batch, logits=True)
    fr = extract(net, real, batch)["features"].float().double()
    out["fid"] = scores.fid(fr, f["features"])
    out["kid"], out["kid_std"] = scores.kid(fr, f["features"], seed=seed)
    out["is"], out["is_std"] = scores.inception_score(f["logits"], seed=seed)
    out["precision"], out["recall"] = scores.precision_recall(fr, f["features"])
    return out


# ------------------------------------------------------------------ tests
def test_streamed_evaluation_equals_the_all_at_once_reference(tmp_path):
    G, reals, net = _generator(), _reals(340), TinyRandomFeatures()
    # n=300: SWD's position blocks of 256 are crossed, and batches of 64 end in a partial one.
    want = _old_evaluate(G, reals, 300, 3, 64, net)
    got = _values(evaluate(G, reals, n=300, metrics=ALL, feature=net, seed=3, batch_size=64, device="cpu",
                           cache_dir=tmp_path))
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k


def test_batch_size_7_and_64_give_the_same_numbers(tmp_path):
    G, reals, net = _generator(), _reals(340), TinyRandomFeatures()
    a = _values(evaluate(G, reals, n=300, metrics=ALL, feature=net, seed=1, batch_size=7, device="cpu",
                         cache_dir=tmp_path / "a"))
    clear_memory()  # the real side is computed again, in batches of 64 this time
    b = _values(evaluate(G, reals, n=300, metrics=ALL, feature=net, seed=1, batch_size=64, device="cpu",
                         cache_dir=tmp_path / "b"))
    assert set(a) == set(b) and {"swd", "fid", "kid", "is", "precision", "recall"} <= set(a)
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-9), k


class _Recording:
    """A dataset's images that record the largest read: the real side must never be gathered whole."""

    def __init__(self, images: torch.Tensor):
        self.t, self.shape, self.largest = images, images.shape, 0

    def __len__(self) -> int:
        return len(self.t)

    def __getitem__(self, idx):
        x = self.t[idx]
        self.largest = max(self.largest, len(x))
        return x


def test_evaluate_holds_one_batch_of_images_not_n(tmp_path, monkeypatch):
    """Counts the generated images alive at each batch (weak references to every uint8 batch made) and the
    largest read of real images: both stay at about one batch for n = 600, where the old path held all 600."""
    made: list[weakref.ref] = []
    most = [0]
    to_uint8 = ev._to_uint8

    def counting(x):
        alive = sum(len(t) for t in (r() for r in made) if t is not None)
        most[0] = max(most[0], alive)
        out = to_uint8(x)
        made.append(weakref.ref(out))
        return out
    monkeypatch.setattr(ev, "_to_uint8", counting)
    images = _Recording(_reals(700))
    ds = type("Data", (), {"images": images, "fingerprint": "streaming-test"})()
    out = evaluate(_generator(), ds, n=600, metrics=ALL, feature=TinyRandomFeatures(), batch_size=16,
                   device="cpu", cache_dir=tmp_path)
    assert {r["metric"] for r in out["results"]} == {"swd", "fid", "kid", "is", "precision", "recall"}
    assert len(made) == 600 // 16 + 1
    assert most[0] <= 16, f"{most[0]} generated images alive when a batch was made"
    assert images.largest <= 16, f"{images.largest} real images read at once"


def test_descriptor_stream_draws_the_same_positions_for_any_batching():
    imgs = _reals(600, res=32, seed=5)  # 32 px: two pyramid levels; 600: blocks of 256, 256, 88
    want = _old_descriptors(imgs, seed=9)
    for step in (7, 256, 600):
        s = swd_mod.DescriptorStream(len(imgs), generator=torch.Generator().manual_seed(9))
        for i in range(0, len(imgs), step):
            s.add(imgs[i:i + step])
        got = s.finish()
        assert len(got) == len(want) == 2
        for a, b in zip(got, want):
            assert torch.equal(a, b), step
    s = swd_mod.DescriptorStream(4)
    with pytest.raises(ValueError, match="more than the 4 images"):
        s.add(imgs[:5])
    s.add(imgs[:3])
    with pytest.raises(ValueError, match="3 images were added"):
        s.finish()


def test_generate_writes_each_batch_before_making_the_next(tmp_path, monkeypatch):
    """generate -n N (finding 10's other half): one batch of images exists at a time, whatever N."""
    from core.cli import main
    from core.generator import sampling, writer
    from core.train import create_run, run_training
    t = create_run(TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8,
                               steps=1, eval_every=0, device="cpu", threads=1), tmp_path / "runs")
    run_training(t)
    written, calls = [0], []
    add, gen = writer.ImageWriter.add, sampling.generate_seeds

    def counting_add(self, name, img):
        written[0] += 1
        return add(self, name, img)

    def recording(g, seeds, *a, **k):
        calls.append((len(seeds), written[0]))
        return gen(g, seeds, *a, **k)
    monkeypatch.setattr(writer.ImageWriter, "add", counting_add)
    monkeypatch.setattr(sampling, "generate_seeds", recording)
    monkeypatch.setattr(writer, "BATCH", 3)
    assert main(["generate", str(t.store.path), "-n", "10", "--out", str(tmp_path / "o")]) == 0
    assert calls == [(3, 0), (3, 3), (3, 6), (1, 9)]  # batch k is generated only after batch k-1 is written
    assert len(list((tmp_path / "o").iterdir())) == 10
