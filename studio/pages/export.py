"""Export page: write a run's generator (or translator) as a safetensors bundle, torch.export, ONNX or TorchScript
(with a model card) into RUN_DIR/exports/, and download it. Thin over core.export."""
from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import streamlit as st

from core.export import ALL_FORMAT_HELP, EXTENSIONS, export_generator, onnx_status
from core.runs import RunInfo
from studio import state
from studio.pickers import run_and_checkpoint

K = "exp_"
K_FMT, K_DONE = K + "format", K + "done"  # run/checkpoint keys: K + "run", K + "ckpt" (studio.pickers)
# In the order we recommend them: torch.export is the PyTorch-native format now that TorchScript is
# deprecated upstream; TorchScript stays for old deployments (generators only: translators refuse it).
FORMATS = ("safetensors", "torch-export", "onnx", "torchscript")
TRANSLATOR_FORMATS = ("safetensors", "torch-export", "onnx")
FORMAT_LABELS = {"safetensors": "safetensors bundle", "torch-export": "torch.export (.pt2)", "torchscript": "TorchScript",
                 "onnx": "ONNX"}
MIME = {k: "application/octet-stream" for k in FORMATS}


def is_translator(run: RunInfo) -> bool:
    return run.config.get("task", "generate") in ("pix2pix", "cyclegan")


def pick_run() -> tuple[RunInfo, Path] | None:
    return run_and_checkpoint(
        K, "No runs yet in `{root}`. Train one on the **Train** page (or with `python -m core train`), "
           "then export its generator (or translator) here.",
        "Any run folder under the runs root; exports are written to its exports/ folder.",
        lambda info: f"**{state.esc(info.name)}** has no checkpoint yet: there is nothing to export until the "
                     "first one is saved.")


