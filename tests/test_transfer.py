"""init_from: a new run starts from another run's weights (other data allowed); mismatches are refused before any folder exists."""
from __future__ import annotations

import shutil

import pytest
import torch

from core.config import ConfigError
from core.runs import load_run
from core.train import create_run, resume_run, run_training


@pytest.fixture
def source(tiny_cfg, tmp_path):
    t = create_run(tiny_cfg.replace(steps=4, checkpoint_every=4, eval_every=0), tmp_path / "src")
    run_training(t)
    return t


def test_a_new_run_starts_from_the_source_weights_on_other_data(source, tiny_cfg, tmp_path, image_folder):
    runs = tmp_path / "new"
    t = create_run(tiny_cfg.replace(data=str(image_folder), init_from=str(source.store.path), steps=6), runs)
    assert t.step_count == 0 and t.dataset.source != source.dataset.source
    for k, v in source.G.state_dict().items():
        torch.testing.assert_close(t.G.state_dict()[k], v, msg=k)
    for k, v in source.ema.model.state_dict().items():
        torch.testing.assert_close(t.ema.model.state_dict()[k], v, msg=k)
    info = load_run(t.store.path)
    assert info.meta["init_from"]["step"] == 4
    assert any(e.get("type") == "transfer" for e in info.events())
    assert run_training(t, should_stop=lambda: t.step_count >= 2) == "stopped"
    shutil.rmtree(source.store.path)  # the source may go: the new run resumes from its own checkpoints
    r = resume_run(t.store.path)
    assert r.step_count == 2 and run_training(r) == "finished"


def test_a_checkpoint_file_works_too(source, tiny_cfg, tmp_path):
    ck = sorted((source.store.path / "checkpoints").glob("step_*.pt"))[-1]
    t = create_run(tiny_cfg.replace(init_from=str(ck)), tmp_path / "new")
    torch.testing.assert_close(t.D.state_dict(), source.D.state_dict())


@pytest.mark.parametrize("change, field", [({"g_width": 16}, "g_width"), ({"arch": "resnet-sn"}, "arch"),
                                           ({"resolution": 32}, "resolution")])
def test_mismatched_shapes_are_refused_before_a_folder_exists(source, tiny_cfg, tmp_path, change, field):
    runs = tmp_path / "new"
    with pytest.raises(ConfigError) as e:
        create_run(tiny_cfg.replace(init_from=str(source.store.path), **change), runs)
    assert e.value.field == "init_from" and field in str(e.value)
    assert not runs.exists() or not any(runs.iterdir())


def test_a_missing_source_is_named(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match="no such run folder"):
        create_run(tiny_cfg.replace(init_from=str(tmp_path / "nope")), tmp_path / "new")
    empty = tmp_path / "empty-run"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no usable checkpoint"):
        create_run(tiny_cfg.replace(init_from=str(empty)), tmp_path / "new")


def test_a_fork_of_a_transferred_run_does_not_need_the_first_source(source, tiny_cfg, tmp_path):
    from core.train import fork_run
    t = create_run(tiny_cfg.replace(init_from=str(source.store.path), steps=4), tmp_path / "new")
    run_training(t)
    shutil.rmtree(source.store.path)
    f = fork_run(t.store.path, {"steps": 6, "lr_g": 1e-4})
    assert f.cfg.init_from == "" and f.step_count == 4
