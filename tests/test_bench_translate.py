"""`bench translate`'s code path on a tiny synthetic paired folder (no Fashion-MNIST needed): edge maps, the
mean-image baseline, held-out scores over training, the grid and the docs section."""
from __future__ import annotations

import numpy as np
import torch

from core.bench.translate import edge_map, make_edge_pairs, run_translate_bench, scores


def test_edge_map_marks_the_borders_of_a_square():
    img = np.zeros((12, 12), np.uint8)
    img[3:9, 3:9] = 200
    e = edge_map(img)
    assert e.max() == 255 and e[0, 0] == 0 and e[6, 6] == 0  # flat areas have no edges
    assert e[3, 6] > 100 and e[6, 3] > 100


def test_scores_of_a_perfect_and_a_constant_prediction():
    tg = torch.rand(3, 1, 16, 16) * 2 - 1
    perfect = scores(tg, tg)
    assert perfect["l1"] == 0 and perfect["ssim"] > 0.999 and perfect["psnr"] > 90
    const = scores(torch.zeros_like(tg), tg)
    assert 0.2 < const["l1"] < 0.3 and const["ssim"] < perfect["ssim"]


def test_bench_translate_runs_end_to_end_on_a_tiny_folder(tmp_path):
    rng = np.random.default_rng(0)
    imgs = (rng.random((12, 28, 28)) * 255).astype(np.uint8)
    folder = make_edge_pairs(imgs, tmp_path / "pairs", size=20)
    assert len(list((folder / "A").glob("*.png"))) == len(list((folder / "B").glob("*.png"))) == 12
    doc = tmp_path / "bench.md"
    r = run_translate_bench(folder, steps=6, resolution=16, runs_dir=str(tmp_path / "runs"), out_dir=tmp_path / "out",
                            doc=doc, overrides={"g_width": 8, "d_width": 8, "batch_size": 4})
    assert r["state"] == "finished" and r["steps"] == 6 and r["held_out"] == 2
    assert r["curve"] and r["curve"][-1][0] == 6  # eval every step, the last at the end
    for k in ("l1", "psnr", "ssim"):
        assert np.isfinite(r["model"][k]) and np.isfinite(r["mean_image"][k])
    assert (tmp_path / "out" / "translate-pix2pix-fashion-edges-16px.png").exists()
    text = doc.read_text()
    assert "## Translation: pix2pix" in text and "constant mean training image" in text
