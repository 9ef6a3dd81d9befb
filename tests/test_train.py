"""Trainer, loop, checkpoints and resume: exact resume equivalence, atomic saves, failure states."""
from __future__ import annotations

import errno
import json
import threading
import time

import pytest
import torch
from polling import wait_for

from core.config import ConfigError, TrainConfig
from core.runs import load_run, write_control
from core.train import create_run, fork_run, load_checkpoint, resume_run, run_training
from core.train.checkpoint import CheckpointError, latest_valid_checkpoint, list_checkpoints, save_checkpoint


def _weights(t):
    return {k: v.clone() for k, v in t.G.state_dict().items()} | {f"D.{k}": v.clone() for k, v in t.D.state_dict().items()}


def test_run_writes_the_run_folder_contract(tiny_cfg, tmp_path):
    t = create_run(tiny_cfg, tmp_path)
    assert run_training(t) == "finished"
    info = load_run(t.store.path)
    assert info.state == "finished" and info.step == 6 and not info.problems
    assert info.config["resolution"] == 16 and info.meta["dataset"]["count"] > 0
    assert (t.store.path / "reals.png").exists()
    assert [s for s, _ in info.samples()] == [0, 3, 6]
    assert [p.name for p in info.checkpoints()] == ["step_0000003.pt", "step_0000006.pt"]
    rows = info.metrics()
    assert [r["step"] for r in rows] == [1, 2, 4, 6]
    for key in ("loss/d", "loss/g", "d/real", "d/fake", "grad/g", "grad/d", "lr/g", "perf/img_per_s", "mem/peak_gb"):
        assert key in rows[-1], key
    assert 0 <= rows[-1]["d/real"] <= 1  # bce reports probabilities
    assert [e["state"] for e in info.events() if e["type"] == "state"] == ["starting", "running", "finished"]


def test_resume_equals_uninterrupted_run(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(steps=8, checkpoint_every=4, diffaug="translation,cutout,color", instance_noise=0.1)
    straight = create_run(cfg, tmp_path / "a")
    run_training(straight)
    part = create_run(cfg, tmp_path / "b")
    assert run_training(part, should_stop=lambda: part.step_count >= 4) == "stopped"  # interrupted half-way
    resumed = resume_run(part.store.path)
    assert resumed.step_count == 4
    assert run_training(resumed) == "finished"
    wa, wb = _weights(straight), _weights(resumed)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6, msg=k)
    ema_a, ema_b = straight.ema.model.state_dict(), resumed.ema.model.state_dict()
    for k in ema_a:
        torch.testing.assert_close(ema_a[k], ema_b[k], rtol=1e-5, atol=1e-6)
    steps = [r["step"] for r in load_run(part.store.path).metrics()]
    assert len(steps) == len(set(steps)) and steps[-1] == 8  # no duplicated steps after resume


def test_resume_refuses_structural_change(tiny_cfg, tmp_path):
    t = create_run(tiny_cfg, tmp_path)
    run_training(t)
    with pytest.raises(ConfigError) as e:
        resume_run(t.store.path, steps=12, changes={"g_width": 16})
    assert e.value.field == "g_width"
    with pytest.raises(ConfigError) as e:
        resume_run(t.store.path, steps=3)
    assert e.value.field == "steps"
    t2 = resume_run(t.store.path, steps=8, changes={"lr_g": 1e-4})  # a rate may change
    assert t2.cfg.lr_g == 1e-4


def test_minutes_budget_is_a_total_across_resumes(tiny_cfg, tmp_path):
    """A time-budgeted run interrupted and resumed trains as long in total as an uninterrupted one
    (the budget counts every session, as steps do); a used-up budget must be raised to resume."""
    cfg = tiny_cfg.replace(steps=10**6, minutes=0.04, checkpoint_every=50, sample_every=10**5)
    t = create_run(cfg, tmp_path)
    assert run_training(t, should_stop=lambda: t.step_count >= 5) == "stopped"  # interrupted early
    first = load_checkpoint(latest_valid_checkpoint(t.store.checkpoints_dir)[0])["train_seconds"]
    assert 0 < first < 2.4
    resumed = resume_run(t.store.path)
    assert resumed.train_seconds == first  # continues the clock, not a fresh 2.4 s
    assert run_training(resumed) == "finished"
    total = resumed.train_seconds
    assert 2.4 <= total < 2.4 + 1.0, total  # one budget in all, not 2.4 s more
    assert load_run(t.store.path).status["elapsed_s"] == pytest.approx(total)
    with pytest.raises(ConfigError) as e:
        resume_run(t.store.path)
    assert e.value.field == "minutes" and "already trained" in str(e.value)
    more = resume_run(t.store.path, minutes=0.06)
    assert run_training(more) == "finished" and 3.6 <= more.train_seconds < 3.6 + 1.0
    forked = fork_run(t.store.path, {}, tmp_path)
    assert forked.train_seconds == 0.0  # a fork is a new run: its own budget


