"""core.latent and the generate CLI: reproducibility by seed, exact path endpoints, truncation, edits,
animations, nearest training images, the sample cache."""
from __future__ import annotations

import io
import zipfile

import pytest
import torch

from core import latent as L
from core.generator import checkpoint_choices, load_generator, resolve_checkpoint
from core.train import run_training
from core.train.checkpoint import CheckpointError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from core.config import TrainConfig
    from core.train import create_run
    cfg = TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=4,
                      checkpoint_every=2, device="cpu", threads=1)
    t = create_run(cfg, tmp_path_factory.mktemp("runs"))
    assert run_training(t) == "finished"
    return t.store.path


@pytest.fixture(scope="module")
def g(run_dir):
    return load_generator(run_dir, with_discriminator=True)


def test_seed_gives_same_image_whatever_the_batch(g, run_dir):
    a = L.sample_seeds(g, [3, 4, 5])
    b = L.sample_seeds(g, [5, 9, 3])
    assert torch.equal(a[0], b[2]) and torch.equal(a[2], b[0])
    assert not torch.equal(a[0], a[1])
    again = L.sample_seeds(load_generator(run_dir), [3])  # a fresh load gives the same image
    assert torch.equal(again[0], a[0])
    assert torch.equal(L.seeds_to_z([7], 16), L.seeds_to_z([1, 7], 16)[1:])


@pytest.mark.parametrize("mode", L.INTERP_MODES)
def test_interpolation_endpoints_are_exact(mode):
    z0, z1 = L.seeds_to_z([1, 2], 32)
    path = L.interpolate(z0, z1, 7, mode)
    assert path.shape == (7, 32)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    mid = path[3]
    assert not torch.equal(mid, z0) and not torch.equal(mid, z1)
    if mode == "slerp":  # slerp keeps the norm between the endpoints' (no shrinking toward 0 like lerp)
        lo, hi = sorted([float(z0.norm()), float(z1.norm())])
        assert lo - 1e-4 <= float(mid.norm()) <= hi + 1e-4
        assert float(L.lerp(z0, z1, 0.5).norm()) < float(mid.norm())
    # scalar t and degenerate inputs
    assert torch.equal(L.slerp(z0, z1, 0.0), z0) and torch.equal(L.slerp(z0, z1, 1.0), z1)
    assert torch.allclose(L.slerp(z0, z0.clone(), 0.5), z0)
    with pytest.raises(ValueError, match="valid: lerp, slerp"):
        L.interpolate(z0, z1, 3, "cubic")


def test_truncation_zero_gives_the_mean_image_for_every_seed(g):
    imgs = L.sample_seeds(g, [0, 1, 2, 99], psi=0.0)
    for i in range(1, 4):
        assert torch.equal(imgs[0], imgs[i])
    mean_img = L.render(g, torch.zeros(g.latent_dim))
    assert torch.allclose(imgs[0], mean_img[0], atol=1e-6)
    z = L.seeds_to_z([5], 16, 0.5)
    assert float(z.abs().max()) <= 1.0 + 1e-6  # truncated to [-2, 2], then scaled by psi


def test_edits_and_principal_directions(g):
    z = L.seeds_to_z([4], g.latent_dim)[0]
    e = L.edit_dims(z, {0: 2.5, 3: -1.0})
    assert e[0] == 2.5 and e[3] == -1.0 and torch.equal(e[1:3], z[1:3])
    assert L.edit_dims(z, {1: 1.0}, mode="add")[1] == z[1] + 1.0
    dirs = L.principal_directions(g, k=5, n_samples=128)
    assert dirs.vectors.shape == (5, g.latent_dim)
    assert torch.allclose(dirs.vectors.norm(dim=1), torch.ones(5), atol=1e-5)
    ex = dirs.explained.tolist()
    assert ex == sorted(ex, reverse=True) and 0 < sum(ex) <= 1.0 + 1e-6
    assert torch.equal(L.edit_directions(z, dirs, [0.0] * 5), z)
    moved = L.edit_directions(z, dirs, [2.0, 0, 0, 0, 0])
    assert torch.allclose(moved - z, 2.0 * dirs.vectors[0], atol=1e-6)
    # the same directions every time (fixed seed)
    assert torch.equal(L.principal_directions(g, k=5, n_samples=128).vectors, dirs.vectors)


