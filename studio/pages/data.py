"""Data page: choose an image folder (or a built-in dataset), scan it, see what will be trained on."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from studio import folder_poll, state, ui_state
from studio.tables import long_text_table
from studio.translate_panel import layout_for, translate_panel
from studio.upload_panel import upload_panel

K_SOURCE = "data_source"        # widget: "Image folder" | "Built-in dataset"
K_FOLDER = "data_folder"        # widget: text input
K_BUILTIN = "data_builtin"      # widget: select box
K_RES = "data_resolution"       # widget: preview resolution
K_SCAN = "gs_scan"              # {"folder", "report", "events_at_scan"}
K_PREVIEW = "gs_preview"        # {(spec, res): png bytes}
K_RESCAN = "gs_rescan"          # set by the "Rescan" notice
SOURCES = ("Built-in dataset", "Image folder")
RESOLUTIONS = (16, 32, 64, 128, 256)


# ------------------------------------------------------------------ actions
def _not_watched() -> list[str]:
    """Folders the change check never walks into: what the studio itself writes while a run trains."""
    from core.data.cache import default_cache_dir

    return [str(state.runs_dir()), str(default_cache_dir())]


def do_scan(folder: str) -> None:
    """Look at a folder: the scan report only. Nothing is selected for training or decoded into the
    cache until "Use for training" (a mistaken scan of a parent folder used to do both)."""
    from core.data import DataError
    from core.data.cache import cached_scan
    from core.data.scan import scan_path

    if not folder:
        st.session_state.pop(K_SCAN, None)
        st.warning("Type the path of a folder of images first.", icon=":material/edit:")
        return
    try:
        path = scan_path(folder)
    except DataError as e:
        st.session_state.pop(K_SCAN, None)
        state.show_error(e)
        return
    resolved = str(path.resolve())
    snap = folder_poll.snapshot(resolved, skip=_not_watched())  # before the scan: changes during it count
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
    st.session_state[K_SCAN] = {"folder": resolved, "report": report, "snap": snap, "latest": snap}
    ui_state.update(scanned=resolved)


def use_folder(folder: str, report, resolution: int) -> None:  # noqa: ANN001
    """Select a scanned folder for training: decode it into the cache now (with progress), so Start
    does not, and so the Train page knows its channels, classes and size."""
    from core.data import DataError, load_dataset

    bar = st.progress(0.0, text="Decoding images into the cache…")

    def progress(done: int, total: int, phase: str = "decode") -> None:
        bar.progress(min(1.0, done / total) if total else 1.0,
                     text=f"{'Decoding' if phase == 'decode' else 'Checking'} images… {done:,} / {total:,}")

    try:
        ds = load_dataset(folder, resolution, progress=progress)
    except (DataError, OSError, ValueError) as e:
        bar.empty()
        state.show_error(e, prefix="Not selected: ")
        return
    bar.empty()
    choose(folder, channels=ds.channels, num_classes=len(report.class_names), count=len(ds))
    state.flash(f"**{state.esc(Path(folder).name)}** is selected for training ({len(ds):,} images decoded at "
                f"{resolution}×{resolution}).")
    st.rerun()


def choose(spec: str, channels: int = 0, num_classes: int = 0, count: int | None = None) -> None:
    """Remember the dataset for the Train page (and across a browser reload)."""
    info = {"channels": channels, "num_classes": num_classes, "count": count}
    st.session_state[state.K_DATASET] = spec
    st.session_state[state.K_DATASET_INFO] = info
    ui_state.update(dataset=spec, dataset_info=info, resolution=st.session_state.get("gs_resolution"))


def _folder_grid(report, resolution: int, n: int):  # noqa: ANN001, ANN202
    """n of the scan's usable images decoded as training would (no cache: looking writes nothing)."""
    import numpy as np
    import torch

    from core.data.decode import load_image

    g = torch.Generator().manual_seed(0)
    idx = sorted(torch.randperm(report.usable, generator=g)[:min(n, report.usable)].tolist())
    channels = 1 if report.grey else 3
    return torch.from_numpy(np.stack([load_image(report.images[i].path, resolution, channels) for i in idx]))


