"""A bounded change check of a scanned folder, polled by the Data page: one stat per folder of the tree.

It replaces a recursive watchdog observer per scanned folder, which on a large tree kept a core busy
for as long as the server ran (inotify queue overflows, re-walks). A poll has no thread to leak: it
runs only while the Data page's fragment runs, for the one folder that page shows, and not at all on
a tree too large to walk cheaply.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from core.data.scan import IMAGE_EXTENSIONS

LIMIT = 20_000      # files of any kind: above this a walk every few seconds is no longer cheap
POLL_S = 20.0       # the Data page's fragment schedule: each run of it costs Streamlit a full gc.collect()


@dataclass(frozen=True)
class Snapshot:
    images: int                              # files with an image extension
    folders: tuple[tuple[str, int], ...]     # (path, mtime_ns) of every folder walked


def _skip(name: str) -> bool:  # what core.data.scan.list_folder never looks at
    return name.startswith(".") or name == "__MACOSX"


def snapshot(folder: str, skip: Iterable[str] = (), limit: int | None = None) -> Snapshot | None:
    """Count the image files and note every folder's mtime; None above ``limit`` files (or folders):
    the folder is then not watched.

    ``skip``: folders never to walk into (the runs root and the dataset cache, whose files change
    while a run trains but are not the user's images). Follows symlinks like the scan, each real
    folder once; unreadable entries are left out, as the scan reports them itself."""
    limit = LIMIT if limit is None else limit
    skipped = {os.path.realpath(s) for s in skip}
    seen: set[str] = set()
    folders: list[tuple[str, int]] = []
    images = entries = 0
    todo = [folder]
    while todo:
        d = todo.pop()
        real = os.path.realpath(d)
        if real in seen or real in skipped:
            continue
        seen.add(real)
        try:
            folders.append((d, os.stat(d).st_mtime_ns))
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                if _skip(e.name):
                    continue
                try:
                    if e.is_dir():
                        todo.append(e.path)
                        if len(todo) + len(folders) > limit:
                            return None
                        continue
                    entries += 1
                    if entries > limit:
                        return None
                    if os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS:
                        images += 1
                except OSError:
                    continue
    return Snapshot(images, tuple(folders))


def changed(snap: Snapshot) -> bool:
    """Whether a file was added, removed or renamed since ``snap``: each of those changes the mtime of
    the folder that holds it, so one stat per folder (not per file) tells. Cheap enough for a poll."""
    for path, mtime in snap.folders:
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return True
        except OSError:
            return True
    return False


def describe(before: Snapshot, now: Snapshot) -> str:
    """What changed, in words, for the "changed since the scan" notice."""
    d = now.images - before.images
    if d > 0:
        return f"{d:,} image file{'s' if d != 1 else ''} added"
    if d < 0:
        return f"{-d:,} image file{'s' if d != -1 else ''} removed"
    return "files added, removed or renamed"
