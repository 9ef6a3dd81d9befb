"""Pick for me: the recommended preset follows the scan facts, exists, and says why in one sentence."""
from __future__ import annotations

import pytest

from core.config import PRESETS, TrainConfig
from core.recommend import recommend, recommend_for_scan


@pytest.mark.parametrize("count, side, gpu, preset", [
    (40, 64, False, "fastgan"), (1432, 32, False, "fastgan"), (4999, 256, True, "fastgan"),
    (60_000, 28, False, "default"), (60_000, 512, False, "default"), (30_000, 512, True, "stylegan2"),
])
def test_the_preset_follows_count_size_and_device(count, side, gpu, preset):
    r = recommend(count, side, grey=False, num_classes=0, gpu=gpu)
    assert r.preset == preset and r.preset in PRESETS
    cfg = TrainConfig(**{**PRESETS[r.preset], **r.overrides}).validate()  # a config that trains
    assert cfg.resolution <= max(16, side) or cfg.resolution == 16  # never upscales the images
    assert f"{count:,}" in r.reason and r.reason.count(". ") <= 2


def test_resolution_is_capped_on_a_cpu_and_classes_suggest_conditioning():
    assert recommend(60_000, 1024, False, 0, gpu=False).overrides["resolution"] == 64
    assert recommend(60_000, 1024, False, 0, gpu=True).overrides["resolution"] == 256
    r = recommend(1432, 100, True, 5, gpu=False)
    assert r.overrides["conditional"] is True and "5 class folders" in r.reason and "greyscale" in r.reason
    assert "memorise" in r.reason and r.overrides["ada_target"] == 0.6
    assert r.as_cli().startswith("--preset fastgan --set resolution=64")


def test_from_a_scan_report(image_folder):
    from core.data.scan import scan
    r = recommend_for_scan(scan(image_folder), gpu=False)
    assert r.preset == "fastgan" and r.overrides["resolution"] == 16  # 12 images of 20 px


def test_cli_train_without_a_preset_prints_the_advice(image_folder, tmp_path, capsys):
    from core.cli import main
    code = main(["train", "--data", str(image_folder), "--resolution", "16", "--steps", "1", "--batch-size", "4",
                 "--runs-dir", str(tmp_path / "runs"), "--set", "g_width=8", "--set", "d_width=8",
                 "--set", "latent_dim=16", "--set", "threads=1", "--set", "eval_every=0", "--device", "cpu", "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    assert "Tip: 12 colour images" in err and "--preset fastgan" in err