def _zip(files: list[Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            zf.write(p, arcname=p.name)
    return buf.getvalue()


def _demote_headings(md: str, by: int = 3) -> str:
    """Shrink the card's headings so they sit inside the page (# -> ####), leaving code blocks alone."""
    out, in_code = [], False
    for line in md.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            line = "#" * by + line
        out.append(line)
    return "\n".join(out)


def _read(p: Path) -> bytes | None:
    try:
        return p.read_bytes()
    except OSError:
        return None


def show_result(res: dict) -> None:
    """Downloads and the model card of the last export (paths kept in session_state, files read from disk)."""
    main_path = Path(res["path"])
    files = [Path(p) for p in res["files"]]
    try:
        size = main_path.stat().st_size
    except OSError:
        st.warning(f"`{main_path}` is gone (deleted or moved since it was exported). Export again.")
        return
    extra = f" · max difference from PyTorch {res['parity']:.1e}" if res.get("parity") is not None else ""
    st.success(f"Exported step {res['step']:,} as {FORMAT_LABELS[res['fmt']]} to `{main_path}` "
               f"({size / 1024:,.0f} KiB){extra}.", icon=":material/check_circle:")
    for n in res.get("notes", []):
        st.info(n)
    # A wrapping row of buttons sized to their labels: three equal columns cut them at 1024 px.
    row = st.container(horizontal=True, gap="small")
    # Callables: the bytes are read only when someone clicks (exports of big models stay off the page).
    row.download_button("Model file", lambda: main_path.read_bytes(), file_name=main_path.name,
                        mime=MIME[res["fmt"]], key=f"dl_model_{res['fmt']}",
                        icon=":material/download:", on_click="ignore", type="primary",
                        help=f"The exported {FORMAT_LABELS[res['fmt']]} file, {main_path.name}.")
    present = [p for p in files if p.is_file()]
    row.download_button("All files (.zip)", lambda: _zip(present),
                        file_name=main_path.name.split(".")[0] + ".zip", key=f"dl_zip_{res['fmt']}",
                        mime="application/zip", icon=":material/folder_zip:", on_click="ignore",
                        help="The model file with its model card" + (" and JSON config" if res["fmt"] == "safetensors"
                                                                     else "") + ".")
    card_path = Path(res["card"])
    card = _read(card_path)
    if card is not None:
        row.download_button("Model card", card, file_name=card_path.name, mime="text/markdown",
                            icon=":material/description:", on_click="ignore", key=f"dl_card_{res['fmt']}",
                            help="The model card (markdown) written beside the export.")
        with st.expander("Model card", expanded=True, icon=":material/description:"):
            st.markdown(_demote_headings(card.decode("utf-8", errors="replace")))


def previous_exports(run: RunInfo) -> None:
    folder = run.path / "exports"
    exts = tuple(EXTENSIONS.values())
    found = sorted((p for p in folder.glob("*") if p.is_file() and p.name.endswith(exts)),
                   key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else []
    if not found:
        return
    with st.expander(f"Earlier exports of this run ({len(found)})", icon=":material/inventory_2:"):
        for p in found[:20]:
            st.markdown(f"`{state.esc(p.name)}` · {p.stat().st_size / 1024:,.0f} KiB · "
                        f"{state.fmt_ago(p.stat().st_mtime)}")
        st.caption(f"In `{folder}`")


def _result_key(run: RunInfo, ckpt: Path, fmt: str) -> str:
    return f"{run.path}|{ckpt.name}|{fmt}"


def main() -> None:
    st.title("Export")
    st.caption("Ship a trained generator or translator: a safe safetensors bundle (with a standalone script) for "
               "GAN Studio, torch.export for plain PyTorch, or ONNX for everything else. A model card is written "
               "beside every export.")
    picked = pick_run()
    if picked is None:
        return
    run, ckpt = picked
    translator = is_translator(run)
    formats = TRANSLATOR_FORMATS if translator else FORMATS
    ss = st.session_state
    if ss.get(K_FMT) not in formats:
        ss[K_FMT] = "safetensors"
    fmt = st.radio("Format", formats, key=K_FMT, format_func=FORMAT_LABELS.get, horizontal=True,
                   help=" · ".join(f"{FORMAT_LABELS[k]}: {ALL_FORMAT_HELP[k]}" for k in formats))
    st.caption(ALL_FORMAT_HELP[fmt])
    if translator:
        both = run.config.get("task") == "cyclegan"
        st.caption(f"A {run.config.get('task')} translator: image in, image out"
                   + (" — both directions (A→B and B→A) are exported." if both else ".")
                   + " The bundle's translate.py translates a folder with torch, numpy and Pillow only. "
                     "TorchScript is not offered for translators (deprecated upstream; use torch.export).")
    blocked = False
    if fmt == "onnx":
        ok, msg = onnx_status()
        if not ok:
            st.error(msg, icon=":material/error:")
            blocked = True
        else:
            st.caption(msg)
    out_dir = run.path / "exports"
    # One result per (run, checkpoint, format): the box and its buttons always belong to what is
    # chosen now, and coming back to a format shows that format's own last export again.
    done = ss.setdefault(K_DONE, {})
    which = _result_key(run, ckpt, fmt)
    if st.button("Export", type="primary", icon=":material/ios_share:", disabled=blocked,
                 help=f"Write the export and its model card into {out_dir}."):
        try:
            with st.spinner(f"Exporting {ckpt.name} as {FORMAT_LABELS[fmt]}…"):
                t0 = time.monotonic()
                res = export_generator(ckpt, fmt)  # default: RUN_DIR/exports/<run>-step<N>.<ext>
            done[which] = {"path": str(res.path), "files": [str(p) for p in res.files], "card": str(res.card_path),
                          "fmt": res.fmt, "step": res.step, "parity": res.parity, "notes": list(res.notes),
                          "run": str(run.path), "secs": time.monotonic() - t0}
        except Exception as e:  # noqa: BLE001 - a page shows errors, never a traceback
            done.pop(which, None)
            state.show_error(e, prefix=f"Could not export `{ckpt.name}` of {run.name}: ")
    if which in done:
        show_result(done[which])
    previous_exports(run)


main()
