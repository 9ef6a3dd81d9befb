"""pix2pix and CycleGAN under torchrun (gloo, 2 CPU processes): the ranks' weights stay identical and rank 0
writes a complete run folder."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from test_distributed import ENV, ROOT, torchrun
from translate_data import make_paired, make_unpaired

pytestmark = [pytest.mark.ddp, pytest.mark.slow]

WORKER = str(ROOT / "tests" / "helpers" / "ddp_dump_weights.py")


def run_two_ranks(tmp_path: Path, args: list[str]) -> tuple[dict, dict]:
    """Train under torchrun with ``args`` (a ``python -m core`` command line); each rank's final weights."""
    out = tmp_path / "weights"
    out.mkdir(parents=True)
    for _attempt in range(2):  # a free port can be taken by another process before torchrun binds it
        r = subprocess.run(torchrun(WORKER, str(out), *args), env=ENV, timeout=300, cwd=ROOT, capture_output=True,
                           text=True)
        if r.returncode == 0:
            break
    assert r.returncode == 0, r.stderr[:3000]
    return torch.load(out / "rank0.pt", weights_only=True), torch.load(out / "rank1.pt", weights_only=True)


def assert_same_weights(w0: dict, w1: dict, nets: tuple[str, ...]) -> None:
    assert w0["step"] == w1["step"] > 0
    for net in nets:
        assert w0[net].keys() == w1[net].keys() and w0[net]
        for k in w0[net]:
            torch.testing.assert_close(w1[net][k], w0[net][k], rtol=0, atol=0, msg=f"{net}.{k} differs")


def assert_complete_run(runs: Path, steps: int) -> Path:
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    for name in ("config.json", "metrics.jsonl", "events.jsonl", "status.json", f"checkpoints/step_{steps:07d}.pt"):
        assert (run / name).exists(), name
    assert list((run / "samples").glob("step_*.png")), "no triplet grid"
    assert json.loads((run / "status.json").read_text())["step"] == steps
    meta = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
    assert meta.get("distributed", {}).get("world_size", 2) == 2
    return run


def common(preset: str, data: Path, runs: Path, steps: int) -> list[str]:
    sets = ["g_width=8", "d_width=8", "threads=1", "log_every=2", "sample_every=3", "checkpoint_every=4", "eval_every=3"]
    return ["train", "--preset", preset, "--data", str(data), "--resolution", "16", "--batch-size", "2", "--steps", str(steps), "--runs-dir", str(runs),
            "--device", "cpu", "--quiet", *[x for s in sets for x in ("--set", s)]]


def test_pix2pix_two_ranks_stay_identical_and_write_a_complete_run(tmp_path):
    data = make_paired(tmp_path / "pairs", n=12, size=18)
    runs = tmp_path / "runs"
    w0, w1 = run_two_ranks(tmp_path, common("pix2pix", data, runs, 6))
    assert_same_weights(w0, w1, ("G", "D"))
    run = assert_complete_run(runs, 6)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert any("eval/l1" in r for r in rows) and any("loss/l1" in r for r in rows)


def test_cyclegan_two_ranks_stay_identical_and_write_a_complete_run(tmp_path):
    data = make_unpaired(tmp_path / "domains", n=10, size=18)
    runs = tmp_path / "runs"
    w0, w1 = run_two_ranks(tmp_path, [*common("cyclegan", data, runs, 4),
                                      "--set", "pool_size=4"])
    assert_same_weights(w0, w1, ("G", "D", "G2", "D2"))
    assert_complete_run(runs, 4)


def test_pix2pix_two_rank_resume_continues_exactly(tmp_path):
    """2 steps, then `resume --steps 4` under torchrun == 4 steps in one go: each rank gets back its own RNG."""
    data = make_paired(tmp_path / "pairs", n=12, size=18)
    whole, _ = run_two_ranks(tmp_path / "a", common("pix2pix", data, tmp_path / "a" / "runs", 4))
    run_two_ranks(tmp_path / "b", common("pix2pix", data, tmp_path / "b" / "runs", 2))
    (run,) = [p for p in (tmp_path / "b" / "runs").iterdir() if p.is_dir()]
    resumed, other = run_two_ranks(tmp_path / "c", ["resume", str(run), "--steps", "4", "--quiet"])
    assert_same_weights(resumed, other, ("G", "D"))
    assert_same_weights(whole, resumed, ("G", "D"))
