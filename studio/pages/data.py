"""Data page: choose an image folder (or a built-in dataset), scan it, see what will be trained on."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from studio import state

K_SOURCE = "data_source"        # widget: "Image folder" | "Built-in dataset"
K_FOLDER = "data_folder"        # widget: text input
K_BUILTIN = "data_builtin"      # widget: select box
K_RES = "data_resolution"       # widget: preview resolution
K_SCAN = "gs_scan"              # {"folder", "report", "events_at_scan"}
K_PREVIEW = "gs_preview"        # {(spec, res): png bytes}
K_RESCAN = "gs_rescan"          # set by the "Rescan" notice
SOURCES = ("Built-in dataset", "Image folder")
RESOLUTIONS = (16, 32, 64, 128, 256)


# ------------------------------------------------------------------ folder watching
class FolderWatch:
    """Counts files created, deleted or moved under a folder (watchdog observer thread)."""

    def __init__(self, folder: str):
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        self.folder = folder
        self.changes = 0
        self._lock = threading.Lock()
        watch = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):  # noqa: ANN001
                if event.event_type in ("created", "deleted", "moved") and not event.is_directory:
                    with watch._lock:
                        watch.changes += 1

        self.observer = Observer()
        self.observer.daemon = True
        self.observer.schedule(Handler(), folder, recursive=True)
        self.observer.start()

    def stop(self) -> None:
        try:
            self.observer.stop()
            self.observer.join(2)
        except Exception:  # noqa: BLE001
            pass


@st.cache_resource(show_spinner=False, max_entries=8, on_release=lambda w: w and w.stop())
def folder_watch(folder: str) -> FolderWatch | None:
    try:
        return FolderWatch(folder)
    except Exception:  # noqa: BLE001 - e.g. inotify watch limit reached: just no change notices
        return None


# ------------------------------------------------------------------ actions
def do_scan(folder: str) -> None:
    from core.data import DataError
    from core.data.cache import cached_scan
    from core.data.scan import scan_path

    try:
        path = scan_path(folder)
    except DataError as e:
        st.session_state.pop(K_SCAN, None)
        state.show_error(e)
        return
    resolved = str(path.resolve())
    watch = folder_watch(resolved)
    before = watch.changes if watch else 0
    bar = st.progress(0.0, text="Scanning…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"Checking images… {done:,} / {total:,}")

    try:
        report = cached_scan(path, progress=progress)
    except (DataError, OSError) as e:
        bar.empty()
        state.show_error(e)
        return
    bar.empty()
    st.session_state[K_SCAN] = {"folder": resolved, "report": report, "changes_at_scan": before}
    if report.usable >= 8:
        choose(resolved, channels=1 if report.grey else 3, num_classes=len(report.class_names),
               count=report.usable)


def choose(spec: str, channels: int = 0, num_classes: int = 0, count: int | None = None) -> None:
    """Remember the dataset for the Train page."""
    st.session_state[state.K_DATASET] = spec
    st.session_state[state.K_DATASET_INFO] = {"channels": channels, "num_classes": num_classes, "count": count}


def preview(spec: str, resolution: int, token: int = 0, n: int = 64, nrow: int = 16) -> None:
    """Grid of real images exactly as the trainer will see them (decoded, cropped, resized)."""
    from core.data import DataError, load_dataset

    cache = st.session_state.setdefault(K_PREVIEW, {})
    key = (spec, resolution, token, n, nrow)
    if key not in cache:
        try:
            with st.spinner(f"Decoding images at {resolution}×{resolution}…"):
                ds = load_dataset(spec, resolution)
        except (DataError, OSError, ValueError) as e:
            state.show_error(e)
            return
        cache.clear()
        cache[key] = {"png": state.to_png(ds.grid_sample(n, seed=0), min_width=nrow * 72, nrow=nrow),
                      "n": len(ds), "channels": ds.channels, "classes": list(ds.class_names)}
        if spec in _builtins():
            choose(spec, channels=ds.channels, num_classes=ds.num_classes, count=len(ds))
    item = cache[key]
    st.image(item["png"], output_format="PNG", width="stretch",
             caption=f"{min(n, item['n'])} random images of {item['n']:,} at {resolution}×{resolution} — what the "
                     "discriminator sees as “real”")


def _builtins() -> dict[str, str]:
    try:
        from core.data import BUILTIN_DATASETS
        return dict(BUILTIN_DATASETS)
    except Exception:  # noqa: BLE001
        return {"shapes": "procedural shapes"}


# ------------------------------------------------------------------ rendering
def stats_panel(report, grid=None) -> None:  # noqa: ANN001
    """Counts, then the real images (``grid()``) beside the size/mode/class/rejection details."""
    usable, rejected = report.usable, len(report.rejected)
    c = st.columns(5)
    c[0].metric("Usable images", f"{usable:,}", help="Images that decoded fully and will be trained on.")
    c[1].metric("Rejected", f"{rejected:,}", help="Image files that are broken, too small or unsupported.")
    c[2].metric("Ignored", f"{report.ignored:,}", help="Files that are not images (other extensions, hidden files).")
    c[3].metric("Classes", len(report.class_names) or "—",
                help="Subfolders with images become class labels (for conditional GANs).")
    c[4].metric("Duplicates", f"{report.duplicate_count:,}", help="Files whose exact bytes appear more than once.")
    if usable < 8:
        st.error(f"Only {usable} usable images — at least 8 are needed to train. "
                 "Add images to the folder, then press Rescan.", icon=":material/block:")
    elif usable < 500:
        st.info(f"{usable} images is a small dataset: the **small-dataset** preset on the Train page "
                "(DiffAugment + spectral norm) helps the discriminator not memorise them.",
                icon=":material/lightbulb:")
    for note in report.notes:
        st.caption(f":material/info: {note}")

    left, right = st.columns([3, 2], gap="large")
    with left:
        if grid is not None:
            grid()
        else:
            st.caption("Too few usable images to preview.")
    with right:
        st.markdown("##### Image sizes")
        if usable:
            (wmin, wmed, wmax), (hmin, hmed, hmax) = report.width_stats, report.height_stats
            st.dataframe(pd.DataFrame({"": ["width (px)", "height (px)"], "smallest": [wmin, hmin],
                                       "median": [wmed, hmed], "largest": [wmax, hmax]}),
                         hide_index=True, width="stretch")
            modes = ", ".join(f"{m} × {n:,}" for m, n in sorted(report.mode_counts.items(), key=lambda kv: -kv[1]))
            st.caption(f"Colour modes: {modes}" + (" — all greyscale, trained as 1 channel" if report.grey else ""))
        else:
            st.caption("No usable images.")
        st.markdown("##### Class folders")
        if report.class_names:
            counts = report.class_counts()
            st.dataframe(pd.DataFrame({"class": list(counts), "images": list(counts.values())}),
                         hide_index=True, width="stretch", height=min(240, 38 + 35 * len(counts)))
        else:
            st.caption("None — the images are unlabelled (put them in two or more subfolders to get "
                       "classes for a conditional GAN).")
        if report.rejected:
            rejected_table(report)


def rejected_table(report) -> None:  # noqa: ANN001
    from core.data.scan import display_path

    with st.expander(f"Rejected files ({len(report.rejected):,})", expanded=len(report.rejected) <= 20,
                     icon=":material/report:"):
        root = display_path(report.root)
        rows = []
        for r in report.rejected[:2000]:
            p = display_path(r.path)
            try:
                p = os.path.relpath(p, root)
            except ValueError:
                pass
            rows.append({"file": p, "reason": r.reason})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=min(400, 38 + 35 * len(rows)))
        if len(report.rejected) > 2000:
            st.caption(f"…and {len(report.rejected) - 2000:,} more.")


def change_notice(folder: str, at_scan: int) -> None:
    watch = folder_watch(folder)
    if watch is None:
        return
    changed = watch.changes - at_scan
    if changed > 0:
        with st.container(border=True):
            c1, c2 = st.columns([5, 1], vertical_alignment="center")
            c1.warning(f"The folder changed since the scan ({changed} file{'s' if changed != 1 else ''} "
                       "added, removed or renamed).", icon=":material/sync_problem:")
            if c2.button("Rescan", key="rescan", type="primary", width="stretch"):
                st.session_state[K_RESCAN] = True
                st.rerun()


def page_body() -> None:
    st.title("Data")
    st.caption("Pick the images your GAN will learn to imitate. Scanning decodes every file, so broken "
               "images are caught here rather than in the middle of training.")
    state.show_flash()
    builtins = _builtins()
    chosen = st.session_state.get(state.K_DATASET, "shapes")

    if K_SOURCE not in st.session_state:
        st.session_state[K_SOURCE] = SOURCES[0] if chosen in builtins else SOURCES[1]
    if K_FOLDER not in st.session_state:
        st.session_state[K_FOLDER] = "" if chosen in builtins else chosen
    if K_BUILTIN not in st.session_state:
        st.session_state[K_BUILTIN] = chosen if chosen in builtins else "shapes"

    with st.container(border=True):
        source = st.segmented_control("Source", SOURCES, key=K_SOURCE, required=True,
                                      help="Your own folder of images, or a dataset that ships with the studio.")
        if source == "Image folder":
            c1, c2 = st.columns([5, 1], vertical_alignment="bottom")
            folder = c1.text_input("Image folder", key=K_FOLDER, placeholder="/home/me/pictures/cats",
                                   help="A folder of png/jpg/webp/bmp/gif/tiff images, searched recursively. "
                                        "Two or more subfolders become class labels.")
            scan_clicked = c2.button("Scan", type="primary", width="stretch", icon=":material/search:",
                                     disabled=not folder.strip())
        else:
            c1, c2 = st.columns([2, 3])
            name = c1.selectbox("Built-in dataset", list(builtins), key=K_BUILTIN,
                                help="Datasets that need no folder. 'shapes' is generated offline in seconds "
                                     "and learns in minutes: a good first run.")
            c2.markdown(f"<div style='padding-top:1.9rem'>{state.esc(builtins.get(name, ''))}</div>",
                        unsafe_allow_html=True)
            scan_clicked = False

    if source == "Image folder":
        folder = st.session_state.get(K_FOLDER, "").strip()
        if scan_clicked or st.session_state.pop(K_RESCAN, False):
            do_scan(folder)
        scan = st.session_state.get(K_SCAN)
        if scan is None:
            st.info("Type the path of a folder of images and press **Scan**. Every file is decoded once to catch "
                    "truncated or unreadable images.", icon=":material/folder:")
            return
        if folder and Path(os.path.expanduser(folder)).resolve() != Path(scan["folder"]):
            st.caption(f"Showing the last scan of `{scan['folder']}` — press Scan to check the new folder.")
        st.fragment(run_every=3.0)(change_notice)(scan["folder"], scan["changes_at_scan"])
        report = scan["report"]
        st.subheader(Path(scan["folder"]).name or scan["folder"], divider="gray")

        def grid() -> None:
            st.markdown("##### Real images")
            res = resolution_slider()
            preview(scan["folder"], res, token=id(report), n=32, nrow=8)
            ready(scan["folder"])

        stats_panel(report, grid if report.usable >= 8 else None)
    else:
        st.subheader(name, divider="gray")
        c1, _ = st.columns([1, 2])
        with c1:
            res = resolution_slider()
        preview(name, res)
        ready(name)


def cache_panel() -> None:
    """How much disk the decoded-image cache uses, its limit, and a way to empty it."""
    from core.data.cache import default_cache_dir
    from core.data.cache_evict import MAX_GB_ENV, cache_entries, clear, entries_dir, max_cache_bytes
    from core.units import human_bytes

    d = default_cache_dir()
    every = cache_entries(d)  # only entries the cache wrote: other files in the folder are never touched
    entries = [e for e in every if e.kind == "dataset"]
    total = sum(e.bytes for e in every)
    limit = max_cache_bytes()
    with st.expander(f"Decoded-image cache · {len(entries)} dataset(s), {human_bytes(total)}", expanded=False,
                     icon=":material/database:"):
        st.caption(f"Every dataset is decoded once into `{state.esc(str(entries_dir(d)))}` so later runs start "
                   "in seconds. "
                   + (f"When it would grow past {human_bytes(limit)}, the least recently used entries are removed "
                      f"(set {MAX_GB_ENV} to change the limit). " if limit else "No size limit is set. ")
                   + "Clearing it is safe: a dataset is decoded again the next time it is used.")
        if entries:
            st.dataframe([{"source": e.source or "?", "contents": e.detail, "size": human_bytes(e.bytes),
                           "last used": time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))}
                          for e in reversed(entries)], hide_index=True, width="stretch")
        if st.button("Clear the cache", icon=":material/delete_sweep:", disabled=not total, key="cache_clear"):
            _, failed = clear(d)  # entries another program holds open (Windows) are kept
            state.flash(f"Cache cleared ({human_bytes(total)})" + (f"; {failed} entries in use were kept" if failed else ""))
            st.rerun()


def resolution_slider() -> int:
    if K_RES not in st.session_state:  # (re)created after a run that did not draw it: keep the choice
        st.session_state[K_RES] = int(st.session_state.get("gs_resolution", 32))
    res = st.select_slider("Preview resolution", RESOLUTIONS, key=K_RES, format_func=lambda r: f"{r} px",
                           help="Images are centre-cropped to a square and resized to this size for training; "
                                "the Train page starts with the same value.")
    st.session_state["gs_resolution"] = int(res)
    return int(res)


def ready(spec: str) -> None:
    if st.session_state.get(state.K_DATASET) != spec:
        return
    c1, c2 = st.columns([3, 2], vertical_alignment="center")
    c1.success(f"**{state.esc(Path(spec).name or spec)}** is selected for training.", icon=":material/check:")
    if c2.button("Continue to Train", type="primary", icon=":material/arrow_forward:", width="stretch"):
        state.go("train")


def main() -> None:
    page_body()
    cache_panel()


main()