def test_failed_checkpoint_write_keeps_previous(tiny_cfg, tmp_path, monkeypatch):
    t = create_run(tiny_cfg, tmp_path)
    run_training(t)
    good = list_checkpoints(t.store.checkpoints_dir)[-1][1]
    before = good.read_bytes()
    import core.fsutil as fsutil

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(fsutil.os, "replace", full_disk)
    with pytest.raises(OSError):
        save_checkpoint(good, t.state_dict())
    monkeypatch.undo()
    assert good.read_bytes() == before
    assert load_checkpoint(good)["step"] == 6
    assert not [p for p in t.store.checkpoints_dir.iterdir() if p.name.endswith(".tmp")]


def test_corrupt_newest_checkpoint_falls_back(tiny_cfg, tmp_path):
    t = create_run(tiny_cfg, tmp_path)
    run_training(t)
    newest = list_checkpoints(t.store.checkpoints_dir)[-1][1]
    newest.write_bytes(newest.read_bytes()[:1000])  # a torn copy
    with pytest.raises(CheckpointError):
        load_checkpoint(newest)
    path, state = latest_valid_checkpoint(t.store.checkpoints_dir)
    assert path.name == "step_0000003.pt" and state["step"] == 3


def test_disk_full_during_training_fails_cleanly(tiny_cfg, tmp_path, monkeypatch):
    t = create_run(tiny_cfg.replace(steps=6, checkpoint_every=3), tmp_path)
    import core.train.loop as loop
    real_save = loop.save_checkpoint
    calls = {"n": 0}

    def save(path, state):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(path, state)
    monkeypatch.setattr(loop, "save_checkpoint", save)
    assert run_training(t) == "failed"
    info = load_run(t.store.path)
    assert "Disk full" in info.status["message"]
    assert load_checkpoint(t.store.checkpoints_dir / "step_0000003.pt")["step"] == 3


def test_nonfinite_loss_ends_as_diverged_without_bad_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    t = create_run(tiny_cfg.replace(steps=20, checkpoint_every=2, log_every=2), tmp_path)
    orig = t.loss.d_loss

    def poisoned(real, fake, real_target=1.0):
        out = orig(real, fake, real_target)
        return out * float("nan") if t.step_count >= 3 else out
    monkeypatch.setattr(t.loss, "d_loss", poisoned)
    assert run_training(t) == "diverged"
    info = load_run(t.store.path)
    assert info.state == "diverged" and "Lower the learning rates" in info.status["message"]
    for _, p in list_checkpoints(t.store.checkpoints_dir):
        st = load_checkpoint(p)
        assert all(torch.isfinite(v).all() for v in st["G"].values() if v.is_floating_point())
    nulls = [r for r in info.metrics() if r.get("nonfinite")]
    assert nulls and nulls[-1]["loss/d"] is None  # written as JSON null, not NaN
    json.loads((t.store.path / "metrics.jsonl").read_text().splitlines()[-1])


def test_out_of_memory_names_batch_and_resolution(tiny_cfg, tmp_path, monkeypatch):
    t = create_run(tiny_cfg, tmp_path)

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory (injected)")
    monkeypatch.setattr(t, "step", oom)
    assert run_training(t) == "failed"
    info = load_run(t.store.path)
    msg = info.status["message"]
    assert "batch_size=8" in msg and "resolution=16" in msg and "batch_size=4" in msg
    offer = [e for e in info.events() if e.get("kind") == "out_of_memory"]
    assert offer and offer[0]["fix"] == {"batch_size": 4}  # the studio's one-click retry at half the batch
    tiny_cfg.replace(**offer[0]["fix"]).validate()


