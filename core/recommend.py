"""Pick for me: a preset (and resolution) for a dataset from its scan facts, with the reason in one sentence."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Below this many images a DCGAN's discriminator memorises the training set within a few thousand
# steps (issue #16: a 1,432-image folder set off the overfitting finding near step 3,000).
SMALL = 5_000
TOO_FEW = 100


@dataclass(frozen=True)
class Recommendation:
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def as_cli(self) -> str:
        sets = " ".join(f"--set {k}={v}" for k, v in self.overrides.items())
        return f"--preset {self.preset}" + (f" {sets}" if sets else "")


def _resolution(short_side: int, gpu: bool) -> int:
    """The largest power of two the images can fill (no upscaling), capped where a CPU stops being practical."""
    cap = 256 if gpu else 64
    r = 16
    while r * 2 <= min(short_side, cap):
        r *= 2
    return r


def recommend(count: int, short_side: int, grey: bool, num_classes: int, gpu: bool) -> Recommendation:
    """The preset a careful practitioner would start from for ``count`` images whose median short side
    is ``short_side`` px; ``gpu``: a CUDA/MPS device will train it."""
    res = _resolution(short_side or 32, gpu)
    over: dict[str, Any] = {"resolution": res}
    colour = "greyscale" if grey else "colour"
    cond = ""
    if num_classes >= 2:
        over["conditional"] = True
        cond = f" Its {num_classes} class folders allow class control (conditional=true)."
    n = f"{count:,} {colour} images"
    if count < TOO_FEW:
        return Recommendation("fastgan", {**over, "ada_target": 0.6},
                              f"{n} is very few: fastgan with adaptive augmentation memorises least, but expect "
                              f"near-copies of your images; a few hundred more would help most.{cond}")
    if count < SMALL:
        return Recommendation("fastgan", {**over, "ada_target": 0.6},
                              f"{n}: fastgan with adaptive augmentation (ADA); a DCGAN's discriminator would "
                              f"memorise a folder this small within a few thousand steps.{cond}")
    if gpu and res >= 64:
        return Recommendation("stylegan2", over,
                              f"{n} at {res} px on a GPU: stylegan2, the best quality per hour at this size.{cond}")
    return Recommendation("default", over,
                          f"{n} at {res} px: the default DCGAN recipe trains fastest per image on "
                          f"{'this GPU' if gpu else 'a CPU'} and has enough data not to memorise it.{cond}")


def recommend_for_scan(report, gpu: bool) -> Recommendation:
    """``recommend`` from a core.data ScanReport (median width/height, greyscale flag, class folders)."""
    short = min(report.width_stats[1], report.height_stats[1])
    return recommend(report.usable, short, report.grey, len(report.class_names), gpu)
