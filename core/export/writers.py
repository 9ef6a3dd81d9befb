"""Write a trained generator as a safetensors bundle (with a standalone generate.py), a torch.export
program, an ONNX graph or a TorchScript program, each with a model card beside it, and check every
program against PyTorch (see docs/export.md)."""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from ..fsutil import atomic_write_bytes
from ..generator import LoadedGenerator, load_generator
from ..generator.bundle import BUNDLE_FORMAT, BUNDLE_VERSION, bundle_meta
from . import standalone
from .card import model_card
from .common import ONNX_OPSET, ExportResult, onnx_status
from .errors import PARITY_TOL, ExportError
from .graph import standalone_graph, torch_export_bytes

SCRIPT_NAME = "generate.py"
SCRIPT_MARKER = "Standalone GAN Studio generator"

# FORMATS / FORMAT_HELP are what the studio's Export page lists today (it has labels for these three);
# ALL_FORMATS adds torch-export, which the CLI and export_generator accept.
FORMATS = ("safetensors", "torchscript", "onnx")
ALL_FORMATS = ("safetensors", "torch-export", "onnx", "torchscript")
EXTENSIONS = {"safetensors": ".safetensors", "torch-export": ".pt2", "torchscript": ".torchscript.pt", "onnx": ".onnx"}
ALL_FORMAT_HELP = {
    "safetensors": "Weights (safetensors) + JSON config: GAN Studio's own bundle. Safe to load, smallest, "
                   "rebuilds the generator with this project (python -m core generate BUNDLE).",
    "torch-export": "A torch.export program (.pt2): the recommended PyTorch-native format; runs with plain "
                    "torch.export.load, no GAN Studio code needed (AOTInductor / ExecuTorch start from it).",
    "torchscript": "A traced TorchScript program for plain torch.jit.load. TorchScript is deprecated upstream: "
                   "prefer torch-export for new PyTorch deployments.",
    "onnx": "ONNX graph with a dynamic batch size: runs in onnxruntime, TensorRT, OpenVINO, browsers (onnxruntime-web).",
}
FORMAT_HELP = {k: ALL_FORMAT_HELP[k] for k in FORMATS}
# ------------------------------------------------------------------ export wrappers
class UnconditionalGenerator(nn.Module):
    """forward(z) -> images in [-1, 1]: the fixed signature exported to TorchScript / ONNX."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.G.generate(z, None)


class ConditionalGenerator(nn.Module):
    """forward(z, y) -> images in [-1, 1]."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.G.generate(z, y)


