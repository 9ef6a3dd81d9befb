"""Translation runs (#17) export, serve, translate and evaluate like generators: bundle + translate.py, .pt2, ONNX."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from translate_data import make_paired, make_unpaired

from core.cli import main
from core.config import preset
from core.train import create_run, run_training

TINY = dict(resolution=16, g_width=8, d_width=8, batch_size=4, device="cpu", threads=1, log_every=5,
            sample_every=5, checkpoint_every=5, eval_every=5, steps=5)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tr")
    paired = make_paired(tmp / "p", n=10, size=18)
    unpaired = make_unpaired(tmp / "u", n=8, size=18)
    out = {"data_p": paired, "data_u": unpaired}
    for task, data in (("pix2pix", paired), ("cyclegan", unpaired)):
        t = create_run(preset(task, data=str(data), **TINY), tmp / "runs")
        assert run_training(t) == "finished"
        out[task] = t.store.path
    return out


def _pixels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.iterdir())}


def test_pix2pix_bundle_card_and_standalone_translate_py_match_gan_studio(runs, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert main(["export", str(runs["pix2pix"]), "--out", str(out) + "/"]) == 0
    files = {p.name for p in out.iterdir()}
    assert {"translate.py", "gan_graph.py"} <= files and any(f.endswith(".graph.json") for f in files)
    card = next(out.glob("*.safetensors.md")).read_text()
    assert "translator" in card and "AtoB" in card and "16 px" in card and "channels: 3" in card
    bundle = next(out.glob("*.safetensors"))
    ref, alone, via = tmp_path / "ref", tmp_path / "alone", tmp_path / "via"
    inputs = runs["data_p"] / "A"
    assert main(["translate", str(runs["pix2pix"]), "--input", str(inputs), "--out", str(ref)]) == 0
    assert main(["translate", str(bundle), "--input", str(inputs), "--out", str(via)]) == 0
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(outside)}
    r = subprocess.run([sys.executable, "-I", str(out / "translate.py"), "--input", str(inputs), "--out", str(alone)],
                       cwd=outside, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    want = _pixels(ref)
    for got in (_pixels(via), _pixels(alone)):
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)


def test_cyclegan_exports_both_directions_as_pt2_and_onnx(runs, tmp_path, capsys):
    import torch
    assert main(["export", str(runs["cyclegan"]), "--format", "torch-export", "--out", str(tmp_path) + "/"]) == 0
    pt2 = sorted(tmp_path.glob("*.pt2"))
    assert [p.name.split("-")[-1] for p in pt2] == ["AtoB.pt2", "BtoA.pt2"]
    assert "max difference from PyTorch" in capsys.readouterr().err
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.export.load(str(pt2[0])).module()(x).shape == (2, 3, 16, 16)
    pytest.importorskip("onnxruntime")
    ckpt = sorted((runs["cyclegan"] / "checkpoints").glob("step_*.pt"))[-1]  # what the Export page passes
    assert main(["export", str(ckpt), "--format", "onnx"]) == 0  # default: RUN/exports/
    assert len(list((runs["cyclegan"] / "exports").glob("*-step0000005-*.onnx"))) == 2
    assert main(["export", str(runs["cyclegan"]), "--format", "torchscript"]) == 2
    assert "torch-export replaces TorchScript" in capsys.readouterr().err


def test_serve_answers_translate_from_a_cyclegan_bundle(runs, tmp_path):
    import urllib.request

    from core.serve import BackgroundServer
    from core.serve.translate_app import build_translate_app, is_translation_source, load_translators
    assert main(["export", str(runs["cyclegan"]), "--out", str(tmp_path) + "/"]) == 0
    bundle = next(tmp_path.glob("*.safetensors"))
    for src in (bundle, bundle.with_suffix(".json")):
        assert is_translation_source(src)
        nets, cfg, c = load_translators(src)
        assert sorted(nets) == ["AtoB", "BtoA"] and c == 3
    app = build_translate_app(nets, cfg, c, str(bundle))
    img = next((runs["data_u"] / "B").iterdir()).read_bytes()
    with BackgroundServer(app) as url:
        req = urllib.request.Request(url + "/translate?direction=BtoA", data=img, method="POST")
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 200 and r.headers["content-type"] == "image/png" and r.headers["x-direction"] == "BtoA"


def test_evaluate_records_held_out_scores_for_both_tasks(runs, capsys):
    for task, metrics in (("pix2pix", {"l1", "psnr", "ssim"}), ("cyclegan", {"cycle_l1_aba", "cycle_l1_bab"})):
        assert main(["evaluate", str(runs[task])]) == 0, capsys.readouterr().err
        rows = [json.loads(x) for x in (runs[task] / "evaluations.jsonl").read_text().splitlines()]
        assert metrics <= {r["metric"] for r in rows}
        assert all(r["feature_net"] == "none (pixels)" for r in rows)
    assert "held-out" in capsys.readouterr().out


def test_runs_page_evaluate_scores_a_translation_run(runs, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(runs["pix2pix"].parent))
    st.cache_resource.clear()
    logs = [runs[t] / "evaluations.jsonl" for t in ("pix2pix", "cyclegan")]
    before = sum(len(p.read_text().splitlines()) for p in logs if p.exists())
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "studio" / "pages" / "runs.py"), default_timeout=90)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    go = [b for b in at.button if b.label == "Run evaluation"]
    assert len(go) == 2 and all(b.key.endswith("_tgo") for b in go)  # translation runs get their own popover
    go[0].click().run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    st.cache_resource.clear()
    rows = [json.loads(x) for p in logs if p.exists() for x in p.read_text().splitlines()]
    assert len(rows) > before and {r["metric"] for r in rows} & {"l1", "cycle_l1_aba"}


def test_a_crafted_translator_bundle_is_one_line(tmp_path, capsys):
    meta = {"format": "gan-studio-translator", "version": 1, "directions": ["AtoB"], "channels": 3,
            "resolution": 10**6, "config": {}, "weights": "x.safetensors"}
    (tmp_path / "x.json").write_text(json.dumps(meta))
    (tmp_path / "in.png").write_bytes(b"")
    assert main(["translate", str(tmp_path / "x.json"), "--input", str(tmp_path / "in.png"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "'resolution' must be an integer" in err and "Traceback" not in err
    assert main(["export", str(tmp_path / "x.json")]) == 2
    assert "already an exported translator" in capsys.readouterr().err
