"""#19 finding 10: a tiny file with an extreme aspect ratio must not decode into gigabytes."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.data.decode import load_image


@pytest.fixture
def pixel_budget(monkeypatch):
    """Every image Pillow's resize/crop produces, by area: the decode's peak work."""
    areas: list[int] = []
    real_resize, real_crop = Image.Image.resize, Image.Image.crop

    def resize(self, size, *a, **k):
        areas.append(size[0] * size[1])
        return real_resize(self, size, *a, **k)

    def crop(self, box=None):
        if box is not None:
            areas.append(int((box[2] - box[0]) * (box[3] - box[1])))
        return real_crop(self, box)
    monkeypatch.setattr(Image.Image, "resize", resize)
    monkeypatch.setattr(Image.Image, "crop", crop)
    return areas


def test_a_one_pixel_high_strip_decodes_to_the_output_size_only(tmp_path, pixel_budget):
    # 35 KB on disk; scaled short side first it was 256 x 2,560,000 px (~2 GB RGB) before the crop.
    p = tmp_path / "strip.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1, 10_000, 3), dtype=np.uint8)).save(p)
    a = load_image(p, 256, 3)
    assert a.shape == (3, 256, 256)
    assert max(pixel_budget) <= 256 * 256, max(pixel_budget)


def test_centre_crop_then_resize_keeps_the_centre_square(tmp_path):
    # Left third black, middle third white, right third black: the centre square is white.
    a = np.zeros((30, 90), dtype=np.uint8)
    a[:, 30:60] = 255
    p = tmp_path / "wide.png"
    Image.fromarray(a).save(p)
    out = load_image(p, 16, 1)
    # The filter may reach a source pixel past the box (as a scale-then-crop does): edges blend a little.
    assert out.shape == (1, 16, 16) and out[:, :, 1:-1].min() >= 250 and out.min() >= 230


def test_tiny_and_exact_size_images(tmp_path):
    for size, res in (((1, 1), 16), ((16, 16), 16), ((17, 16), 16), ((40, 16), 16)):
        p = tmp_path / f"im{size[0]}x{size[1]}.png"
        Image.new("RGB", size, (200, 10, 10)).save(p)
        out = load_image(p, res, 3)
        assert out.shape == (3, res, res)
        assert abs(int(out[0].mean()) - 200) <= 2 and abs(int(out[1].mean()) - 10) <= 2
