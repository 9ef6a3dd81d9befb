#!/usr/bin/env python
"""Standalone GAN Studio generator (ships as generate.py in every bundle): needs only torch, safetensors, numpy, pillow.

    python generate.py -n 4 --seed 3 --out samples/ [--truncation 0.7] [--class NAME_OR_INDEX] [--bundle NAME.json]

Rebuilds the generator from the bundle's files beside this script: NAME.json (sizes, classes),
NAME.graph.json (the network as a list of ATen operations, written by torch.export at export time)
and NAME.safetensors (the weights). Nothing is unpickled and no Python code is read from the files:
each graph step is an ATen operator looked up by name (or one of a few integer arithmetic
functions), so this one script serves every model family. Image seed_NNNNNN.png of seed s has the
same pixels as `python -m core generate BUNDLE --seed s` in GAN Studio.
"""
from __future__ import annotations

import argparse
import json
import math
import operator
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

GRAPH_FORMAT = "gan-studio-graph"
GRAPH_VERSION = 1
BATCH = 64  # the batch GAN Studio generates in: the same batches give bit-identical convolutions
_OPERATORS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "floordiv": operator.floordiv,
              "truediv": operator.truediv, "mod": operator.mod, "neg": operator.neg, "getitem": operator.getitem}
_REFUSED = {"from_file", "save", "load"}  # no ATen operator that touches files


class GraphError(ValueError):
    """A graph or bundle file this script cannot run; the message names the file and the problem."""


def latents(seeds, dim: int, truncation: float = 1.0) -> torch.Tensor:
    """One z per seed (GAN Studio's rule): randn from a generator seeded with s; psi < 1 resamples
    components outside [-2, 2], then scales by psi."""
    zs = []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        z = torch.randn(dim, generator=g)
        if truncation < 1.0:
            bad = z.abs() > 2.0
            while bool(bad.any()):
                z[bad] = torch.randn(int(bad.sum()), generator=g)
                bad = z.abs() > 2.0
            z = z * truncation
        zs.append(z)
    return torch.stack(zs) if zs else torch.empty(0, dim)


def _decode(a, env: dict):
    if isinstance(a, list):
        return [_decode(x, env) for x in a]
    if not isinstance(a, dict):
        return a
    if "node" in a:
        return env[a["node"]]
    if "float" in a:
        return float(a["float"])  # inf / -inf / nan, which JSON cannot hold as numbers
    if "dtype" in a:
        return getattr(torch, a["dtype"])
    if "device" in a:
        return torch.device(a["device"])
    if "memory_format" in a:
        return getattr(torch, a["memory_format"])
    if "layout" in a:
        return getattr(torch, a["layout"])
    if "tuple" in a:
        return tuple(_decode(x, env) for x in a["tuple"])
    if "kwargs" in a:
        return {k: _decode(v, env) for k, v in a["kwargs"].items()}
    raise GraphError(f"unknown argument encoding {sorted(a)}")


def _op(target: str):
    ns, _, rest = target.partition(".")
    if ns == "operator" and rest in _OPERATORS:
        return _OPERATORS[rest]
    name, _, overload = rest.partition(".")
    if ns != "aten" or not name or name in _REFUSED:
        raise GraphError(f"the graph asks for {target!r}: only ATen tensor operators may run")
    try:
        packet = getattr(torch.ops.aten, name)
        return getattr(packet, overload or "default")
    except (AttributeError, RuntimeError):
        raise GraphError(f"this PyTorch ({torch.__version__}) has no operator {target}: upgrade torch") from None


def run_graph(graph: dict, weights: dict, inputs: dict) -> torch.Tensor:
    """Evaluate the graph: placeholders are weights (by state-dict name), constants or the named inputs."""
    env: dict = {}
    consts = {k: torch.tensor(v["data"], dtype=getattr(torch, v["dtype"])) for k, v in graph.get("constants", {}).items()}
    for node in graph["nodes"]:
        kind, name = node["kind"], node["name"]
        if kind == "weight":
            if node["key"] not in weights:
                raise GraphError(f"the weights file lacks {node['key']!r}, which the graph needs")
            env[name] = weights[node["key"]]
        elif kind == "constant":
            env[name] = consts[node["key"]]
        elif kind == "input":
            env[name] = inputs[node["key"]]
        elif kind == "call":
            env[name] = _op(node["target"])(*_decode(node["args"], env), **_decode({"kwargs": node["kwargs"]}, env))
        elif kind == "output":
            return _decode(node["args"], env)[0]
        else:
            raise GraphError(f"unknown graph node kind {kind!r}")
    raise GraphError("the graph has no output")