def preview(spec: str, resolution: int, token: int = 0, n: int = 64, nrow: int = 16, report=None) -> None:  # noqa: ANN001
    """Grid of real images exactly as the trainer will see them (decoded, cropped, resized). A folder's
    comes from its scan ``report`` (n files decoded); a built-in dataset's from the dataset itself."""
    from core.data import DataError, load_dataset

    cache = st.session_state.setdefault(K_PREVIEW, {})
    key = (spec, resolution, token, n, nrow)
    if key not in cache:
        try:
            with st.spinner(f"Decoding images at {resolution}×{resolution}…"):
                if report is not None:
                    grid, count, channels = _folder_grid(report, resolution, n), report.usable, 0
                else:
                    ds = load_dataset(spec, resolution)
                    grid, count, channels = ds.grid_sample(n, seed=0), len(ds), ds.channels
                    num_classes = ds.num_classes
        except (DataError, OSError, ValueError) as e:
            state.show_error(e)
            return
        cache.clear()
        cache[key] = {"png": state.to_png(grid, min_width=nrow * 72, nrow=nrow), "n": count,
                      "channels": channels, "classes": num_classes if report is None else 0}
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
        if getattr(report, "file_notes", None):
            rejected_table(report, notes=True)


def rejected_table(report, notes: bool = False) -> None:  # noqa: ANN001
    """Rejected files and why; with ``notes``, usable files with a note (e.g. only the first frame used)."""
    from core.data.scan import shown_path

    items, what = (report.file_notes, "note") if notes else (report.rejected, "reason")
    with st.expander(f"{'Files with notes' if notes else 'Rejected files'} ({len(items):,})",
                     expanded=len(items) <= 20, icon=":material/info:" if notes else ":material/report:"):
        root = shown_path(report.root)  # shown_path: a newline in a name is shown as \n
        rows = []
        for r in items[:2000]:
            p = shown_path(r.path)
            try:
                p = os.path.relpath(p, root)
            except ValueError:
                pass
            rows.append({"file": p, what: getattr(r, what)})
        long_text_table(rows, "data_notes_wrap" if notes else "data_rejected_wrap", min(400, 38 + 35 * len(rows)))
        if len(items) > 2000:
            st.caption(f"…and {len(items) - 2000:,} more.")


def change_notice(folder: str) -> None:
    """Poll (one stat per folder of the tree) whether files were added, removed or renamed since the
    scan. Runs only in the Data page's fragment, for the folder it shows: leaving the page or scanning
    another folder ends it; a folder too large to walk is not polled at all."""
    scan = st.session_state.get(K_SCAN)
    if not scan or scan["folder"] != folder or scan.get("snap") is None:
        return
    latest = scan["latest"]
    if folder_poll.changed(latest):  # walk again only when a folder changed since the last walk
        now = folder_poll.snapshot(folder, skip=_not_watched())
        if now is None:  # it grew past the limit: stop watching
            scan["snap"] = scan["latest"] = None
            st.caption(f":material/visibility_off: Changes to this folder are no longer watched: more than "
                       f"{folder_poll.LIMIT:,} files.")
            return
        scan["latest"] = latest = now
    if latest is not scan["snap"] and latest != scan["snap"]:
        with st.container(border=True):
            c1, c2 = st.columns([5, 1], vertical_alignment="center")
            c1.warning(f"The folder changed since the scan ({folder_poll.describe(scan['snap'], latest)}).",
                       icon=":material/sync_problem:")
            if c2.button("Rescan", key="rescan", type="primary", width="stretch"):
                st.session_state[K_RESCAN] = True
                st.rerun()


def watch_notice(scan: dict) -> None:
    if scan.get("snap") is not None:
        st.fragment(run_every=folder_poll.POLL_S)(change_notice)(scan["folder"])
        return
    r = scan["report"]
    files = r.usable + len(r.rejected) + r.ignored
    st.caption(f":material/visibility_off: Changes to this folder are not watched: {files:,} files "
               f"(more than {folder_poll.LIMIT:,}). Press Scan again after changing it.")


