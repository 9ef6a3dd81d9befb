"""The bundle's standalone generate.py (same pixels as `python -m core generate`, run with the project not
importable), the graph it runs (only ATen operators), the torch-export (.pt2) format and the ONNX exporter choice."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core import cli
from core import export as E
from core.export import graph as G
from core.export import standalone
from core.generator import LoadedGenerator, generate_seeds, latents, load_generator
from core.generator import sampling as core_sampling

ROOT = Path(__file__).resolve().parent.parent


def _make_run(root, **kw):
    from core.config import TrainConfig
    from core.train import create_run, run_training
    base = dict(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=2,
                checkpoint_every=2, device="cpu", threads=1)
    t = create_run(TrainConfig(**{**base, **kw}), root)
    assert run_training(t) == "finished"
    return t.store.path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"plain": _make_run(root), "cond": _make_run(root, arch="resnet-sn", conditional=True)}


def _isolated(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """python -I (no PYTHONPATH, no user site, no script folder on sys.path) in a folder outside the checkout."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-I", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _png(p: Path) -> np.ndarray:
    return np.asarray(Image.open(p))


@pytest.fixture(scope="module")
def style_run(tmp_path_factory):
    from core.models import available_archs
    if "stylegan2" not in available_archs():
        pytest.skip("no stylegan2 family in this tree")
    return _make_run(tmp_path_factory.mktemp("style"), arch="stylegan2", conditional=True)


@pytest.mark.parametrize("kind, extra", [("plain", ["--truncation", "0.7"]), ("cond", ["--class", "square"]),
                                         pytest.param("style", ["--truncation", "0.6"], marks=pytest.mark.slow)])
def test_generate_py_reproduces_core_generate_without_the_project(runs, tmp_path, kind, extra, request):
    """"style" (conditional, default class rule) is a family the script has never heard of, with w-space
    truncation through w_avg: still the same pixels."""
    run = request.getfixturevalue("style_run") if kind == "style" else runs[kind]
    res = E.export_generator(run, "safetensors", tmp_path / "export" / "gen")
    if kind == "style":
        assert json.loads((tmp_path / "export" / "gen.graph.json").read_text())["truncation"] == "w"
    away = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "export", away)  # what a user unzips on a machine without GAN Studio
    probe = _isolated(["-c", "import core"], away)
    assert probe.returncode != 0 and "No module named 'core'" in probe.stderr  # really not importable
    r = _isolated(["generate.py", "-n", "4", "--seed", "3", "--out", "pics", *extra], away)
    assert r.returncode == 0, r.stderr
    assert cli.main(["generate", str(res.path), "-n", "4", "--seed", "3", "--out", str(tmp_path / "core"), *extra]) == 0
    names = sorted(p.name for p in (away / "pics").iterdir())
    assert names == [f"seed_{s:06d}.png" for s in range(3, 7)]
    for n in names:
        assert np.array_equal(_png(away / "pics" / n), _png(tmp_path / "core" / n)), n


def test_the_shipped_script_is_the_tested_module_and_its_seed_rule_matches(runs, tmp_path):
    res = E.export_generator(runs["plain"], "safetensors", tmp_path / "gen")
    assert (tmp_path / "generate.py").read_bytes() == Path(standalone.__file__).read_bytes()
    assert "generate.py" in res.card and "torch-export" in res.card
    for psi in (1.0, 0.5, 0.0):
        assert torch.equal(standalone.latents(range(20), 7, psi), latents(list(range(20)), 7, psi))


