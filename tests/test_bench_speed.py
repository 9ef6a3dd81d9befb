"""The speed benchmark's pipeline end to end on a tiny folder: both loops, variants, a competing load, the report.

Smoke only: nothing here asserts a speed (timings in unit tests are noise); it proves the benchmark
runs, measures each side in every round and writes a readable report.
"""
from __future__ import annotations

import math


def test_speed_benchmark_runs_and_reports(tmp_path, image_folder, monkeypatch):
    from core.bench import speed
    # The ceiling (a large conv and matmul, timed repeatedly) is most of this test's time on 2 cores;
    # its numbers are not checked here, so a fixed one keeps the smoke test short.
    monkeypatch.setattr(speed, "_ceilings", lambda dev: {"conv_gflops": 100.0, "matmul_gflops": 100.0})
    run_speed = speed.run_speed
    folder = image_folder
    doc = tmp_path / "bench.md"
    r = run_speed(data=str(folder), runs_dir=tmp_path / "runs", configs=((32, 8),), rounds=2, round_s=0.2,
                  variants=["threads1"], load="busy", load_config=(32, 8), doc=doc, parts=("speed", "load"),
                  log=lambda s: None)
    c = r["configs"][0]
    for side in ("textbook", "ours", "ours-threads1"):
        assert len(c[side]["rounds"]) == 2 and all(x > 0 for x in c[side]["rounds"])
    assert c["flops_per_iter"]["ours"] > 0 and math.isfinite(c["ratio"]["ours"]["median"])
    ct = r["contention"]
    assert set(ct["kept"]) >= {"textbook", "ours", "ours-threads1"}
    text = doc.read_text()
    assert "ours ÷ textbook" in text and "ours-threads1" in text and "kept (on ÷ off)" in text


def test_layer_benchmark_covers_every_dcgan_conv():
    """core.bench.layers times each conv of the 64 px DCGAN in both layouts (batch 2: smoke only)."""
    from core.bench.layers import dcgan_layers, layer_rows
    rows = layer_rows(2)
    assert len(rows) == 2 * len(dcgan_layers(2)) == 16
    assert {r[1] for r in rows} == {"NCHW", "NHWC"} and all(ms > 0 and gf > 0 for _, _, ms, gf in rows)
