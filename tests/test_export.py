"""core.export: safetensors bundles, TorchScript in a process without the project, ONNX parity,
model cards, the CLI, and refusing files that are not ours (without executing them)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core import export as E
from core.export import writers
from core.generator import BUNDLE_FORMAT, BundleError, generate, latents, load_bundle, load_generator
from core.train import run_training
from core.train.checkpoint import CheckpointError

ROOT = Path(__file__).resolve().parent.parent


def _make_run(root, **kw):
    from core.config import TrainConfig
    from core.train import create_run
    base = dict(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=4,
                checkpoint_every=2, device="cpu", threads=1)
    cfg = TrainConfig(**{**base, **kw})
    t = create_run(cfg, root)
    assert run_training(t) == "finished"
    return t.store.path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    # dcgan unconditional, and resnet-sn conditional (class-conditional BatchNorm, a y input)
    return {"plain": _make_run(root), "cond": _make_run(root, arch="resnet-sn", conditional=True, steps=2)}


def _inputs(g, n=5, seed=0):
    z = latents(list(range(seed, seed + n)), g.latent_dim)
    y = torch.arange(n) % g.num_classes if g.num_classes else None
    return z, y


@pytest.mark.parametrize("kind", ["plain", "cond"])
def test_safetensors_bundle_round_trip(runs, tmp_path, kind):
    g = load_generator(runs[kind])
    res = E.export_generator(runs[kind], "safetensors", tmp_path / "gen")
    assert res.path == tmp_path / "gen.safetensors"
    assert {p.name for p in res.files} == {"gen.safetensors", "gen.json", "gen.graph.json", "generate.py", "gen.safetensors.md"}
    z, y = _inputs(g)
    want = generate(g.G, z, y)
    for src in (res.path, tmp_path / "gen.json"):
        b = load_bundle(src)
        assert torch.equal(generate(b.G, z, y), want)
        assert (b.step, b.num_classes, b.channels, b.uses_ema) == (g.step, g.num_classes, g.channels, g.uses_ema)
    assert torch.equal(generate(load_generator(res.path).G, z, y), want)  # load_generator accepts bundles
    meta = json.loads((tmp_path / "gen.json").read_text())
    assert meta["format"] == BUNDLE_FORMAT and meta["config"]["arch"] == ("dcgan" if kind == "plain" else "resnet-sn")
    assert meta["dataset"]["fingerprint"] == g.dataset["fingerprint"]
    if kind == "cond":
        assert meta["class_names"] == ["circle", "square", "triangle", "ring"]
    # the safetensors file alone is enough (the JSON is embedded in its header)
    (tmp_path / "gen.json").unlink()
    assert torch.equal(generate(load_bundle(res.path).G, z, y), want)


def test_model_card(runs, tmp_path):
    rows = [{"step": 2, "metric": "fid", "value": 300.0, "std": None, "n": 64, "feature_net": "tiny"},
            {"step": 4, "metric": "fid", "value": 250.5, "std": None, "n": 64, "feature_net": "tiny"},
            {"step": 4, "metric": "kid", "value": 0.125, "std": 0.01, "n": 64, "feature_net": "tiny"}]
    ev = runs["plain"] / "evaluations.jsonl"
    ev.write_text("".join(json.dumps(r) + "\n" for r in rows))
    try:
        res = E.export_generator(runs["plain"], "safetensors", tmp_path / "gen.safetensors")
    finally:
        ev.unlink()
    card = res.card_path.read_text()
    assert card == res.card
    assert "| fid (tiny, n=64) | 250.5 | 4 |" in card and "| kid (tiny, n=64) | 0.125 ± 0.01 | 4 |" in card
    for needle in ("# Generator: ", "| Architecture | dcgan |", "| Resolution | 16 x 16 px |", "| Channels | 3",
                   "| Fingerprint |", "| Images | 8,000 |", "| Training steps | 4 |", "loss/d", "## How to load",
                   "load_bundle", '"latent_dim": 16', "Exported "):
        assert needle in card, needle


def test_default_output_goes_into_the_run_exports_folder(runs):
    res = E.export_generator(runs["plain"], "safetensors")
    assert res.path.parent == runs["plain"] / "exports"
    assert res.path.name.endswith("-step0000004.safetensors")


TS_SCRIPT = r"""
import json, sys
import torch
root = sys.argv[1]
assert not any(p and root in p for p in sys.path), sys.path
try:
    import core.generator  # noqa: F401
    raise SystemExit("the project is importable: the test is not isolated")
except ImportError:
    pass
for model, inp, out in zip(*[iter(sys.argv[2:])] * 3):
    extra = {"gan_studio.json": ""}
    G = torch.jit.load(model, map_location="cpu", _extra_files=extra).eval()
    meta = json.loads(extra["gan_studio.json"])
    x = torch.load(inp, weights_only=True)
    args = [x["z"]] + ([x["y"]] if "y" in x else [])
    with torch.no_grad():
        torch.save({"out": G(*args), "latent_dim": meta["latent_dim"]}, out)