class _OnnxFriendlyResNet(nn.Module):
    """ResNetGenerator.generate with ``unflatten`` instead of ``view(-1, C, 4, 4)``: the legacy ONNX
    exporter loses the channel count through a -1 reshape under a dynamic batch and then refuses the
    BatchNorm after it. Same weights, same arithmetic (the parity check after export verifies it)."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        import torch.nn.functional as F
        G = self.G
        h = G.linear(z).unflatten(1, (G.ch0, 4, 4))  # ch0 x 4 x 4
        for block in G.blocks:
            h = block(h, y)
        return torch.tanh(G.out(F.relu(G.bn(h))))


def _wrapped(g: LoadedGenerator, for_onnx: bool = False) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    G = g.G.cpu().float().eval()
    if for_onnx and type(G).__name__ == "ResNetGenerator":
        G = _OnnxFriendlyResNet(G).eval()
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, g.latent_dim, generator=gen)
    if g.num_classes:
        return ConditionalGenerator(G).eval(), (z, torch.tensor([0, min(1, g.num_classes - 1)]))
    return UnconditionalGenerator(G).eval(), (z,)


def _check_inputs(g: LoadedGenerator, n: int = 4) -> tuple[torch.Tensor, ...]:
    z = torch.randn(n, g.latent_dim, generator=torch.Generator().manual_seed(123))
    if g.num_classes:
        return z, torch.arange(n) % g.num_classes
    return (z,)


def _torchscript_bytes(g: LoadedGenerator) -> tuple[bytes, float]:
    model, example = _wrapped(g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation notice
        traced = torch.jit.trace(model, example, check_trace=False)
        buf = io.BytesIO()
        meta = json.dumps(bundle_meta(g), indent=2)
        torch.jit.save(traced, buf, _extra_files={"gan_studio.json": meta})
        buf.seek(0)
        reloaded = torch.jit.load(buf, map_location="cpu")  # our own just-written program, to check it
    x = _check_inputs(g)
    with torch.no_grad():
        diff = float((reloaded(*x) - model(*x)).abs().max())
    if not diff < PARITY_TOL:
        raise ExportError(f"the traced TorchScript program differs from PyTorch by {diff:.2e}; not writing it")
    return buf.getvalue(), diff


def _onnx_bytes(g: LoadedGenerator) -> tuple[bytes, float | None, list[str]]:
    ok, msg = onnx_status()
    if not ok:
        raise ExportError(msg)
    model, example = _wrapped(g, for_onnx=True)
    names = ["z", "y"] if g.num_classes else ["z"]
    notes: list[str] = []
    try:  # the torch.export-based exporter first (the one PyTorch maintains); it needs onnxscript
        batch = torch.export.Dim("batch", min=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(model, example, input_names=names, output_names=["images"],
                                     dynamic_shapes=tuple({0: batch} for _ in names), opset_version=ONNX_OPSET,
                                     dynamo=True, report=False, verbose=False)
        buf = io.BytesIO()
        prog.save(buf)
        data = buf.getvalue()
        exporter = "torch.export"
    except Exception as dynamo_err:  # noqa: BLE001 - missing onnxscript, or an op it cannot convert
        why = (f"the package '{dynamo_err.name}' is not installed" if isinstance(dynamo_err, ImportError)
               else (str(dynamo_err).strip().splitlines() or [type(dynamo_err).__name__])[0][:200])
        notes.append(f"the torch.export-based ONNX exporter was not used ({why}); used the legacy TorchScript-based "
                     "one (pip install onnxscript to switch)")
        axes = {n: {0: "batch"} for n in names + ["images"]}
        buf = io.BytesIO()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
                torch.onnx.export(model, example, buf, input_names=names, output_names=["images"],
                                  dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False, do_constant_folding=True)
        except ImportError as e:
            raise ExportError(f"ONNX export needs the package {e.name or e}: pip install {e.name or 'onnx'}") from None
        data = buf.getvalue()
        exporter = "legacy"
    parity = onnx_parity(data, g)
    if parity is not None and not parity < PARITY_TOL:
        raise ExportError(f"the exported ONNX graph ({exporter} exporter) differs from PyTorch by {parity:.2e} "
                          f"(> {PARITY_TOL}); not writing it")
    return data, parity, notes


def onnx_parity(data: bytes | str | Path, g: LoadedGenerator) -> float | None:
    """max |onnxruntime - PyTorch| on a few fixed latents, or None when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    src = data if isinstance(data, bytes) else str(data)
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    x = _check_inputs(g)
    feeds = {"z": x[0].numpy()}
    if g.num_classes:
        feeds["y"] = x[1].numpy().astype("int64")
    out = sess.run(None, feeds)[0]
    with torch.no_grad():
        ref = g.G(*x) if g.num_classes else g.G(x[0])
    return float(abs(out - ref.numpy()).max())


# ------------------------------------------------------------------ export
_CREATED: list[Path] | None = None  # files this export call created (removed again if a later write fails)


def _write(path: Path, data: bytes) -> None:
    """Atomic write (temp file in the same folder, fsync, os.replace: a crash or a full disk never leaves a
    partial file under the final name), then the usual permissions (the temp file is private)."""
    import os
    new = not path.exists()
    atomic_write_bytes(path, data)
    if new and _CREATED is not None:
        _CREATED.append(path)
    mask = os.umask(0)
    os.umask(mask)
    try:
        os.chmod(path, 0o666 & ~mask)
    except OSError:
        pass


def default_out(g: LoadedGenerator, fmt: str, folder: str | Path | None = None) -> Path:
    """RUN_DIR/exports/<run>-step<N><ext> (or beside the source when it is not in a run folder)."""
    base = Path(folder) if folder else ((g.run_dir / "exports") if g.run_dir else g.source.parent)
    name = g.run_dir.name if g.run_dir else g.source.stem.split(".")[0]
    return base / f"{name}-step{g.step:07d}{EXTENSIONS[fmt]}"


def _out_path(out: str | Path | None, g: LoadedGenerator, fmt: str) -> Path:
    if out is None or str(out) == "":
        return default_out(g, fmt)
    p = Path(out).expanduser()
    if p.is_dir() or str(out).endswith(("/", "\\")):
        return default_out(g, fmt, p)
    ext = EXTENSIONS[fmt]
    if not p.name.endswith(ext) and not (fmt == "torchscript" and p.suffix in (".pt", ".pth", ".ts")):
        p = p.with_name(p.name + ext)
    return p


def _stem(p: Path, fmt: str) -> Path:
    """FILE without its format extension (FILE.json / FILE.md go beside it)."""
    name = p.name
    for ext in (EXTENSIONS[fmt], ".pt", ".pth", ".ts"):
        if name.endswith(ext):
            return p.with_name(name[: -len(ext)])
    return p.with_name(p.stem)


