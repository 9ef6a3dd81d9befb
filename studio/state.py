"""Process-wide objects and small rendering helpers shared by the studio's pages.

Everything about a run lives on disk (the run folder) or in the process-wide JobManager held by
``st.cache_resource``; ``st.session_state`` only remembers what this browser tab was looking at.
"""
from __future__ import annotations

import html
import io
import math
import os
import time
from pathlib import Path
from typing import Any

import streamlit as st

from core.run_logs import HistoryCache
from core.runs import ACTIVE_STATES, RunInfo, load_run

ROOT = Path(__file__).resolve().parent.parent

PAGES_DIR = Path(__file__).resolve().parent / "pages"
PAGE_FILES = {"data": "data.py", "train": "train.py", "monitor": "monitor.py", "runs": "runs.py",
              "latent": "latent.py", "export": "export.py", "translate": "translate.py"}
REFRESH_S = 2.0          # live header (state, step, ETA): cheap
CHART_REFRESH_S = 4.0    # charts and samples: re-drawing plotly costs the browser CPU that training wants

# session_state keys (non-widget, so they survive page switches)
K_DATASET = "gs_dataset"          # folder path or built-in name chosen on the Data page
K_DATASET_INFO = "gs_dataset_info"  # {"channels": int, "num_classes": int, "count": int}
K_MONITOR_RUN = "gs_monitor_run"  # run folder shown on the Monitor page
K_FLASH = "gs_flash"              # one-shot message shown on the next page render


def runs_dir() -> Path:
    """The runs root: $GAN_STUDIO_RUNS_DIR (set by run_studio.py --runs-dir), default ./runs."""
    return Path(os.environ.get("GAN_STUDIO_RUNS_DIR") or "runs").expanduser().resolve()


def page_path(name: str) -> Path:
    return PAGES_DIR / PAGE_FILES[name]


def no_runs_notice() -> None:
    """The empty state of pages that list runs: say so, and offer the way to the Train page."""
    st.info("No runs yet — start one on the Train page.", icon=":material/rocket_launch:")
    if st.button("Go to Train", type="primary", icon=":material/arrow_forward:"):
        go("train")


def go(name: str, run: str | Path | None = None) -> None:
    """Switch to another page from the main script body (not from inside a fragment)."""
    if run is not None:
        st.session_state[K_MONITOR_RUN] = str(run)
        st.switch_page(page_path(name), query_params={"run": Path(run).name})
    st.switch_page(page_path(name))


# ------------------------------------------------------------------ process-wide objects
def _release_manager(jm: Any) -> None:
    try:
        jm.shutdown()
    except Exception:  # noqa: BLE001 - best effort at cache clear / exit
        pass


@st.cache_resource(show_spinner=False, on_release=_release_manager)
def _job_manager(root: str) -> Any:
    from core.jobs import JobManager

    return JobManager(root)


def job_manager() -> Any:
    """The one JobManager of this server for the current runs root."""
    return _job_manager(str(runs_dir()))


@st.cache_resource(show_spinner=False)
def histories() -> HistoryCache:
    """Incremental metrics/events readers shared by every session (one per run folder)."""
    return HistoryCache()


def active_job() -> Any | None:
    """The job this server is training (None when idle or when core.jobs is unavailable)."""
    try:
        job = job_manager().active()
    except Exception:  # noqa: BLE001 - a missing/broken job manager must not break a page
        return None
    if job is None or getattr(job, "state", "running") not in ACTIVE_STATES:
        return None
    return job


def same_run(a: Any, b: Any) -> bool:
    try:
        return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def run_info(path: str | Path) -> RunInfo:
    return load_run(path)


# ------------------------------------------------------------------ images
MAX_SHOWN_PIXELS = 16 << 20  # a sample grid is at most a few MP; more is not an image of ours to show
MAX_SHOWN_BYTES = 64 << 20


@st.cache_data(show_spinner=False, max_entries=256)
def _png_file(path: str, mtime: float, min_width: int) -> bytes | None:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SHOWN_BYTES + 1)
    except OSError:
        return None
    return upscale_png(data, min_width) if len(data) <= MAX_SHOWN_BYTES else None


