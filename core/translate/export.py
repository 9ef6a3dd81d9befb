"""`python -m core export` for pix2pix / cyclegan runs: a translator bundle (safetensors + JSON + graph +
translate.py), torch-export `.pt2` and ONNX per direction, each checked against PyTorch, with a model card."""
from __future__ import annotations

import io
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..export.errors import PARITY_TOL, ExportError
from .bundle import TRANSLATOR_FORMAT, TRANSLATOR_VERSION
from .cli import load_translation_state, translate_array, translator_from_state

EXT = {"safetensors": ".safetensors", "torch-export": ".pt2", "onnx": ".onnx"}
SCRIPT, RUNNER = "translate.py", "gan_graph.py"


class Translator(nn.Module):
    """forward(x) -> G(x): images in [-1, 1] of shape (B, C, R, R) in and out (the exported signature)."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.G(x)


def _inputs(channels: int, r: int, n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, r, r, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _program(G: nn.Module, channels: int, r: int) -> torch.export.ExportedProgram:
    try:
        with torch.no_grad():
            return torch.export.export(Translator(G).eval(), (_inputs(channels, r),),
                                       dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), strict=False)
    except Exception as e:  # noqa: BLE001 - torch.export raises many types
        raise ExportError(f"torch.export could not trace the translator: {(str(e).strip().splitlines() or [''])[0][:300]}") from None


def _check(diff: float, what: str) -> float:
    if not diff < PARITY_TOL:
        raise ExportError(f"the {what} differs from PyTorch by {diff:.2e} (> {PARITY_TOL}); not writing it")
    return diff


def _pt2(G: nn.Module, channels: int, r: int, meta: str) -> tuple[bytes, float]:
    buf = io.BytesIO()
    torch.export.save(_program(G, channels, r), buf, extra_files={"gan_studio.json": meta})
    buf.seek(0)
    x = _inputs(channels, r, 3, 123)
    with torch.no_grad():
        diff = float((torch.export.load(buf).module()(x) - G(x)).abs().max())
    return buf.getvalue(), _check(diff, "torch.export program")


def _onnx(G: nn.Module, channels: int, r: int, notes: list[str]) -> tuple[bytes, float | None]:
    from ..export.common import ONNX_OPSET, onnx_status
    ok, msg = onnx_status()
    if not ok:
        raise ExportError(msg)
    model, x = Translator(G).eval(), (_inputs(channels, r),)
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(model, x, input_names=["x"], output_names=["images"],
                                     dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), opset_version=ONNX_OPSET,
                                     dynamo=True, report=False, verbose=False)
        prog.save(buf)
    except Exception as e:  # noqa: BLE001 - missing onnxscript or an op it cannot convert: the legacy exporter
        notes.append(f"used the legacy ONNX exporter ({(str(e).splitlines() or [type(e).__name__])[0][:120]})")
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, x, buf, input_names=["x"], output_names=["images"], opset_version=ONNX_OPSET,
                              dynamic_axes={"x": {0: "batch"}, "images": {0: "batch"}}, dynamo=False)
    data = buf.getvalue()
    try:
        import onnxruntime as ort
    except ImportError:
        notes.append("onnxruntime is not installed: the graph was not checked against PyTorch.")
        return data, None
    xs = _inputs(channels, r, 3, 123)
    out = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": xs.numpy()})[0]
    with torch.no_grad():
        return data, _check(float(abs(out - G(xs).numpy()).max()), "ONNX graph")


def _graph(G: nn.Module, channels: int, r: int, prefix: str) -> dict[str, Any]:
    from ..export.graph import program_graph
    g = program_graph(_program(G, channels, r), G, ["x"])
    for n in g["nodes"]:
        if n["kind"] == "weight":
            n["key"] = f"{prefix}.{n['key']}"
    return g


def _standalone_parity(nets: dict[str, nn.Module], graphs: dict[str, Any], sd: dict[str, torch.Tensor],
                       channels: int, r: int) -> float:
    """The shipped translate.py's code on a few images vs translate_array: must give the same pixels."""
    from . import standalone
    rng = np.random.default_rng(0)
    worst = 0.0
    for d, G in nets.items():
        for _ in range(2):
            x = rng.integers(0, 256, (channels, r, r), dtype=np.uint8)
            a, b = standalone.translate(graphs[d], sd, x), translate_array(G, x)
            worst = max(worst, float(np.abs(a.astype(int) - b.astype(int)).max()))
    if worst:
        raise ExportError(f"the standalone translate.py's pixels differ from GAN Studio's by {worst:.0f}/255; not writing")
    return worst


def card(meta: dict[str, Any], fmt: str, files: list[Path], parity: dict[str, float | None]) -> str:
    c, r, dirs = meta["channels"], meta["resolution"], meta["directions"]
    lines = [f"# {meta['source_run'] or 'translator'}: {meta['task']} image-to-image translator", "",
             f"A GAN Studio **translator** (not a generator from noise): it maps a {r}x{r} image with {c} channel"
             f"{'s' if c > 1 else ''} ({'RGB' if c == 3 else 'greyscale'}) to another of the same size.", "",
             f"- task: {meta['task']}; directions: {', '.join(dirs)} (default {meta['default_direction']})",
             f"- resolution: {r} px, channels: {c}; step {meta['step']}; format: {fmt}",
             f"- input `x`: float32 (B, {c}, {r}, {r}) in [-1, 1] (pixel / 127.5 - 1); output: same shape, [-1, 1]",
             "- inputs of another size: centre-crop the square, resize to the resolution (GAN Studio does this)"]
    for d, p in parity.items():
        if p is not None:
            lines.append(f"- {d}: max |export - PyTorch| = {p:.2e} (tolerance {PARITY_TOL})")
    if fmt == "safetensors":
        lines += ["", "Use: `python translate.py --input FOLDER_OR_FILE --out DIR [--direction AtoB|BtoA]` in this "
                  "folder (torch, safetensors, numpy, pillow), or `python -m core translate BUNDLE ...` / "
                  "`python -m core serve BUNDLE` (POST /translate) with GAN Studio."]
    lines += ["", "Files: " + ", ".join(f.name for f in files), ""]
    return "\n".join(lines)