def test_two_bundles_in_one_folder_need_bundle_and_a_users_script_is_kept(runs, tmp_path):
    (tmp_path / "generate.py").write_text("print('my own script')\n")
    a = E.export_generator(runs["plain"], "safetensors", tmp_path / "a")
    assert (tmp_path / "generate.py").read_text() == "print('my own script')\n"
    assert (tmp_path / "a-generate.py").is_file() and any("not ours" in n for n in a.notes)
    E.export_generator(runs["cond"], "safetensors", tmp_path / "b")
    with pytest.raises(SystemExit, match=r"--bundle: expected exactly one bundle .* found a.json, b.json"):
        standalone._find_bundle(tmp_path)
    with pytest.raises(SystemExit, match="unknown class 'dog'"):
        standalone.main(["--bundle", str(tmp_path / "b.json"), "--class", "dog", "--out", str(tmp_path / "o")])
    r = _isolated(["a-generate.py", "-n", "2", "--bundle", "b.json", "--class", "ring", "--out", "o"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["seed_000000.png", "seed_000001.png"]


def test_the_graph_runs_only_aten_operators(runs, tmp_path):
    E.export_generator(runs["plain"], "safetensors", tmp_path / "gen")
    graph = json.loads((tmp_path / "gen.graph.json").read_text())
    assert all(n["target"].startswith(("aten.", "operator.")) for n in graph["nodes"] if n["kind"] == "call")
    for evil in ("builtins.eval", "aten.from_file.default", "os.system", "aten.nonexistent_op.default"):
        bad = {**graph, "nodes": [{"kind": "call", "name": "x", "target": evil, "args": [], "kwargs": {}}]}
        with pytest.raises(standalone.GraphError, match="only ATen|no operator"):
            standalone.run_graph(bad, {}, {})
    meta = json.loads((tmp_path / "gen.json").read_text())
    meta["weights"] = "../../etc/passwd"
    (tmp_path / "bad.json").write_text(json.dumps(meta))
    with pytest.raises(standalone.GraphError, match="'weights' must name a file beside it"):
        standalone.load(tmp_path / "bad.json")


class _ToyStyle(nn.Module):
    """The style-family protocol (mapping -> ws, synthesis, w_avg, num_ws) on a tiny linear network."""

    def __init__(self):
        super().__init__()
        self.latent_dim, self.resolution, self.channels, self.num_classes, self.num_ws = 8, 4, 1, 0, 3
        self.map = nn.Linear(8, 6)
        self.syn = nn.Linear(6, 16)
        self.register_buffer("w_avg", torch.linspace(-0.5, 0.5, 6))

    def mapping(self, z, y=None, truncation_psi=1.0):
        w = self.map(z)
        if truncation_psi != 1.0:
            w = self.w_avg.lerp(w, truncation_psi)
        return w[:, None, :].expand(-1, self.num_ws, -1)

    def synthesis(self, ws):
        return torch.tanh(self.syn(ws.mean(1))).view(-1, 1, 4, 4)

    def generate(self, z, y):
        return self.synthesis(self.mapping(z, y))

    def forward(self, z, y=None):
        return self.generate(z, y)


def test_a_style_family_truncates_in_w_when_core_does(tmp_path):
    from core.config import TrainConfig
    torch.manual_seed(0)
    toy = _ToyStyle().eval().requires_grad_(False)
    g = LoadedGenerator(toy, TrainConfig(data="shapes", latent_dim=8), 0, 1, 0, tmp_path / "toy", [], False)
    meta = {"latent_dim": 8, "num_classes": 0, "class_names": []}
    graph, diff, notes = G.standalone_graph(g, meta)
    core_is_w = getattr(core_sampling, "truncation_space", lambda _G: "z")(toy) == "w"
    assert graph["truncation"] == ("w" if core_is_w else "none") and diff < E.PARITY_TOL
    assert bool(notes) != core_is_w
    weights = dict(toy.state_dict())
    if core_is_w:
        want = generate_seeds(g, [4, 5], 0.5)
        assert (standalone.generate(meta, graph, weights, [4, 5], 0.5) - want).abs().max() < 1e-6
    else:
        with pytest.raises(SystemExit, match="--truncation"):
            standalone.generate(meta, graph, weights, [4, 5], 0.5)


TORCH_EXPORT_SCRIPT = r"""
import json, sys, torch
extra = {"gan_studio.json": ""}
G = torch.export.load(sys.argv[1], extra_files=extra).module()
meta = json.loads(extra["gan_studio.json"])
x = torch.load(sys.argv[2], weights_only=True)
with torch.no_grad():
    torch.save({"out": G(*x["args"]), "latent_dim": meta["latent_dim"]}, sys.argv[3])
"""


@pytest.mark.parametrize("kind", ["plain", "cond"])
def test_torch_export_parity(runs, tmp_path, kind):
    """The writer reloads its .pt2 and compares; here, with a batch size other than the traced one."""
    res = E.export_generator(runs[kind], "torch-export", tmp_path / "gen")
    assert res.path.name == "gen.pt2" and res.parity is not None and res.parity < E.PARITY_TOL
    g = load_generator(runs[kind])
    z = latents(list(range(5)), g.latent_dim)
    args = [z] + ([torch.arange(5) % g.num_classes] if g.num_classes else [])
    with torch.no_grad():
        assert (torch.export.load(res.path).module()(*args) - g.G(*args)).abs().max() < E.PARITY_TOL


@pytest.mark.slow
def test_torch_export_runs_in_a_process_without_the_project(runs, tmp_path):
    """~20 s: torch.export.load imports much of torch._dynamo in the fresh process."""
    kind = "cond"  # G(z, y): the signature with the most to get wrong
    res = E.export_generator(runs[kind], "torch-export", tmp_path / "gen")
    assert res.path.name == "gen.pt2" and res.parity is not None and res.parity < E.PARITY_TOL
    assert "torch.export.load" in res.card and "recommended" in res.card
    g = load_generator(runs[kind])
    z = latents(list(range(5)), g.latent_dim)  # a batch size other than the one traced with: the batch is dynamic
    args = [z] + ([torch.arange(5) % g.num_classes] if g.num_classes else [])
    torch.save({"args": args}, tmp_path / "in.pt")
    (tmp_path / "run.py").write_text(TORCH_EXPORT_SCRIPT)
    r = _isolated(["run.py", str(res.path), str(tmp_path / "in.pt"), str(tmp_path / "out.pt")], tmp_path)
    assert r.returncode == 0, r.stderr
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    with torch.no_grad():
        want = g.G(*args)
    assert out["latent_dim"] == g.latent_dim and (out["out"] - want).abs().max() < E.PARITY_TOL


def test_onnx_uses_the_torch_export_exporter_or_says_why_not(runs, tmp_path):
    pytest.importorskip("onnx")
    res = E.export_generator(runs["plain"], "onnx", tmp_path / "gen")
    try:
        import onnxscript  # noqa: F401
        have = True
    except ImportError:
        have = False
    legacy = [n for n in res.notes if "legacy" in n]
    assert bool(legacy) != have
    if not have:
        assert "onnxscript" in legacy[0]
    if res.parity is not None:
        assert res.parity < E.PARITY_TOL


def test_cli_torch_export(runs, tmp_path, capsys):
    assert cli.main(["export", str(runs["plain"]), "--format", "torch-export", "--out", str(tmp_path / "g")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "g.pt2")


def test_model_card_has_hugging_face_front_matter(runs, tmp_path):
    ev = runs["cond"] / "evaluations.jsonl"
    ev.write_text('{"step": 2, "metric": "fid", "value": 99.0, "n": 64, "feature_net": "tiny"}\n')
    try:
        card = E.export_generator(runs["cond"], "torch-export", tmp_path / "c").card
    finally:
        ev.unlink()
    head, _, body = card.partition("\n---\n")
    lines = head.splitlines()
    assert lines[0] == "---" and body.lstrip().startswith("# Generator: ")
    assert lines[1].startswith("license: other  # placeholder") and "library_name: pytorch" in lines
    assert '- "conditional-image-generation"' in lines and '- "gan"' in lines and "pipeline_tag" not in head
    assert lines[lines.index("datasets:") + 1] == '- "shapes"'
    assert lines[lines.index("metrics:") + 1] == '- "fid"'
    plain = E.export_generator(runs["plain"], "torch-export", tmp_path / "p").card
    assert "pipeline_tag: unconditional-image-generation" in plain and '- "unconditional-image-generation"' in plain
    assert "metrics: []" in plain
    assert E.card_body(plain).startswith("# Generator: ") and E.card_body("# no front matter\n") == "# no front matter\n"
    try:
        import yaml
    except ImportError:
        return
    meta = yaml.safe_load(plain.split("---\n")[1])
    assert meta["library_name"] == "pytorch" and "gan" in meta["tags"] and meta["license"] == "other"


def test_a_family_torch_export_cannot_trace_still_gets_its_bundle(runs, tmp_path, monkeypatch):
    from core.export import writers

    def untraceable(g, meta):
        raise E.ExportError("torch.export could not trace the dcgan generator: data-dependent branch")

    monkeypatch.setattr(writers, "standalone_graph", untraceable)
    res = E.export_generator(runs["plain"], "safetensors", tmp_path / "gen")
    assert {p.name for p in res.files} == {"gen.safetensors", "gen.json", "gen.safetensors.md"}
    assert any("generate.py is not included" in n and "data-dependent" in n for n in res.notes)
    assert "graph" not in json.loads((tmp_path / "gen.json").read_text())
    assert not (tmp_path / "generate.py").exists() and "python generate.py" not in res.card