def upscale_png(data: bytes, min_width: int) -> bytes | None:
    """Nearest-neighbour upscale so small grids (28-64 px tiles) stay crisp; None if not a PNG."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        # The header is read first: a file in a run folder claiming 30000 x 30000 px is refused
        # before any pixel is decoded (Pillow's bomb guard would raise, or warn and decode ~2.7 GB).
        if img.width * img.height > MAX_SHOWN_PIXELS:
            return None
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, MemoryError):
        return None
    if img.width >= min_width:
        return data
    # Upscale, but never past MAX_SHOWN_PIXELS (a 1 x 5000 px strip would otherwise grow 512-fold each way).
    s = int(math.ceil(min_width / max(1, img.width)))
    s = max(1, min(s, int(math.sqrt(MAX_SHOWN_PIXELS / max(1, img.width * img.height)))))
    if s == 1:
        return data
    img = img.resize((img.width * s, img.height * s), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def png_file(path: str | Path, min_width: int = 512) -> bytes | None:
    """PNG bytes of an image file, upscaled and cached by modification time."""
    p = Path(path)
    try:
        mtime = p.stat().st_mtime
    except OSError:
        return None
    return _png_file(str(p), mtime, min_width)


def show_png(data: bytes | None, caption: str | None = None, width: int | str = "stretch",
             missing: str = "No image yet.") -> None:
    if data is None:
        st.caption(missing)
        return
    st.image(data, caption=caption, output_format="PNG", width=width)


def to_png(obj: Any, min_width: int = 512, nrow: int | None = None) -> bytes | None:
    """PNG bytes from what a grid function may return: PNG bytes, a PIL image, a numpy array
    (HxW[xC] uint8) or a torch tensor (B,C,H,W batch or C,H,W grid)."""
    from PIL import Image

    if obj is None:
        return None
    if isinstance(obj, (bytes, bytearray)):
        return upscale_png(bytes(obj), min_width)
    if isinstance(obj, Image.Image):
        buf = io.BytesIO()
        obj.save(buf, format="PNG")
        return upscale_png(buf.getvalue(), min_width)
    try:
        import numpy as np
        import torch

        from core import imaging

        if isinstance(obj, torch.Tensor):
            if obj.dim() == 4:
                return upscale_png(imaging.grid_png(obj, nrow=nrow), min_width)
            arr = imaging.to_uint8(obj).numpy()
            arr = arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)
            return upscale_png(imaging.png_bytes(arr), min_width)
        if isinstance(obj, np.ndarray):
            return upscale_png(imaging.png_bytes(obj.astype(np.uint8)), min_width)
    except Exception:  # noqa: BLE001
        return None
    return None


# ------------------------------------------------------------------ messages & formatting
STATE_STYLE = {
    "starting": ("blue", ":material/hourglass_top:"),
    "running": ("green", ":material/play_arrow:"),
    "paused": ("orange", ":material/pause:"),
    "stopped": ("gray", ":material/stop:"),
    "finished": ("violet", ":material/check_circle:"),
    "failed": ("red", ":material/error:"),
    "diverged": ("red", ":material/trending_up:"),
    "interrupted": ("orange", ":material/link_off:"),
    "unknown": ("gray", ":material/help:"),
}


def run_progress(info: RunInfo) -> tuple[float, str | None]:
    """(fraction done, the budget in words or None if it has none) of a run, which ends at whichever
    of its steps and minutes comes first: the Monitor header and the Runs cards measure it alike."""
    cfg = info.config or {}
    total = info.total_steps
    minutes = float(cfg.get("minutes") or 0)
    frac = min(1.0, info.step / total) if total else 0.0
    if minutes > 0:
        frac = max(frac, min(1.0, float(info.status.get("elapsed_s") or 0) / (60 * minutes)))
    if info.state == "finished":
        frac = 1.0
    if minutes > 0 and (not total or total >= 10**6):  # an effectively unlimited step count: time binds
        return frac, f"{minutes:g} min"
    if total:
        return frac, f"{total:,}" + (f" / {minutes:g} min" if minutes > 0 else "")
    return frac, None


def state_badge(state: str) -> None:
    color, icon = STATE_STYLE.get(state, STATE_STYLE["unknown"])
    st.badge(state.capitalize(), icon=icon, color=color)


def state_label(state: str) -> str:
    color, icon = STATE_STYLE.get(state, STATE_STYLE["unknown"])
    return f":{color}-badge[{icon} {state.capitalize()}]"


def show_error(err: BaseException | str, prefix: str = "") -> None:
    """A readable error line, never a traceback."""
    msg = str(err) if not isinstance(err, BaseException) else (str(err) or type(err).__name__)
    st.error(f"{prefix}{msg}", icon=":material/error:")


def flash(message: str, kind: str = "success") -> None:
    st.session_state[K_FLASH] = (kind, message)


def show_flash() -> None:
    """Show a message left by the previous page (e.g. "Started run …") as a toast."""
    item = st.session_state.pop(K_FLASH, None)
    if item:
        kind, message = item
        st.toast(message, icon=":material/check_circle:" if kind == "success" else ":material/info:")


def fmt_num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 1000):
        return f"{int(v):,}"
    av = abs(v)
    if av != 0 and (av < 1e-3 or av >= 1e5):
        return f"{v:.2e}"
    return f"{v:.{digits}g}"


def fmt_ago(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return "—"
    d = time.time() - ts
    if d < 60:
        return "just now"
    if d < 3600:
        return f"{int(d // 60)} min ago"
    if d < 86400:
        return f"{int(d // 3600)} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def esc(s: Any) -> str:
    """Escape text for markdown (folder names may contain *, _ or [)."""
    out = html.escape(str(s), quote=False)
    for ch in "\\`*_[]#<>|$~":
        out = out.replace(ch, "\\" + ch)
    return out


def dataset_label(cfg: dict[str, Any] | None, meta: dict[str, Any] | None = None) -> str:
    data = (cfg or {}).get("data") or (meta or {}).get("dataset", {}).get("source") or "—"
    data = str(data)
    return Path(data).name if ("/" in data or os.sep in data) else data


def ddp_label(meta: dict[str, Any] | None) -> str | None:
    """"DDP ×2 (gloo)" for a run trained by several torchrun processes (config.json's ``distributed``)."""
    d = (meta or {}).get("distributed")
    if not isinstance(d, dict) or not isinstance(d.get("world_size"), int) or d["world_size"] < 2:
        return None
    return f"DDP ×{d['world_size']}" + (f" ({d['backend']})" if d.get("backend") else "")


def inject_css() -> None:
    """Small visual touches: tighter tiles, consistent image corners."""
    css = (ROOT / "assets" / "studio.css")
    try:
        text = css.read_text(encoding="utf-8")
    except OSError:
        return
    st.html(f"<style>{text}</style>")
