"""The CLI's resume / generate / export / evaluate on a malformed run folder print one line and exit 2,
never a traceback (#19, finding 12)."""
from __future__ import annotations

import shutil

import pytest
from faultkit import cli, tiny

from core.train import create_run, run_training

DEEP = "[" * 100_000 + "]" * 100_000
HOSTILE = {
    "deep-config": ("config.json", '{"config": ' + DEEP + "}"),
    "bad-status": ("status.json", '{"state": 5, "step": "abc", "total_steps": NaN, "updated": Infinity}'),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    t = create_run(tiny(steps=4, checkpoint_every=2, sample_every=10**6, eval_every=0), root)
    assert run_training(t) == "finished"
    return t.store.path


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_cli_on_a_malformed_run_folder_prints_one_line(trained, tmp_path, kind):
    run = tmp_path / trained.name
    shutil.copytree(trained, run)
    name, text = HOSTILE[kind]
    (run / name).write_text(text)
    (run / "evaluations.jsonl").write_text('{"x": ' + DEEP + '}\n{"metric": 5, "value": "x", "step": NaN}\n')
    cmds = [["resume", str(run), "--steps", "8"]]
    if kind == "deep-config":  # generate/export/evaluate read config.json and the logs
        cmds += [["generate", str(run), "-n", "2", "--out", str(tmp_path / "g")],
                 ["export", str(run), "--out", str(tmp_path / "e.safetensors")],
                 ["evaluate", str(run), "--n", "16", "--no-record"]]
    for args in cmds:
        r = cli(*args)
        assert "Traceback" not in r.stderr, (args, r.stderr[-3000:])
        assert r.returncode in (0, 2), (args, r.returncode, r.stderr[-2000:])
