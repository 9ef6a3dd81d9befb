"""The quality sweep: variant parsing, per-variant summaries over seeds, the CPU-time budget."""
import pytest

from core.bench.quality import run_quality
from core.bench.sweep import Variant, summary_rows


def test_variant_parse_and_errors():
    v = Variant.parse("ttur=default+lr_d=4e-4+lr_g=1e-4")
    assert (v.name, v.preset, v.overrides) == ("ttur", "default", ("lr_d=4e-4", "lr_g=1e-4"))
    assert Variant.parse("fastgan").preset == "fastgan"
    with pytest.raises(ValueError, match="unknown preset"):
        Variant.parse("x=nope")
    with pytest.raises(ValueError, match="lr_q"):
        Variant.parse("x=default+lr_q=1")


def _res(tag, seed, fd, cov, findings=()):
    return {"tag": tag, "seed": seed, "steps": 100 + seed, "cores_used": 1.0, "findings": list(findings),
            "quality": {"classifier/fd": fd, "classifier/coverage": cov, "classifier/precision": 0.5,
                        "classifier/recall": 0.25, "classifier/class_share": [0.25] * 4}}


def test_summary_rows_mean_range_and_counts():
    vs = [Variant.parse("a=default"), Variant.parse("b=default+ema=0")]
    res = [_res("a", 0, 10.0, 4), _res("a", 1, 20.0, 3, ["mode_collapse (warning) at step 5"]),
           _res("b", 0, 5.0, 4), {"tag": "b", "seed": 1, "error": "exit 1"}]
    a, b = summary_rows(res, vs)
    assert a["fd"] == "15 (10–20)" and a["fd_mean"] == 15.0 and a["all_classes"] == "1/2"
    assert a["collapse"] == "1/2" and a["overfit"] == "0/2" and a["seeds"] == 2
    assert b["fd"] == "5" and b["failed"] == 1 and b["seeds"] == 1 and b["config"] == "default+ema=0"


def test_cpu_budget_ends_the_run_as_finished(tmp_path):
    r = run_quality(data="shapes", resolution=16, cpu_minutes=0.02, runs_dir=str(tmp_path / "runs"),
                    out_dir=str(tmp_path / "out"), doc=None, tag="tiny", class_aware=False,
                    overrides={"g_width": 8, "d_width": 8, "batch_size": 8, "threads": 1, "sample_every": 5})
    assert r["state"] == "finished" and r["steps"] > 0 and r["cpu_minutes"] == 0.02
    assert r["tag"] == "tiny" and (tmp_path / "out" / "quality-tiny-shapes-16px.png").exists()
