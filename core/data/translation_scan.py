"""Whether a scanned folder is also an image-translation layout (paired A/B, side-by-side AB, unpaired A/B)."""
from __future__ import annotations

import os

from .errors import DataError


def find_layout(folder: str | os.PathLike):  # noqa: ANN201 - core.translate.data.Layout | None
    """The translation layout of ``folder``, or None when it is a plain image folder.

    A/ + B/ (or trainA/ + trainB/) sharing file names is paired (pix2pix), sharing none is unpaired
    (cyclegan). Side-by-side AB images count only when most images of the folder are twice as wide
    as high, so a folder of a few wide photos is not called a pix2pix dataset."""
    from ..translate.data import SIDE_PAIRS, detect_layout
    from .scan import scan_path

    try:
        root = scan_path(folder)
    except DataError:
        return None
    if any((root / a).is_dir() and (root / b).is_dir() for a, b in SIDE_PAIRS):
        try:
            return detect_layout(root, "pix2pix")
        except DataError:  # no shared names (or an empty side): unpaired, or nothing
            try:
                return detect_layout(root, "cyclegan")
            except DataError:
                return None
    try:
        lay = detect_layout(root, "pix2pix")
    except DataError:
        return None
    return lay if len(lay.pairs) > len(lay.rejected) else None


def layout_report(lay) -> str:  # noqa: ANN001
    """Lines for the terminal: the summary, the task it suits, unmatched names and notes."""
    task = "pix2pix" if lay.paired else "cyclegan"
    lines = [f"translation layout: {lay.summary()} -> task={task}"]
    for side, names in (("A", lay.unmatched_a), ("B", lay.unmatched_b)):
        if names:
            more = f" (+{len(names) - 10} more)" if len(names) > 10 else ""
            lines.append(f"  unmatched in {side}: {', '.join(names[:10])}{more}")
    lines += [f"  note: {n}" for n in lay.notes]
    return "\n".join(lines)