def scan_box() -> bool:
    """Path box and Scan button in one form: Enter or one click scans with the text as typed (a
    plain text box committed its text on the first click, which a disabled button then swallowed)."""
    with st.form("scan_form", border=False, enter_to_submit=True):
        c1, c2 = st.columns([5, 1], vertical_alignment="bottom")
        c1.text_input("Image folder", key=K_FOLDER, placeholder="/home/me/pictures/cats",
                      help="A folder of png/jpg/webp/bmp/gif/tiff images, searched recursively. "
                           "Two or more subfolders become class labels.")
        return c2.form_submit_button("Scan", type="primary", width="stretch", icon=":material/search:")


def page_body() -> None:
    st.title("Data")
    st.caption("Pick the images your GAN will learn to imitate. Scanning decodes every file, so broken "
               "images are caught here rather than in the middle of training; nothing is used for "
               "training until you say so.")
    ui_state.restore()  # after a browser reload: the dataset chosen before it
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
            scan_clicked = scan_box()
            upload_panel(K_FOLDER, K_RESCAN)
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
            if chosen not in builtins:
                st.success(f"**{state.esc(Path(chosen).name or chosen)}** is selected for training. Press "
                           "**Scan** to see its report again.", icon=":material/check:")
            st.info("Type the path of a folder of images and press **Scan** (or Enter). Every file is decoded "
                    "once to catch truncated or unreadable images.", icon=":material/folder:")
            return
        if folder and Path(os.path.expanduser(folder)).resolve() != Path(scan["folder"]):
            st.caption(f"Showing the last scan of `{scan['folder']}` — press Scan to check the new folder.")
        watch_notice(scan)
        report = scan["report"]
        st.subheader(Path(scan["folder"]).name or scan["folder"], divider="gray")
        res = int(st.session_state.get(K_RES, st.session_state.get("gs_resolution", 32)))
        if (lay := layout_for(scan["folder"], report)) is not None:  # A/B or AB folders: pix2pix / cyclegan
            translate_panel(scan["folder"], lay, res, choose)
        elif report.usable >= 8:  # at the top: the choice the page exists for, not below the grid
            ready(scan["folder"], report, res)

        def grid() -> None:
            st.markdown("##### Real images")
            res = resolution_slider()
            preview(scan["folder"], res, token=id(report), n=32, nrow=8, report=report)

        stats_panel(report, grid if report.usable >= 8 else None)
    else:
        st.subheader(name, divider="gray")
        c1, _ = st.columns([1, 2])
        with c1:
            res = resolution_slider()
        preview(name, res)
        ready(name, None, res)


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


def ready(spec: str, report, resolution: int) -> None:  # noqa: ANN001
    """"Use for training" (decodes a folder into the cache), or, once chosen, the way to the Train page."""
    c1, c2 = st.columns([3, 2], vertical_alignment="center")
    shown = state.esc(Path(spec).name or spec)
    if st.session_state.get(state.K_DATASET) != spec:
        chosen = st.session_state.get(state.K_DATASET)
        c1.caption(f"Looking only: training uses **{state.esc(Path(chosen).name or chosen)}** until you choose this "
                   "one." if chosen else "Looking only: nothing is selected for training yet.")
        if c2.button("Use for training", type="primary", icon=":material/check:", width="stretch", key="use",
                     help="Select this dataset on the Train page" + (
                         f" and decode its images into the cache now, at {resolution}×{resolution}."
                         if report is not None else ".")):
            if report is not None:
                use_folder(spec, report, resolution)
            else:
                item = next(iter(st.session_state.get(K_PREVIEW, {}).values()), {})
                choose(spec, channels=item.get("channels", 0), num_classes=item.get("classes", 0),
                       count=item.get("n"))
                st.rerun()
        return
    c1.success(f"**{shown}** is selected for training.", icon=":material/check:")
    if c2.button("Continue to Train", type="primary", icon=":material/arrow_forward:", width="stretch"):
        state.go("train")


def main() -> None:
    page_body()
    cache_panel()


main()