def test_control_file_pauses_checkpoints_and_stops(tiny_cfg, tmp_path):
    t = create_run(tiny_cfg.replace(steps=100000, checkpoint_every=100000, log_every=5), tmp_path)
    th = threading.Thread(target=run_training, args=(t,), daemon=True)
    th.start()
    run = t.store.path

    assert wait_for(lambda: load_run(run).status.get("state") == "running" and load_run(run).step > 0)
    write_control(run, state="paused")
    assert wait_for(lambda: load_run(run).status.get("state") == "paused")
    s1 = t.step_count
    time.sleep(0.8)
    assert t.step_count == s1  # really paused
    write_control(run, checkpoint=True)
    assert wait_for(lambda: any(e.get("reason") == "requested" for e in load_run(run).events()))
    write_control(run, state="running")
    assert wait_for(lambda: t.step_count > s1)
    write_control(run, state="stopped")
    th.join(30)
    assert not th.is_alive()
    info = load_run(run)
    assert info.state == "stopped" and info.checkpoints()


def test_fork_starts_new_folder_from_checkpoint(tiny_cfg, tmp_path):
    src = create_run(tiny_cfg, tmp_path)
    run_training(src)
    f = fork_run(src.store.path, {"lr_d": 1e-4, "steps": 9})
    assert f.store.path != src.store.path and f.step_count == 6 and f.cfg.lr_d == 1e-4
    torch.testing.assert_close(f.G.state_dict(), src.G.state_dict())
    assert load_run(f.store.path).meta["forked_from"]["step"] == 6
    with pytest.raises(ConfigError) as e:
        fork_run(src.store.path, {"resolution": 32, "steps": 9})
    assert e.value.field == "resolution"


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet-sn"])
@pytest.mark.parametrize("loss", ["bce", "wgan", "wgan-gp", "hinge", "lsgan"])
def test_every_arch_and_loss_trains(tiny_cfg, arch, loss):
    from core.data import load_dataset
    from core.train import Trainer
    cfg = tiny_cfg.replace(arch=arch, loss=loss, n_critic=2, r1_weight=0.0 if loss == "wgan-gp" else 1.0,
                           label_smoothing=0.1 if loss == "bce" else 0.0, feature_matching=0.1, minibatch_std=True)
    ds = load_dataset("shapes", 16)
    t = Trainer(cfg, ds)
    out = t.step(want_grad_norms=True)
    out = t.step(want_grad_norms=True)
    for k, v in out.items():
        assert torch.isfinite(v).all(), (k, v)
    assert ("gp" in out) == (loss == "wgan-gp")
    if loss == "wgan":
        assert max(p.abs().max().item() for p in t.D.parameters()) <= cfg.clip_value + 1e-7


def test_conditional_training_and_grid_rows(tiny_cfg, tmp_path):
    t = create_run(tiny_cfg.replace(conditional=True, steps=2), tmp_path)
    assert t.num_classes >= 2 and t.fixed_y is not None
    assert run_training(t) == "finished"


def test_conditional_needs_classes(tiny_cfg, tmp_path, image_folder):
    with pytest.raises(ConfigError) as e:
        create_run(tiny_cfg.replace(data=str(image_folder), conditional=True), tmp_path)
    assert e.value.field == "conditional"


def test_same_seed_same_losses(tiny_cfg):
    from core.data import load_dataset
    from core.train import Trainer
    ds = load_dataset("shapes", 16)
    a = [Trainer(tiny_cfg, ds).step() for _ in range(1)]
    b = [Trainer(tiny_cfg, ds).step() for _ in range(1)]
    assert float(a[0]["loss/d"]) == float(b[0]["loss/d"])


def test_config_validation_names_field():
    with pytest.raises(ConfigError) as e:
        TrainConfig(resolution=48).validate()
    assert e.value.field == "resolution"
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict({"lr_g": "fast"})
    assert e.value.field == "lr_g"
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict({"learning_rate": 1})
    assert e.value.field == "learning_rate"
    cfg = TrainConfig(arch="resnet-sn", lr_d=4e-4)
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg


def test_the_default_run_name_says_family_loss_and_data(tiny_cfg, tmp_path):
    from core.train.setup import default_name
    assert default_name(tiny_cfg.replace(loss="hinge")) == "dcgan-hinge-shapes"
    assert default_name(tiny_cfg.replace(data="/home/me/cats")) == "dcgan-bce-cats"
    assert default_name(tiny_cfg.replace(name="mine")) == "mine"
