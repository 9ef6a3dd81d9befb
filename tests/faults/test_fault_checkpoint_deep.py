"""Checkpoint fallback is deep and bundle metadata is checked before anything is allocated (#19, findings
10 and 13): a newest checkpoint with the right format marker but wrong shapes or missing keys is skipped
with a warning naming the file; crafted bundle metadata gives the bundle's error, never a traceback, and a
tiny bundle asking for a huge generator is refused on the meta device."""
from __future__ import annotations

import json

import pytest
import torch
from faultkit import tiny

from core.generator import bundle as bundle_mod
from core.generator import load_generator
from core.generator.bundle import BundleError, load_bundle
from core.runs import load_run
from core.train import create_run, resume_run, run_training
from core.train.checkpoint import CheckpointError, checkpoint_name, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    t = create_run(tiny(steps=6, checkpoint_every=3, sample_every=10**6, eval_every=0), root)
    assert run_training(t) == "finished"
    return t.store.path


def _crafted(state: dict, how: str) -> dict:
    s = dict(state)
    if how == "shape":
        g = dict(s["G"])
        k = next(k for k, v in g.items() if v.ndim >= 2)
        g[k] = torch.zeros(*[d + 1 for d in g[k].shape])
        s["G"] = g
    elif how == "no-config":
        del s["config"]
    elif how == "missing-key":
        d = dict(s["D"])
        d.pop(next(iter(d)))
        s["D"] = d
    elif how == "bad-step":
        s["step"] = "nine"
    elif how == "bad-config":
        s["config"] = {**s["config"], "g_width": "wide"}
    return s


@pytest.mark.parametrize("how", ["shape", "no-config", "missing-key", "bad-step", "bad-config"])
def test_resume_falls_back_past_a_mismatched_newest_checkpoint(trained, tmp_path, how):
    import shutil
    run = tmp_path / trained.name
    shutil.copytree(trained, run)
    good = run / "checkpoints" / checkpoint_name(6)
    bad = run / "checkpoints" / checkpoint_name(9)
    save_checkpoint(bad, _crafted(load_checkpoint(good), how))
    t = resume_run(run, steps=12)
    try:
        assert t.resumed_from == good and t.step_count == 6
        warn = [e["message"] for e in load_run(run).events() if e.get("type") == "warning"]
        assert any(bad.name in m for m in warn), warn
    finally:
        t.store.write_status(state="stopped")
        t.store.close()
    assert load_generator(run).source == good  # generate/export/evaluate's "latest" skips it too
    with pytest.raises(CheckpointError, match=bad.name):  # named explicitly: a one-line error, no traceback
        load_generator(bad)


def test_best_pt_with_wrong_shapes_is_not_resumed_from(trained, tmp_path):
    import shutil
    run = tmp_path / trained.name
    shutil.copytree(trained, run)
    good = run / "checkpoints" / checkpoint_name(6)
    state = _crafted(load_checkpoint(good), "shape")
    state["step"] = 100
    save_checkpoint(run / "checkpoints" / "best.pt", state)
    t = resume_run(run, steps=12)
    try:
        assert t.resumed_from == good
    finally:
        t.store.write_status(state="stopped")
        t.store.close()


# ------------------------------------------------------------------ bundles
def _bundle(path, meta: dict | str, tensors: dict[str, torch.Tensor] | None = None):
    from safetensors.torch import save_file
    save_file(tensors or {"w": torch.zeros(2)}, str(path),
              metadata={"bundle": meta if isinstance(meta, str) else json.dumps(meta)})
    return path


def _meta(**over):
    cfg = tiny().to_dict()
    return {"format": "gan-studio-generator", "version": 1, "config": cfg, "channels": 3, "num_classes": 0,
            "step": 6, **over}


@pytest.mark.parametrize("meta", [
    _meta(version="x"), _meta(version=[1]), _meta(channels="3"), _meta(num_classes=-1), _meta(step="six"),
    _meta(config="dcgan"), _meta(config={**tiny().to_dict(), "g_width": "wide"}),
    _meta(config={**tiny().to_dict(), "resolution": 17}), _meta(config={"bogus": 1}),
    '{"format": "gan-studio-generator", "version": 1, "config": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"format": "gan-studio-generator", "version": 1, "config": {"a": ' + "[" * 200 + "]" * 200 + "}}",
], ids=["version-str", "version-list", "channels-str", "classes-neg", "step-str", "config-str", "g_width-str",
        "resolution-17", "unknown-field", "deep-json", "deep-200"])
def test_crafted_bundle_metadata_gives_the_bundle_error(tmp_path, meta):
    p = _bundle(tmp_path / "g.safetensors", meta)
    with pytest.raises(BundleError, match="g.safetensors"):
        load_bundle(p)
    side = tmp_path / "h.json"  # the same metadata as a bundle's JSON beside its weights
    side.write_text(meta if isinstance(meta, str) else json.dumps({**meta, "weights": "g.safetensors"}))
    with pytest.raises(BundleError, match="h.json"):
        load_bundle(side)


def test_tiny_bundle_asking_for_a_huge_generator_is_refused_before_allocating(tmp_path, monkeypatch):
    """Before: the generator was built on the CPU from the metadata (g_width=1024, latent_dim=4096 at 256 px:
    > 13 GB) before any tensor was compared. Now shapes are compared with the file's on the meta device."""
    devices = []
    real = bundle_mod.build_models

    def spy(*a, **k):
        devices.append(torch.empty(0).device.type)  # the default device the networks are built on
        return real(*a, **k)

    monkeypatch.setattr(bundle_mod, "build_models", spy)
    small = _bundle(tmp_path / "small.safetensors", _meta(config={**tiny().to_dict(), "g_width": 64}))
    with pytest.raises(BundleError, match="small.safetensors"):
        load_bundle(small)
    assert devices and set(devices) == {"meta"}, devices
    huge = _bundle(tmp_path / "huge.safetensors", _meta(config={**tiny().to_dict(), "g_width": 1024,
                                                                "latent_dim": 4096, "resolution": 256}))
    with pytest.raises(BundleError, match="huge.safetensors"):
        load_bundle(huge)
