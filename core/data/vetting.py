"""Rules for usable image shapes, and the note for a file with several frames (used by the scan)."""
from __future__ import annotations

# A fixed rule, not one relative to the training resolution, so the scan's counts (cached, shown before a
# resolution is chosen) are what every run trains on. Runs train at 16 px or more: a short side under 8 px
# is under 64 px of picture blown up 2x or more into a few blocks, and in a real folder such a file is an
# icon, a spacer or a 1x1 tracking pixel. (The 8x8 files of benchmarks/reliability_load.py stay usable.)
MIN_SIDE = 8
# Training keeps the centre square: past 4:1 (wider than 32:9 screenshots) that keeps under a quarter of
# the picture, and a 10000 x 10 strip would train as a 10 x 10 sliver blown up.
MAX_ASPECT = 4


def shape_problem(w: int, h: int) -> str | None:
    """Why training's centre square of a w x h px image would not be the picture (None: it would)."""
    short, long = min(w, h), max(w, h)
    if short < MIN_SIDE:
        return f"too small: {w}x{h} px; at least {MIN_SIDE} px on the short side"
    if long > MAX_ASPECT * short:
        return (f"extreme aspect ratio: {w}x{h} px ({long / short:.0f}:1); the centre square would keep "
                f"{100 * short / long:.1f} % of it, at most {MAX_ASPECT}:1 is used")
    return None


def frames_note(frames: int) -> str:
    """The scan's note for a usable file with ``frames`` frames (-1: a later frame could not be read)."""
    if frames < 0:
        return "several frames, a later one damaged; the first is used"
    return f"{frames} frames; the first is used"
