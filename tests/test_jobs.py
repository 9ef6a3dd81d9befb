"""JobManager: one job per device, idempotent start, control through the run folder, torchrun jobs."""
from __future__ import annotations

import json

import pytest
from polling import wait_for

from core.jobs import JobBusy, JobManager
from core.runs import load_run


def test_start_is_idempotent_and_stop_ends_the_run(tiny_cfg, tmp_path):
    jm = JobManager(tmp_path, shared_cpu=True)
    run = jm.start(tiny_cfg.replace(steps=100000, log_every=5))
    with pytest.raises(JobBusy) as e:
        jm.start(tiny_cfg)  # a second click / a second tab
    assert run.name in str(e.value)
    assert len(list(tmp_path.glob("0*"))) == 1
    assert wait_for(lambda: load_run(run).step > 0)
    jm.pause()
    assert wait_for(lambda: load_run(run).status.get("state") == "paused")
    jm.unpause()
    assert wait_for(lambda: load_run(run).status.get("state") == "running")
    jm.stop(wait=True)
    assert load_run(run).state == "stopped" and jm.active() is None
    run2 = jm.start(tiny_cfg)  # the device is free again
    jm.active().join(60)
    assert load_run(run2).state == "finished"
    jm.shutdown()


def test_bad_data_fails_before_a_folder_exists(tiny_cfg, tmp_path):
    from core.data import DataError
    jm = JobManager(tmp_path / "runs")
    with pytest.raises(DataError):
        jm.start(tiny_cfg.replace(data=str(tmp_path / "missing")))
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("0*"))
    assert jm.active() is None


def test_torchrun_job_runs_two_processes(tiny_cfg, tmp_path):
    jm = JobManager(tmp_path)
    run = jm.start_torchrun(tiny_cfg.replace(steps=6, batch_size=4), nproc=2)
    job = jm.active()
    assert job is not None and job.proc is not None and job.nproc == 2
    job.join(240)
    info = load_run(run)
    assert info.state == "finished" and info.step == 6, info.status
    assert json.loads((run / "config.json").read_text())["distributed"]["world_size"] == 2