def export_translator(source: str | Path, fmt: str = "safetensors", out: str | Path | None = None,
                      checkpoint: str | int | None = "latest", write=None):
    """Export a translation run (both directions for cyclegan). ``write(path, bytes)`` is the atomic writer."""
    from ..export.common import ExportResult
    if fmt not in EXT:
        raise ExportError(f"a translator exports as {', '.join(EXT)}; {fmt!r} is not one of them (torch-export "
                          "replaces TorchScript)")
    from .bundle import is_translator_bundle
    if is_translator_bundle(source):
        raise ExportError(f"{source} is already an exported translator; export from its run folder to get another format")
    state, ck = load_translation_state(source, str(checkpoint or "latest"))
    G, cfg, channels = translator_from_state(state, None, source)
    nets = {cfg.direction: G}
    if cfg.task == "cyclegan":
        other = "BtoA" if cfg.direction == "AtoB" else "AtoB"
        nets[other] = translator_from_state(state, other, source)[0]
    nets = {d: n.cpu().float().eval() for d, n in nets.items()}
    r, step = cfg.resolution, int(state.get("step", 0))
    src = Path(source)
    run_dir = src if src.is_dir() else (src.parent.parent if src.parent.name == "checkpoints" else None)
    name = run_dir.name if run_dir else src.stem
    base = f"{name}-step{step:07d}"
    if out is None or str(out) == "":
        folder, stem = (run_dir / "exports") if run_dir else src.parent, base
    else:
        p = Path(out).expanduser()
        if p.is_dir() or str(out).endswith(("/", "\\")):
            folder, stem = p, base
        else:
            folder, stem = p.parent, p.name.removesuffix(EXT[fmt])
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the output folder {folder}: {e}") from None
    meta = {"format": TRANSLATOR_FORMAT, "version": TRANSLATOR_VERSION, "kind": "translator", "task": cfg.task,
            "directions": list(nets), "default_direction": cfg.direction, "resolution": r, "channels": channels,
            "step": step, "config": cfg.to_dict(), "source_run": run_dir.name if run_dir else None,
            "source_checkpoint": ck.name, "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "inputs": {"x": f"float32 (B, {channels}, {r}, {r}) in [-1, 1]"},
            "output": f"float32 (B, {channels}, {r}, {r}) in [-1, 1]"}
    notes: list[str] = []
    parity: dict[str, float | None] = {}
    blobs: list[tuple[Path, bytes]] = []
    if fmt == "safetensors":
        from safetensors.torch import save
        path = folder / (stem + ".safetensors")
        meta.update(weights=path.name, graph=stem + ".graph.json")
        sd = {f"{d}.{k}": v.detach().cpu().contiguous() for d, n in nets.items() for k, v in n.state_dict().items()}
        graphs = {d: _graph(n, channels, r, d) for d, n in nets.items()}
        _standalone_parity(nets, graphs, sd, channels, r)
        notes.append("translate.py (standalone: torch, safetensors, numpy, pillow) gives GAN Studio's pixels")
        blob = save(sd, metadata={"format": TRANSLATOR_FORMAT, "version": str(TRANSLATOR_VERSION), "bundle": json.dumps(meta)})
        from ..export import standalone as runner
        from . import standalone as script
        blobs = [(path, blob), (folder / (stem + ".json"), (json.dumps(meta, indent=2) + "\n").encode()),
                 (folder / meta["graph"], json.dumps({"format": runner.GRAPH_FORMAT, "version": runner.GRAPH_VERSION,
                                                      "directions": graphs}, separators=(",", ":")).encode()),
                 (folder / SCRIPT, Path(script.__file__).read_bytes()),
                 (folder / RUNNER, Path(runner.__file__).read_bytes())]
        for p in (folder / SCRIPT, folder / RUNNER):
            if p.exists() and b"Standalone GAN Studio" not in p.read_bytes()[:400]:
                raise ExportError(f"{p} exists and is not GAN Studio's; export into another folder")
    else:
        several = len(nets) > 1
        for d, n in nets.items():
            p = folder / (stem + (f"-{d}" if several else "") + EXT[fmt])
            if fmt == "torch-export":
                blob, parity[d] = _pt2(n, channels, r, json.dumps({**meta, "direction": d}))
            else:
                blob, parity[d] = _onnx(n, channels, r, notes)
            blobs.append((p, blob))
        path = blobs[0][0]
    files = [p for p, _ in blobs]
    card_path = path.with_name(path.name + ".md")
    text = card(meta, fmt, files + [card_path], parity)
    blobs.append((card_path, text.encode("utf-8")))
    for p, b in blobs:
        write(p, b)
    known = [v for v in parity.values() if v is not None]
    return ExportResult(fmt, path, files + [card_path], card_path, text, step, max(known) if known else None, notes)
