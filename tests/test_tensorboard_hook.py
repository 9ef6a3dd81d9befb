"""`train/resume --tensorboard`: metrics, sample grids and findings mirrored into RUN/tb/ (with a recording
writer everywhere; with the real SummaryWriter when tensorboard is installed); a clear error without it."""
from __future__ import annotations

import json

import pytest

from core import cli
from core.train import tensorboard_hook as tb

ARGS = ["--data", "shapes", "--resolution", "16", "--steps", "4", "--device", "cpu", "--quiet",
        "--set", "g_width=8", "--set", "d_width=8", "--set", "latent_dim=16", "--set", "batch_size=8",
        "--set", "log_every=1", "--set", "sample_every=2", "--set", "checkpoint_every=4", "--set", "threads=1"]


class _Recorder:
    def __init__(self, log_dir):
        self.log_dir, self.scalars, self.images, self.texts, self.closed = log_dir, [], [], [], False

    def add_scalar(self, k, v, step):
        self.scalars.append((k, v, step))

    def add_image(self, k, arr, step, dataformats):
        self.images.append((k, arr.shape, step, dataformats))

    def add_text(self, k, text, step):
        self.texts.append((k, text, step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def _only_run(root):
    (run,) = [p for p in root.iterdir() if p.is_dir()]
    return run


def test_train_and_resume_mirror_metrics_samples_and_findings(tmp_path, monkeypatch):
    made: list[_Recorder] = []
    monkeypatch.setattr(tb, "check_available", lambda: None)
    monkeypatch.setattr(tb, "_summary_writer", lambda d: made.append(_Recorder(d)) or made[-1])
    assert cli.main(["train", *ARGS, "--runs-dir", str(tmp_path), "--tensorboard"]) == 0
    run = _only_run(tmp_path)
    w = made[0]
    assert w.log_dir == run / "tb" and w.closed
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert ("loss/d", logged[0]["loss/d"], logged[0]["step"]) in w.scalars
    assert {s for k, _, s in w.scalars if k == "loss/g"} == {r["step"] for r in logged if "loss/g" in r}
    assert [s for _, _, s, _ in w.images] == [0, 2, 4]  # the final grid (after the last log step) on close
    assert w.images[0][1][2] == 3 and w.images[0][3] == "HWC"
    (run / "events.jsonl").open("a").write(json.dumps({"type": "finding", "step": 4, "kind": "mode_collapse",
                                                       "severity": "warning", "status": "started",
                                                       "suggestion": "lower lr"}) + "\n")
    assert cli.main(["resume", str(run), "--steps", "6", "--quiet", "--tensorboard"]) == 0
    w2 = made[1]
    assert all(s > 4 for _, _, s in w2.scalars)  # only the new session; the finding before it is not repeated
    assert not w2.texts
    assert [s for _, _, s, _ in w2.images] == [6] and w2.closed
    # a finding logged during a session is mirrored as text at its step
    from types import SimpleNamespace
    fake = SimpleNamespace(store=SimpleNamespace(path=run), step_count=7)
    hook = tb.TensorBoardMirror(fake)
    (run / "events.jsonl").open("a").write(json.dumps({"type": "finding", "step": 7, "kind": "d_dominance",
                                                       "severity": "warning", "status": "started",
                                                       "suggestion": "lower lr_d"}) + "\n")
    hook(fake, {"step": 7, "loss/d": 0.5, "flag": True})
    assert made[2].texts == [("findings/d_dominance", "**d_dominance** (warning, started): lower lr_d", 7)]
    assert made[2].scalars == [("loss/d", 0.5, 7)]  # booleans are not scalars


def test_without_tensorboard_the_flag_is_refused_before_a_run_folder_exists(tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now raises ImportError
    assert cli.main(["train", *ARGS, "--runs-dir", str(tmp_path / "runs"), "--tensorboard"]) == 2
    err = capsys.readouterr().err
    assert "--tensorboard" in err and "pip install tensorboard" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_real_tensorboard_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    assert cli.main(["train", *ARGS, "--runs-dir", str(tmp_path), "--tensorboard"]) == 0
    acc = EventAccumulator(str(_only_run(tmp_path) / "tb"))
    acc.Reload()
    assert "loss/d" in acc.Tags()["scalars"] and "samples" in acc.Tags()["images"]
