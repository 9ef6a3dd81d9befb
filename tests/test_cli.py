"""CLI end to end on a tiny folder: scan, train, resume, generate, and user errors as one clear line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--set", "g_width=8", "--set", "d_width=8", "--set", "latent_dim=16", "--set", "log_every=2",
        "--set", "sample_every=4", "--set", "checkpoint_every=4", "--set", "threads=1", "--device", "cpu"]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, env=env, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout:{p.stdout}\nstderr:{p.stderr}")
    return p


def test_scan_train_resume_generate(image_folder, tmp_path):
    (image_folder / "broken.png").write_text("not an image")
    s = cli("scan", str(image_folder))
    assert "12" in s.stdout and "broken.png" in s.stdout

    runs = tmp_path / "runs"
    t = cli("train", "--data", str(image_folder), "--resolution", "16", "--steps", "4", "--batch-size", "4",
            "--runs-dir", str(runs), *TINY)
    run_dir = Path(t.stdout.strip().splitlines()[-1])  # last line: the run folder
    assert run_dir.parent == runs and (run_dir / "checkpoints" / "step_0000004.pt").exists()
    assert "finished" in t.stderr

    r = cli("resume", str(run_dir), "--steps", "8")
    assert Path(r.stdout.strip().splitlines()[-1]) == run_dir
    assert (run_dir / "checkpoints" / "step_0000008.pt").exists()

    out = tmp_path / "gen"
    cli("generate", str(run_dir), "-n", "5", "--out", str(out), "--seed", "7")
    files = sorted(out.glob("*.png"))
    assert len(files) == 5
    first = files[0].read_bytes()
    cli("generate", str(run_dir), "-n", "1", "--out", str(tmp_path / "gen2"), "--seed", "7")
    assert (tmp_path / "gen2" / files[0].name).read_bytes() == first  # same seed, same image


def test_minutes_budget_and_preset(tmp_path):
    t = cli("train", "--data", "shapes", "--resolution", "16", "--steps", "100000", "--minutes", "0.05",
            "--preset", "wgan-gp", "--batch-size", "4", "--runs-dir", str(tmp_path), *TINY)
    run_dir = Path(t.stdout.strip().splitlines()[-1])
    import json
    cfg = json.loads((run_dir / "config.json").read_text())["config"]
    assert cfg["loss"] == "wgan-gp" and cfg["n_critic"] == 5
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished" and 0 < status["step"] < 100000
    assert "Time budget" in status["message"]


@pytest.mark.parametrize("args, needle", [
    (["train", "--data", "/no/such/folder"], "/no/such/folder"),
    (["train", "--resolution", "48"], "resolution"),
    (["train", "--set", "lr_g=fast"], "lr_g"),
    (["train", "--preset", "nope"], "valid:"),
    (["train", "--arch", "transformer"], "mlp, dcgan, resnet-sn"),
    (["resume", "/no/such/run"], "/no/such/run"),
])
def test_user_errors_are_one_clear_line(args, needle, tmp_path):
    p = cli(*args, "--runs-dir", str(tmp_path) if args[0] == "train" else "", check=False) if args[0] == "train" \
        else cli(*args, check=False)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr and "Traceback" not in p.stderr
    assert not any(tmp_path.iterdir())  # nothing was created before the error
