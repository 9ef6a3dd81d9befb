"""Load measurements for docs/reliability.md (not tests): a huge folder scan, a 10^6-row metrics log.

    python -m benchmarks.reliability_load scan [--files 100000] [--workers N]
    python -m benchmarks.reliability_load history [--rows 1000000]

scan: writes N tiny PNGs (8x8, 512 distinct contents cycled) to a temp folder, then runs the same
cached scan the studio and `python -m core scan` use, in a fresh process, reporting wall time, progress
callbacks (the scan is incremental), files/s, peak RSS of the scanning process and its worker processes,
and the time of a warm re-scan (listing + stat only).

history: writes a synthetic metrics.jsonl with ROWS rows shaped like the trainer's, then times what the
Monitor page does on open: MetricsHistory.refresh() (parse every row into numpy columns) and
downsample() of the loss curves to 2000 points; then an incremental refresh after 1000 appended rows.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def make_files(folder: Path, n: int) -> None:
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(512):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
        blobs.append(buf.getvalue())
    per_dir = 1000  # a realistic layout: folders of 1000 files
    for i in range(n):
        d = folder / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"img_{i:06d}.png").write_bytes(blobs[i % len(blobs)])


SCAN_CHILD = r"""
import json, resource, sys, time
from core.data.cache import cached_scan
folder, cache, workers = sys.argv[1], sys.argv[2], (int(sys.argv[3]) or None)
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
calls = []
t0 = time.perf_counter()
rep = cached_scan(folder, progress=lambda d, t: calls.append((time.perf_counter() - t0, d, t)), cache_dir=cache,
                  workers=workers)
cold = time.perf_counter() - t0
t1 = time.perf_counter()
rep2 = cached_scan(folder, cache_dir=cache, workers=workers)
warm = time.perf_counter() - t1
first_progress = next((c[0] for c in calls if c[1] > 0), None)
print(json.dumps({"usable": rep.usable, "rejected": len(rep.rejected), "duplicates": rep.duplicate_count,
                  "cold_s": cold, "warm_s": warm, "progress_calls": len(calls),
                  "first_progress_s": first_progress,
                  "rss_after_import_mb": rss_import, "rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "warm_usable": rep2.usable}))
"""


def bench_scan(n: int, workers: int) -> dict:
    top = Path(tempfile.mkdtemp(prefix="gs-scan-bench-"))
    try:
        t0 = time.perf_counter()
        make_files(top / "imgs", n)
        made = time.perf_counter() - t0
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        p = subprocess.run([sys.executable, "-c", SCAN_CHILD, str(top / "imgs"), str(top / "cache"), str(workers)],
                           capture_output=True, text=True, env=env, cwd=str(ROOT))
        if p.returncode != 0:
            raise SystemExit(p.stderr)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        out.update(files=n, make_s=made, files_per_s=n / out["cold_s"], cpus=len(os.sched_getaffinity(0)))
        return out
    finally:
        shutil.rmtree(top, ignore_errors=True)


def bench_history(rows: int) -> dict:
    from core.run_logs import MetricsHistory, downsample
    top = Path(tempfile.mkdtemp(prefix="gs-hist-bench-"))
    try:
        path = top / "metrics.jsonl"
        import math
        t0 = time.perf_counter()
        with open(path, "w") as f:
            for s in range(1, rows + 1):
                f.write(json.dumps({"step": s, "time": 1.7e9 + s * 0.05, "loss/d": 1.2 + 0.3 * math.sin(s / 500),
                                    "loss/g": 0.8 + 0.2 * math.cos(s / 700), "d/real": 0.6, "d/fake": 0.4,
                                    "grad/g": 1.5, "grad/d": 2.5, "lr/g": 2e-4, "lr/d": 2e-4,
                                    "perf/img_per_s": 900.0, "perf/sec_per_step": 0.07, "epoch": s // 1000,
                                    "mem/peak_gb": 0.5}, separators=(",", ":")) + "\n")
        write_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 2**20
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        h = MetricsHistory(path)
        h.refresh()
        parse_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        for k in ("loss/d", "loss/g", "d/real", "d/fake"):
            x, y = h.series(k)
            downsample(x, y, 2000)
        ds_s = time.perf_counter() - t1
        with open(path, "a") as f:
            for s in range(rows + 1, rows + 1001):
                f.write(json.dumps({"step": s, "loss/d": 1.0, "loss/g": 1.0}) + "\n")
        t2 = time.perf_counter()
        added = h.refresh()
        inc_s = time.perf_counter() - t2
        return {"rows": rows, "file_mb": round(size_mb, 1), "write_s": write_s, "open_parse_s": parse_s,
                "downsample_4_series_s": ds_s, "open_total_s": parse_s + ds_s, "incremental_1000_rows_s": inc_s,
                "incremental_added": added, "rss_before_mb": rss0, "rss_peak_mb": _rss_mb(), "len": len(h)}
    finally:
        shutil.rmtree(top, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("scan")
    s.add_argument("--files", type=int, default=100_000)
    s.add_argument("--workers", type=int, default=0, help="0 = the default (one per CPU, up to 8)")
    h = sub.add_parser("history")
    h.add_argument("--rows", type=int, default=1_000_000)
    a = ap.parse_args()
    res = bench_scan(a.files, a.workers) if a.what == "scan" else bench_history(a.rows)
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}, indent=1))


if __name__ == "__main__":
    main()
