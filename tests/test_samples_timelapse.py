"""core.samples_timelapse: the fixed-noise grids of a run as one bounded, labelled GIF."""
from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from core.imaging import grid_png
from core.samples_timelapse import enlarge_scale, pick_frames, tile_px, timelapse_gif


def _grids(tmp_path, n: int, res: int = 16) -> list[tuple[int, str]]:
    out = []
    for i in range(n):
        p = tmp_path / f"step_{i * 10:07d}.png"
        p.write_bytes(grid_png(torch.full((64, 3, res, res), -1.0 + 2 * i / max(1, n - 1)), nrow=8))
        out.append((i * 10, str(p)))
    return out


def test_pick_frames_is_bounded_and_keeps_first_and_last():
    assert pick_frames(5, 48) == [0, 1, 2, 3, 4]
    idx = pick_frames(1000, 48)
    assert len(idx) == 48 and idx[0] == 0 and idx[-1] == 999 and idx == sorted(set(idx))
    assert pick_frames(0) == []
    with pytest.raises(ValueError, match="max_frames"):
        pick_frames(10, 1)


def test_tile_size_of_a_sample_grid():
    w = Image.open(io.BytesIO(grid_png(torch.zeros(64, 3, 32, 32), nrow=8))).width
    assert tile_px(w) == 32 and enlarge_scale(w) == 2  # 32-px tiles shown at 64 px
    assert enlarge_scale(w, max_width=300) == 1


def test_timelapse_gif_frames_sizes_and_unreadable_files(tmp_path):
    grids = _grids(tmp_path, 60)
    (tmp_path / "step_0000050.png").write_bytes(b"torn")  # skipped, not fatal
    data = timelapse_gif(grids, max_frames=10, hold_last=2)
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF"
    assert gif.n_frames <= 10 + 2 and gif.n_frames >= 3
    assert gif.width >= 8 * 64  # 16-px tiles upscaled to >= 64 px
    grid_w = 8 * 18 + 2  # 16-px tiles, 2 px apart; the step label sits above the grid
    s = gif.width // grid_w
    inside_first_tile = (10 * s, gif.height - grid_w * s + 10 * s)
    gif.seek(0)
    first = gif.convert("RGB").getpixel(inside_first_tile)
    gif.seek(gif.n_frames - 1)
    last = gif.convert("RGB").getpixel(inside_first_tile)
    assert first[0] < 60 and last[0] > 200  # oldest first: black grid to white grid


def test_timelapse_without_grids_says_so(tmp_path):
    with pytest.raises(ValueError, match="no sample grids"):
        timelapse_gif([])
    bad = tmp_path / "step_0000000.png"
    bad.write_bytes(b"x")
    with pytest.raises(ValueError, match="could be read"):
        timelapse_gif([(0, str(bad))])