def test_animations_and_gif(g):
    zs = L.seeds_to_z([1, 2, 3], g.latent_dim)
    loop = L.loop_path(zs, 4)
    assert loop.shape == (12, g.latent_dim)
    assert torch.equal(loop[0], zs[0]) and torch.equal(loop[4], zs[1])
    assert not torch.equal(loop[-1], zs[0])  # the loop does not repeat its first frame
    walk = L.random_walk(zs[0], 10, seed=3)
    assert walk.shape == (10, g.latent_dim) and torch.equal(walk[0], zs[0])
    assert torch.equal(walk, L.random_walk(zs[0], 10, seed=3))
    frames = L.render(g, walk)
    data = L.gif_bytes(frames, fps=10, scale=4)
    assert data[:6] == b"GIF89a"
    from PIL import Image
    im = Image.open(io.BytesIO(data))
    assert im.n_frames == 10 and im.size == (64, 64)
    assert Image.open(io.BytesIO(L.gif_bytes(frames[:4], boomerang=True))).n_frames == 6
    strip = Image.open(io.BytesIO(L.strip_png(frames[:3], min_tile=32)))
    assert strip.height >= 32 and strip.width > 3 * 32


def test_nearest_training_images_finds_an_exact_copy(g):
    ds = L.load_training_images(g)
    target = 1234
    sample = ds.to_float(ds.images[target].clone())
    nb = L.nearest_images(sample, ds.images, k=3, space="pixel")
    assert nb.indices[0] == target and nb.distances[0] == pytest.approx(0.0, abs=1e-4)
    assert nb.images.shape == (3, 3, 16, 16) and nb.images.dtype == torch.uint8 and nb.total == len(ds)
    feats = L.d_features(g.D, ds.images)
    nbd = L.nearest_images(sample, ds.images, k=3, space="d-features", D=g.D, train_features=feats)
    assert nbd.distances[0] == pytest.approx(0.0, abs=1e-4)
    assert torch.equal(nbd.images[0], ds.images[nbd.indices[0]])
    sub = L.nearest_images(sample, ds.images, k=2, max_images=100)
    assert sub.searched == 100 and sub.total == len(ds)
    with pytest.raises(ValueError, match="discriminator"):
        L.nearest_images(sample, ds.images, space="d-features")


def test_sample_cache_is_an_lru(g):
    cache = L.SampleCache(max_items=3)
    a = L.sample_seeds(g, [1, 2, 3], 0.7, cache=cache)
    assert cache.misses == 3 and cache.hits == 0 and len(cache) == 3
    b = L.sample_seeds(g, [3, 4], 0.7, cache=cache)
    assert cache.hits == 1 and torch.equal(a[2], b[0]) and len(cache) == 3
    L.sample_seeds(g, [3], 1.0, cache=cache)  # another psi is another key
    assert cache.hits == 1


def test_checkpoint_choices(run_dir, tmp_path):
    ch = checkpoint_choices(run_dir)
    assert ch[0][0].startswith("latest") and ch[0][1].name == "step_0000004.pt"
    assert [lbl for lbl, _ in ch[1:]] == ["step 4", "step 2"]
    assert resolve_checkpoint(run_dir, 2).name == "step_0000002.pt"
    with pytest.raises(CheckpointError, match="no checkpoint for step 3"):
        resolve_checkpoint(run_dir, 3)
    with pytest.raises(CheckpointError, match="best.pt"):
        resolve_checkpoint(run_dir, "best")
    assert load_generator(run_dir, checkpoint="2").step == 2
    assert checkpoint_choices(tmp_path) == []


def _pngs(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_cli_generate_is_reproducible(run_dir, tmp_path, capsys):
    from core.cli import main
    args = ["generate", str(run_dir), "-n", "3", "--seed", "10", "--truncation", "0.8"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    a, b = _pngs(tmp_path / "a"), _pngs(tmp_path / "b")
    assert list(a) == ["seed_000010.png", "seed_000011.png", "seed_000012.png"] and a == b
    assert main(args + ["--zip", "--out", str(tmp_path / "z1.zip")]) == 0
    assert main(args + ["--zip", "--out", str(tmp_path / "z2.zip")]) == 0
    z1 = (tmp_path / "z1.zip").read_bytes()
    assert z1 == (tmp_path / "z2.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(z1)) as zf:
        assert {n: zf.read(n) for n in zf.namelist()} == a
    # an exported bundle gives the same images as the run folder it came from
    from core.export import export_generator
    res = export_generator(run_dir, "safetensors", tmp_path / "bundle" / "g.safetensors")
    assert main(["generate", str(res.path), "-n", "3", "--seed", "10", "--truncation", "0.8",
                 "--out", str(tmp_path / "c")]) == 0
    assert _pngs(tmp_path / "c") == a
    # user errors: one line, exit 2
    assert main(["generate", str(run_dir), "--class", "1", "--out", str(tmp_path / "d")]) == 2
    assert "not conditional" in capsys.readouterr().err
    assert main(["generate", str(run_dir), "--truncation", "2", "--out", str(tmp_path / "d")]) == 2
