"""benchmarks/gpu_check.sh runs end to end without a GPU (its CPU part), so it works the day one is lent."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_script_runs_its_cpu_part(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "GAN_STUDIO_CACHE": str(tmp_path / "cache")}
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    md = (tmp_path / "gpu_check.md").read_text()
    rows = json.loads((tmp_path / "gpu_check.json").read_text())["rows"]
    checks = {row["check"]: row for row in rows}
    for name in ("fp32", "compile + R1", "resume = uninterrupted run", "Start -> first sample grid"):
        assert checks[name]["ok"], checks[name]
    assert any(k.startswith("torchrun") and v["ok"] for k, v in checks.items()), checks
    speed = [v for k, v in checks.items() if k.startswith("speed")]
    assert speed and all(v["ok"] and v["ours_img_s"] > 0 and v["textbook_img_s"] > 0 for v in speed), speed
    assert checks["resume = uninterrupted run"]["max_weight_diff"] == 0.0  # exact on a CPU
    assert "| check | ok | details |" in md and "CPU smoke sizes" in md
