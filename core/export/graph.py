"""The generator as a torch.export program, and that program as a JSON list of ATen operations that the
bundle's standalone generate.py runs with the bundle's safetensors weights (see docs/export.md)."""
from __future__ import annotations

import math
import operator
from typing import Any

import torch
from torch import nn

from ..generator import LoadedGenerator, generate_seeds
from . import standalone
from .errors import PARITY_TOL, ExportError


class ZGenerator(nn.Module):
    """forward(z[, y]) -> images in [-1, 1]: the fixed signature of every exported program."""

    def __init__(self, G: nn.Module, conditional: bool):
        super().__init__()
        self.G, self.conditional = G, conditional

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.G.generate(z, y if self.conditional else None)


class WTruncatedGenerator(nn.Module):
    """forward(z, psi): style families truncate in w (w_avg + psi (w - w_avg)), inside the network."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def truncated(self, z: torch.Tensor, y: torch.Tensor | None, psi: torch.Tensor) -> torch.Tensor:
        w = self.G.mapping(z, y)
        return self.G.synthesis(self.G.w_avg + psi * (w - self.G.w_avg))

    def forward(self, z: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        return self.truncated(z, None, psi)


class WTruncatedConditional(WTruncatedGenerator):
    """forward(z, y, psi)."""

    def forward(self, z: torch.Tensor, y: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.truncated(z, y, psi)


def example_inputs(g: LoadedGenerator, n: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    z = torch.randn(n, g.latent_dim, generator=torch.Generator().manual_seed(seed))
    return (z, torch.arange(n) % g.num_classes) if g.num_classes else (z,)


def export_program(g: LoadedGenerator, w_truncation: bool = False) -> torch.export.ExportedProgram:
    """torch.export of the CPU float32 generator with a dynamic batch dimension."""
    G = g.G.cpu().float().eval()
    if w_truncation:
        wrap: nn.Module = (WTruncatedConditional if g.num_classes else WTruncatedGenerator)(G).eval()
    else:
        wrap = ZGenerator(G, bool(g.num_classes)).eval()
    args = example_inputs(g)
    batch = torch.export.Dim("batch", min=1)
    shapes: list[Any] = [{0: batch} for _ in args]
    if w_truncation:
        args, shapes = (*args, torch.tensor(0.7)), [*shapes, None]
    try:
        with torch.no_grad():
            return torch.export.export(wrap, args, dynamic_shapes=tuple(shapes), strict=False)
    except Exception as e:  # noqa: BLE001 - torch.export raises many types; the message says which op failed
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ExportError(f"torch.export could not trace the {g.cfg.arch} generator: {first}") from None


# ------------------------------------------------------------------ program -> JSON
def _encode(a: Any) -> Any:
    if isinstance(a, torch.fx.Node):
        return {"node": a.name}
    if isinstance(a, tuple):
        return {"tuple": [_encode(x) for x in a]}
    if isinstance(a, list):
        return [_encode(x) for x in a]
    if isinstance(a, float) and not math.isfinite(a):
        return {"float": str(a)}
    if a is None or isinstance(a, (bool, int, float, str)):
        return a
    if isinstance(a, torch.dtype):
        return {"dtype": str(a).removeprefix("torch.")}
    if isinstance(a, torch.device):
        return {"device": str(a)}
    if isinstance(a, torch.memory_format):
        return {"memory_format": str(a).removeprefix("torch.")}
    if isinstance(a, torch.layout):
        return {"layout": str(a).removeprefix("torch.")}
    raise ExportError(f"the exported graph has an argument of type {type(a).__name__} the standalone script cannot "
                      "encode")


def _target(t: Any) -> str:
    if isinstance(t, torch._ops.OpOverload) and t.namespace == "aten":
        return str(t)  # aten.conv2d.default
    if getattr(t, "__module__", None) == "_operator" and getattr(operator, t.__name__, None) is t:
        return f"operator.{t.__name__}"
    raise ExportError(f"the exported graph calls {t!r}, which is not an ATen operator; the standalone script "
                      "runs only ATen operators")


def program_graph(ep: torch.export.ExportedProgram, G: nn.Module, input_names: list[str]) -> dict[str, Any]:
    """JSON for ``standalone.run_graph``: placeholders become weights (G's state-dict names), constants or inputs."""
    from torch.export.graph_signature import InputKind
    keys = set(G.state_dict())
    specs = ep.graph_signature.input_specs
    user = iter(input_names)
    nodes: list[dict[str, Any]] = []
    constants: dict[str, Any] = {}
    placeholders = [n for n in ep.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(specs):
        raise ExportError("the exported program's inputs do not match its signature")
    for n, spec in zip(placeholders, specs):
        if spec.kind == InputKind.USER_INPUT:
            nodes.append({"kind": "input", "name": n.name, "key": next(user)})
            continue
        key = spec.target.removeprefix("G.") if spec.target else None
        if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER) and key in keys:
            nodes.append({"kind": "weight", "name": n.name, "key": key})
        else:  # lifted constants and non-persistent buffers travel in the JSON (they are small)
            t = ep.constants.get(spec.target) if spec.target in ep.constants else ep.state_dict[spec.target]
            t = t.detach().cpu()
            constants[n.name] = {"dtype": str(t.dtype).removeprefix("torch."), "data": t.tolist()}
            nodes.append({"kind": "constant", "name": n.name, "key": n.name})
    for n in ep.graph.nodes:
        if n.op == "call_function":
            nodes.append({"kind": "call", "name": n.name, "target": _target(n.target), "args": _encode(list(n.args)),
                          "kwargs": {k: _encode(v) for k, v in n.kwargs.items()}})
        elif n.op == "output":
            outs = n.args[0]
            nodes.append({"kind": "output", "name": n.name, "args": [_encode(outs[0] if isinstance(outs, (tuple, list))
                                                                              else outs)]})
        elif n.op != "placeholder":
            raise ExportError(f"the exported graph has a {n.op} node, which the standalone script cannot run")
    return {"format": standalone.GRAPH_FORMAT, "version": standalone.GRAPH_VERSION, "nodes": nodes,
            "constants": constants, "torch": torch.__version__}


def _w_space(G: nn.Module) -> bool:
    return all(hasattr(G, a) for a in ("w_avg", "mapping", "synthesis"))


def _parity(g: LoadedGenerator, meta: dict[str, Any], graph: dict[str, Any]) -> float:
    """max |generate.py's images - generate_seeds| over seeds 0-3 at psi 1 (and 0.7 when it truncates)."""
    weights = {k: v.detach().cpu().contiguous() for k, v in g.G.state_dict().items()}
    psis = (1.0, 0.7) if graph["truncation"] != "none" else (1.0,)
    return max(float((standalone.generate(meta, graph, weights, [0, 1, 2, 3], psi)
                      - generate_seeds(g, [0, 1, 2, 3], psi)).abs().max()) for psi in psis)


def standalone_graph(g: LoadedGenerator, meta: dict[str, Any]) -> tuple[dict[str, Any], float, list[str]]:
    """(graph JSON, max |standalone - GAN Studio|, notes). The check runs the very code that ships as
    generate.py against ``generate_seeds``; over PARITY_TOL the export is refused. A style family
    (``w_avg``, ``mapping``, ``synthesis``) also gets a second graph with psi as an input, for truncation
    in w; if that does not reproduce GAN Studio's truncation it is left out and generate.py refuses psi < 1."""
    notes: list[str] = []
    names = ["z", "y"] if g.num_classes else ["z"]
    graph = program_graph(export_program(g), g.G, names)
    graph["truncation"] = "z"
    if _w_space(g.G):
        graph["truncation"] = "none"
        try:
            w_graph = program_graph(export_program(g, w_truncation=True), g.G, [*names, "psi"])
            diff = _parity(g, meta, {**graph, "truncation": "w", "w_graph": w_graph})
            if diff < PARITY_TOL:
                graph.update(truncation="w", w_graph=w_graph)
            else:
                notes.append(f"generate.py: its truncation in w differs from GAN Studio's by {diff:.1e}; "
                             "it refuses --truncation < 1")
        except (ExportError, TypeError, AttributeError, RuntimeError) as e:
            notes.append(f"generate.py: truncation in w could not be exported ({e}); it refuses --truncation < 1")
    diff = _parity(g, meta, graph)
    if not diff < PARITY_TOL:
        raise ExportError(f"the standalone generate.py differs from GAN Studio by {diff:.2e}; not writing the bundle")
    return graph, diff, notes

def torch_export_bytes(g: LoadedGenerator, meta_json: str) -> tuple[bytes, float]:
    """The .pt2 (torch.export.save, the bundle metadata inside as gan_studio.json) and max |reloaded - PyTorch|."""
    import io

    ep = export_program(g)
    buf = io.BytesIO()
    torch.export.save(ep, buf, extra_files={"gan_studio.json": meta_json})
    buf.seek(0)
    reloaded = torch.export.load(buf).module()  # our own just-written program, to check it
    x = example_inputs(g, n=4, seed=123)
    with torch.no_grad():
        ref = g.G.cpu().float().eval()(*x) if g.num_classes else g.G.cpu().float().eval()(x[0])
        diff = float((reloaded(*x) - ref).abs().max())
    if not diff < PARITY_TOL:
        raise ExportError(f"the torch.export program differs from PyTorch by {diff:.2e}; not writing it")
    return buf.getvalue(), diff
