"""A control.json written by another process (the studio, a script, a newer version) can be
half-written, hostile or malformed: the training must ignore what it cannot use, say so once per
problem in events.jsonl naming the file and the field, and keep training (#19, finding 3)."""
from __future__ import annotations

import json
import threading

from polling import wait_for

from core.config import TrainConfig
from core.runs import load_run, write_control
from core.train import create_run, run_training


def _warnings(run) -> list[str]:
    return [e.get("message", "") for e in load_run(run).events() if e.get("type") == "warning"]


def test_malformed_control_files_never_end_a_training(tmp_path):
    cfg = TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=10**6,
                      log_every=5, sample_every=10**6, checkpoint_every=10**6, eval_every=0, device="cpu", threads=1)
    t = create_run(cfg, tmp_path)
    run, ctl = t.store.path, t.store.path / "control.json"
    done = {}
    th = threading.Thread(target=lambda: done.setdefault("state", run_training(t)), daemon=True)
    th.start()
    try:
        assert wait_for(lambda: load_run(run).step >= 5, 120)
        hostile = [
            ("[" * 100_000 + "]" * 100_000, "control.json"),                    # RecursionError in json.loads
            (json.dumps({"state": "stopped", "time": "soon"}), "time"),       # TypeError: str < float
            (json.dumps({"state": 5, "time": 1e18}), "state"),
            (json.dumps({"checkpoint_seq": {"x": 1}, "time": 1e18}), "checkpoint_seq"),
            (json.dumps({"state": "stopped", "time": float("nan")}), "time"),                  # json writes NaN
            ('{"state": "pau', "control.json"),                                  # half-written
            (" " * (2 << 20), "control.json"),                                   # far larger than a control file
        ]
        for text, field in hostile:
            step = load_run(run).step
            ctl.write_text(text)
            assert wait_for(lambda f=field: any(f in m and "control.json" in m for m in _warnings(run)), 60), (
                field, _warnings(run))
            assert wait_for(lambda s=step: load_run(run).step > s + 5, 60), f"training stalled after {field!r}"
            assert th.is_alive() and load_run(run).state == "running", (field, load_run(run).status)
        n = len(_warnings(run))
        ctl.write_text(json.dumps({"state": 5, "time": 1e18}))  # the same problem again: no second warning
        step = load_run(run).step
        assert wait_for(lambda: load_run(run).step > step + 10, 60)
        assert len(_warnings(run)) == n
    finally:
        write_control(run, state="stopped")  # a well-formed stop still works
        th.join(120)
    assert done.get("state") == "stopped"