def _write_bundle(g: LoadedGenerator, path: Path, stem: Path, notes: list[str]) -> list[Path]:
    """NAME.safetensors (+ its JSON in the header), NAME.json, NAME.graph.json and generate.py; returns the
    files beside the weights. The standalone script is checked against GAN Studio before anything is written."""
    from safetensors.torch import save
    meta = bundle_meta(g)
    graph_file = stem.with_name(stem.name + ".graph.json")
    meta["weights"], meta["graph"] = path.name, graph_file.name
    try:
        graph, diff, graph_notes = standalone_graph(g, meta)
        notes += graph_notes + [f"generate.py (standalone: torch, safetensors, numpy, pillow) matches GAN Studio "
                                f"to {diff:.1e}"]
    except Exception as e:  # noqa: BLE001 - the bundle never depends on the standalone script, whatever failed
        graph = None
        del meta["graph"]
        why = str(e) if isinstance(e, ExportError) else f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
        notes.append(f"generate.py is not included: {why}")
    sd = {k: v.detach().cpu().contiguous() for k, v in g.G.state_dict().items()}
    blob = save(sd, metadata={"format": BUNDLE_FORMAT, "version": str(BUNDLE_VERSION), "bundle": json.dumps(meta)})
    _write(path, blob)
    side = stem.with_name(stem.name + ".json")
    _write(side, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    if graph is None:
        return [side]
    _write(graph_file, json.dumps(graph, separators=(",", ":")).encode("utf-8"))
    script = path.with_name(SCRIPT_NAME)
    if script.exists() and SCRIPT_MARKER not in script.read_text(encoding="utf-8", errors="replace")[:400]:
        script = stem.with_name(stem.name + "-" + SCRIPT_NAME)  # never overwrite someone else's generate.py
        notes.append(f"{SCRIPT_NAME} in {path.parent} is not ours: wrote {script.name} instead")
    _write(script, Path(standalone.__file__).read_bytes())
    return [side, graph_file, script]


def export_generator(source: str | Path | LoadedGenerator, fmt: str = "safetensors", out: str | Path | None = None,
                     checkpoint: str | int | None = "latest") -> ExportResult:
    """Export the (EMA) generator of a run folder / checkpoint / bundle as ``fmt`` into ``out``
    (default RUN_DIR/exports/), with a model card FILE.md beside it. Files are written atomically."""
    global _CREATED
    if fmt not in ALL_FORMATS:
        raise ExportError(f"unknown format {fmt!r}; valid: {', '.join(ALL_FORMATS)}")
    _CREATED = []
    try:
        return _export(source, fmt, out, checkpoint)
    except OSError as e:  # a full disk, a read-only folder: no half-set of files left behind either
        for p in reversed(_CREATED):
            try:
                p.unlink()
            except OSError:
                pass
        where = f" {e.filename}" if e.filename else ""
        raise ExportError(f"cannot write the export{where}: {e.strerror or e}") from None
    finally:
        _CREATED = None


def _is_translation(source: object) -> bool:
    if isinstance(source, LoadedGenerator):
        return False
    from ..serve.translate_app import is_translation_source
    from ..translate.bundle import is_translator_bundle
    p = Path(source)
    in_run = p.suffix == ".pt" and p.parent.name == "checkpoints" and is_translation_source(p.parent.parent)
    return is_translation_source(p) or is_translator_bundle(p) or in_run


def _export(source, fmt: str, out, checkpoint) -> ExportResult:
    if _is_translation(source):  # pix2pix / cyclegan: image in, image out (core/translate/export.py)
        from ..translate.export import export_translator
        return export_translator(source, fmt, out, checkpoint, write=_write)
    g = source if isinstance(source, LoadedGenerator) else load_generator(source, checkpoint=checkpoint)
    path = _out_path(out, g, fmt)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the output folder {path.parent}: {e}") from None
    stem = _stem(path, fmt)
    files = [path]
    parity: float | None = None
    notes: list[str] = []
    if fmt == "safetensors":
        files += _write_bundle(g, path, stem, notes)
    elif fmt == "torch-export":
        blob, parity = torch_export_bytes(g, json.dumps(bundle_meta(g), indent=2))
        _write(path, blob)
    elif fmt == "torchscript":
        blob, parity = _torchscript_bytes(g)
        _write(path, blob)
    else:
        blob, parity, onnx_notes = _onnx_bytes(g)
        notes += onnx_notes
        _write(path, blob)
        if parity is None:
            notes.append("onnxruntime is not installed: the graph was not checked against PyTorch.")
    card_path = path.with_name(path.name + ".md")  # one card per export: x.safetensors.md, x.onnx.md, ...
    card = model_card(g, fmt, files + [card_path], parity)
    _write(card_path, card.encode("utf-8"))
    files.append(card_path)
    return ExportResult(fmt, path, files, card_path, card, g.step, parity, notes)