def _labels(meta: dict, seeds, cls):
    n, names = int(meta["num_classes"]), [str(c) for c in meta.get("class_names") or []]
    if not n:
        if cls not in (None, ""):
            raise SystemExit("error: --class: this generator is not conditional")
        return None
    if cls in (None, ""):
        return torch.tensor([int(s) % n for s in seeds], dtype=torch.long)
    if not cls.lstrip("-").isdigit():
        if cls not in names:
            raise SystemExit(f"error: --class: unknown class {cls!r}; valid: {', '.join(names)}")
        i = names.index(cls)
    else:
        i = int(cls)
    if not 0 <= i < n:
        raise SystemExit(f"error: --class: index must be between 0 and {n - 1}, got {i}")
    return torch.full((len(seeds),), i, dtype=torch.long)


def load(bundle: Path) -> tuple[dict, dict, dict]:
    """(bundle metadata, graph, weights) from NAME.json and the files it names beside it."""
    meta = json.loads(bundle.read_text(encoding="utf-8"))
    gname, wname = meta.get("graph"), meta.get("weights")
    for what, fname in (("graph", gname), ("weights", wname)):
        if not isinstance(fname, str) or Path(fname).name != fname or fname in ("", ".", ".."):
            raise GraphError(f"{bundle}: '{what}' must name a file beside it, got {fname!r}")
    graph = json.loads((bundle.parent / gname).read_text(encoding="utf-8"))
    if graph.get("format") != GRAPH_FORMAT or int(graph.get("version", 0)) > GRAPH_VERSION:
        raise GraphError(f"{gname} is not a graph this script can run (format {graph.get('format')!r}, "
                         f"version {graph.get('version')!r})")
    return meta, graph, load_file(str(bundle.parent / wname))


@torch.no_grad()
def generate(meta: dict, graph: dict, weights: dict, seeds, truncation: float = 1.0, cls=None) -> torch.Tensor:
    """Images in [-1, 1] for the seeds, batched like GAN Studio."""
    space = graph.get("truncation", "z")
    if space == "none" and truncation < 1.0:
        raise SystemExit("error: --truncation: this family's truncation could not be exported; use 1.0, or "
                         "python -m core generate with GAN Studio")
    # Style families truncate in w with the second graph (psi is its input); psi = 1 runs the plain one.
    w_trunc = space == "w" and truncation < 1.0
    net = graph["w_graph"] if w_trunc else graph
    z = latents(seeds, int(meta["latent_dim"]), truncation if space == "z" else 1.0)
    y = _labels(meta, seeds, cls)
    out = []
    for i in range(0, len(z), BATCH):
        inputs = {"z": z[i:i + BATCH]}
        if y is not None:
            inputs["y"] = y[i:i + BATCH]
        if w_trunc:
            inputs["psi"] = torch.tensor(float(truncation))
        out.append(run_graph(net, weights, inputs).float())
    return torch.cat(out)


def to_uint8_hwc(img: torch.Tensor) -> np.ndarray:
    arr = ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def _find_bundle(folder: Path) -> Path:
    found = sorted(p for p in folder.glob("*.json") if not p.name.endswith(".graph.json")
                   and (folder / (p.name[:-5] + ".graph.json")).is_file())
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise SystemExit(f"error: --bundle: expected exactly one bundle beside {folder / 'generate.py'}, found {names}")
    return found[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Write images from an exported GAN Studio generator.")
    p.add_argument("-n", type=int, default=16, help="number of images (default 16)")
    p.add_argument("--seed", type=int, default=0, help="first seed; image i uses seed+i (same seed -> same image)")
    p.add_argument("--out", default="samples", help="output folder (default samples/)")
    p.add_argument("--truncation", type=float, default=1.0, help="psi in [0, 1]: lower = more typical, less varied")
    p.add_argument("--class", dest="class_id", help="class index or name for conditional models "
                                                    "(default: image i gets class (seed+i) mod classes)")
    p.add_argument("--bundle", help="the bundle's NAME.json (default: the one beside this script)")
    a = p.parse_args(argv)
    if a.n < 1:
        p.error("-n: ask for at least one image")
    if not 0.0 <= a.truncation <= 1.0 or math.isnan(a.truncation):
        p.error(f"--truncation: psi must be between 0 and 1, got {a.truncation}")
    bundle = Path(a.bundle) if a.bundle else _find_bundle(Path(__file__).resolve().parent)
    try:
        meta, graph, weights = load(bundle)
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"error: {bundle}: {e}") from None
    seeds = list(range(a.seed, a.seed + a.n))
    images = generate(meta, graph, weights, seeds, a.truncation, a.class_id)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for s, img in zip(seeds, images):
        Image.fromarray(to_uint8_hwc(img)).save(out / f"seed_{s:06d}.png", format="PNG", optimize=False)
    print(f"Wrote {len(seeds)} images to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