print("ok")
"""


def test_torchscript_runs_without_the_project(runs, tmp_path):
    """Both an unconditional G(z) and a conditional G(z, y), loaded with plain torch.jit.load in a
    process where the project is not importable (cwd elsewhere, no PYTHONPATH)."""
    argv, expected = [], {}
    for kind in ("plain", "cond"):
        g = load_generator(runs[kind])
        res = E.export_generator(runs[kind], "torchscript", tmp_path / kind)
        assert res.path.name == f"{kind}.torchscript.pt" and res.parity == 0.0
        z, y = _inputs(g, n=6)
        torch.save({"z": z, **({"y": y} if y is not None else {})}, tmp_path / f"{kind}_in.pt")
        argv += [str(res.path), str(tmp_path / f"{kind}_in.pt"), str(tmp_path / f"{kind}_out.pt")]
        expected[kind] = generate(g.G, z, y)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    proc = subprocess.run([sys.executable, "-c", TS_SCRIPT, str(ROOT), *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for kind, want in expected.items():
        got = torch.load(tmp_path / f"{kind}_out.pt", weights_only=True)
        assert got["latent_dim"] == 16
        assert torch.allclose(got["out"], want, atol=1e-6)


@pytest.mark.parametrize("kind", ["plain", "cond"])
def test_onnx_matches_pytorch(runs, tmp_path, kind):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    g = load_generator(runs[kind])
    res = E.export_generator(runs[kind], "onnx", tmp_path / "gen.onnx")
    assert res.parity is not None and res.parity < 1e-4
    sess = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    for n in (1, 7):  # dynamic batch
        z, y = _inputs(g, n=n, seed=40)
        feeds = {"z": z.numpy()}
        if y is not None:
            feeds["y"] = y.numpy()
        out = sess.run(["images"], feeds)[0]
        assert out.shape == (n, 3, 16, 16)
        assert abs(out - generate(g.G, z, y).numpy()).max() < 1e-4


def test_onnx_unavailable_is_a_clear_message(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(writers, "onnx_status", lambda: (False, "ONNX export needs the 'onnx' package: pip install onnx"))
    with pytest.raises(E.ExportError, match="pip install onnx"):
        E.export_generator(runs["plain"], "onnx", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(E.ExportError, match="valid: safetensors, torch-export, onnx, torchscript"):
        E.export_generator(runs["plain"], "pickle", tmp_path / "x")


class _Boom:
    def __reduce__(self):
        return (os.system, (f"touch {_Boom.marker}",))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_foreign_and_pickled_files_are_refused_without_running_them(runs, tmp_path):
    _Boom.marker = tmp_path / "PWNED"
    evil = pickle.dumps({"format": "gan-studio-checkpoint", "x": _Boom()})
    for name in ("evil.pt", "evil.safetensors", "evil.json"):
        (tmp_path / name).write_bytes(evil)
        with pytest.raises(CheckpointError) as e:
            load_generator(tmp_path / name)
        assert name in str(e.value)
    assert not _Boom.marker.exists()
    # a real safetensors file that is not a bundle, and a JSON that is not ours
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(BundleError, match="other.safetensors .*not a GAN Studio generator bundle"):
        load_bundle(tmp_path / "other.safetensors")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BundleError, match="other.json is not a GAN Studio generator bundle"):
        load_generator(tmp_path / "other.json")
    # a JSON may not point its weights outside its folder
    res = E.export_generator(runs["plain"], "safetensors", tmp_path / "ok.safetensors")
    meta = json.loads((tmp_path / "ok.json").read_text())
    meta["weights"] = "../ok.safetensors"
    (tmp_path / "bad.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="beside the JSON"):
        load_bundle(tmp_path / "bad.json")
    # TorchScript / ONNX exports are programs: refused by name, never run
    ts = E.export_generator(runs["plain"], "torchscript", tmp_path / "g.torchscript.pt")
    with pytest.raises(CheckpointError, match="g.torchscript.pt is a TorchScript program"):
        load_generator(ts.path)
    with pytest.raises(CheckpointError, match="ONNX"):
        (tmp_path / "g.onnx").write_bytes(b"\x08\x07")
        load_generator(tmp_path / "g.onnx")
    assert res.path.exists()


def test_cli_export(runs, tmp_path, capsys):
    from core.cli import main
    out = tmp_path / "cli" / "model.safetensors"
    assert main(["export", str(runs["plain"]), "--format", "safetensors", "--out", str(out),
                 "--checkpoint", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert load_bundle(out).step == 2 and (tmp_path / "cli" / "model.safetensors.md").exists()
    assert main(["export", str(runs["plain"]), "--checkpoint", "best", "--out", str(tmp_path / "b")]) == 2
    assert "best.pt" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope")]) == 2
    # generate from a conditional bundle by class name or index: same class -> same images
    b = tmp_path / "cond.safetensors"
    assert main(["export", str(runs["cond"]), "--out", str(b)]) == 0
    assert main(["generate", str(b), "-n", "2", "--class", "square", "--out", str(tmp_path / "s1")]) == 0
    assert main(["generate", str(runs["cond"]), "-n", "2", "--class", "1", "--out", str(tmp_path / "s2")]) == 0
    a1 = sorted((tmp_path / "s1").glob("*.png"))
    assert [p.read_bytes() for p in a1] == [p.read_bytes() for p in sorted((tmp_path / "s2").glob("*.png"))]
    assert main(["generate", str(b), "--class", "hexagon", "--out", str(tmp_path / "s3")]) == 2
    assert "valid: circle, square, triangle, ring" in capsys.readouterr().err
