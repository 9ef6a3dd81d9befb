"""A runs folder can be shared (a cluster's, a team's): a symbolic link planted in a run folder must never
make GAN Studio write or delete outside it (#19, finding 4). Writes refuse with an error naming the path;
deleting a run removes links, never what they point to."""
from __future__ import annotations

import os

import pytest
from faultkit import cli, tiny

from core.fsutil import JsonlAppender
from core.runs import RunError, RunStore, delete_run, write_control
from core.train import create_run, resume_run, run_training
from core.train.checkpoint import CheckpointError, save_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    t = create_run(tiny(steps=4, checkpoint_every=2, sample_every=2, eval_every=0), root)
    assert run_training(t) == "finished"
    return t.store.path


def _copy(trained, tmp_path):
    import shutil
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(trained, root / trained.name)
    return root, root / trained.name


def _outside(tmp_path, name="outside.txt", text="precious\n"):
    p = tmp_path / "elsewhere" / name
    p.parent.mkdir(exist_ok=True)
    p.write_text(text)
    return p


@pytest.mark.parametrize("name", ["events.jsonl", "metrics.jsonl", "status.json", "config.json", "control.json",
                                  ".train.lock"])
def test_store_never_writes_through_a_planted_link(trained, tmp_path, name):
    _, run = _copy(trained, tmp_path)
    target = _outside(tmp_path)
    (run / name).unlink(missing_ok=True)
    os.symlink(target, run / name)
    with pytest.raises(RunError, match=name):
        store = RunStore(run)
        store.lock()
        store.log_event("state", message="x")
        store.log_metrics({"step": 99, "loss/d": 1.0})
        store.write_status(state="stopped")
        store.truncate_metrics_after(0)
        write_control(run, state="stopped")
        resume_run(run, steps=8)  # the only writer of config.json after creation
    assert target.read_text() == "precious\n"
    assert os.path.islink(run / name)  # left as it was: the user sees what was planted


def test_appender_refuses_a_link_and_a_fifo(tmp_path):
    target = _outside(tmp_path)
    os.symlink(target, tmp_path / "evaluations.jsonl")
    with pytest.raises(ValueError, match="evaluations.jsonl"):
        JsonlAppender(tmp_path / "evaluations.jsonl")
    os.mkfifo(tmp_path / "fifo.jsonl")
    with pytest.raises(ValueError, match="fifo.jsonl"):  # would block forever opening for writing
        JsonlAppender(tmp_path / "fifo.jsonl")
    assert target.read_text() == "precious\n"


@pytest.mark.parametrize("sub", ["checkpoints", "samples"])
def test_linked_subfolder_is_refused(trained, tmp_path, sub):
    _, run = _copy(trained, tmp_path)
    outside = tmp_path / "elsewhere" / sub
    import shutil
    shutil.move(str(run / sub), str(outside.parent.mkdir(exist_ok=True) or outside))
    os.symlink(outside, run / sub)
    before = sorted(os.listdir(outside))
    with pytest.raises(RunError, match=sub):
        RunStore(run)
    if sub == "checkpoints":
        with pytest.raises(CheckpointError, match="checkpoints"):
            save_checkpoint(run / "checkpoints" / "step_0000099.pt", {"step": 99})
    assert sorted(os.listdir(outside)) == before


def test_cli_resume_refuses_a_linked_events_file(trained, tmp_path):
    _, run = _copy(trained, tmp_path)
    target = _outside(tmp_path)
    (run / "events.jsonl").unlink()
    os.symlink(target, run / "events.jsonl")
    r = cli("resume", str(run), "--steps", "8")
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and "events.jsonl" in r.stderr, r.stderr[-2000:]
    assert target.read_text() == "precious\n"


def test_deleting_a_run_never_deletes_through_a_link(trained, tmp_path):
    root, run = _copy(trained, tmp_path)
    keep = _outside(tmp_path, "data.png", "pixels")
    os.symlink(keep.parent, run / "linked-folder")
    os.symlink(keep, run / "samples" / "linked.png")
    delete_run(root, run)
    assert not run.exists()
    assert keep.read_text() == "pixels" and sorted(os.listdir(keep.parent)) == ["data.png"]


def test_deleting_a_linked_run_folder_is_refused(trained, tmp_path):
    """Before: a run folder linked to another run inside the root deleted that other run."""
    root, run = _copy(trained, tmp_path)
    alias = root / "00009-alias"
    os.symlink(run, alias)  # an alias inside the root, listed as a run of its own
    with pytest.raises(RunError, match="symbolic link"):
        delete_run(root, alias)
    assert (run / "config.json").is_file() and os.path.islink(alias)


def test_samples_swapped_for_a_link_mid_run_are_not_written_through_it(tiny_cfg, tmp_path):
    """A samples/ replaced by a link while training: the next grid is refused, nothing lands outside."""
    import os
    import shutil

    from core.train import create_run, run_training
    outside = tmp_path / "outside"
    outside.mkdir()
    t = create_run(tiny_cfg.replace(steps=6, sample_every=3, eval_every=0), tmp_path / "runs")

    def swap():
        if t.step_count == 2 and not t.store.samples_dir.is_symlink():
            shutil.rmtree(t.store.samples_dir)
            os.symlink(outside, t.store.samples_dir)
        return False
    final = run_training(t, should_stop=swap)
    assert final == "failed" and not any(outside.iterdir())
