"""Scaling measurements for docs/scaling.md: 1 process vs N torchrun processes, and scan+cache throughput.

    python -m benchmarks.scaling ddp   [--steps 60] [--nproc 2] [--resolution 32]
    python -m benchmarks.scaling cache [--files 200000] [--size 32]

`ddp` trains the same global batch (per-rank batch x ranks) once in one process and once under
torchrun, and reports images/s of each from the runs' own metrics (after the first log window,
so start-up is excluded). `cache` writes a synthetic folder of tiny PNGs, then times a cold
scan+decode+cache build and a warm load, with peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _throughput(run_dir: Path) -> tuple[float, int]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    rows = [r for r in rows if r.get("perf/img_per_s")][2:]  # skip warm-up windows
    vals = sorted(r["perf/img_per_s"] for r in rows)
    return (vals[len(vals) // 2] if vals else float("nan")), len(rows)


def ddp(args) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    runs = Path(tempfile.mkdtemp(prefix="scaling-"))
    common = ["--data", "fashion-mnist", "--resolution", str(args.resolution), "--steps", str(args.steps),
              "--runs-dir", str(runs), "--quiet", "--device", "cpu", "--set", "log_every=5",
              "--set", "sample_every=100000", "--set", "checkpoint_every=100000", "--set", "ema=0"]
    results = {}
    for label, cmd in (
        ("1 process", [sys.executable, "-m", "core", "train", "--batch-size", str(args.batch * args.nproc),
                       "--set", f"threads={args.nproc}", *common]),
        (f"{args.nproc} processes (gloo)", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                             "--nproc-per-node", str(args.nproc), "-m", "core", "train",
                                             "--batch-size", str(args.batch), "--set", "threads=1", *common]),
    ):
        t0 = time.time()
        out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
        run_dir = Path(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else sorted(runs.iterdir())[-1]
        ips, n = _throughput(run_dir)
        results[label] = {"img_per_s": round(ips, 1), "windows": n, "wall_s": round(time.time() - t0, 1)}
        print(label, results[label], flush=True)
    print(json.dumps({"global_batch": args.batch * args.nproc, "resolution": args.resolution, **results}, indent=2))


def cache(args) -> None:
    import numpy as np
    from PIL import Image

    from core.data import load_dataset
    tmp = Path(tempfile.mkdtemp(prefix="scaling-cache-"))
    folder = tmp / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    t0 = time.time()
    for i in range(args.files):
        sub = folder / f"{i // 10000:03d}"
        if i % 10000 == 0:
            sub.mkdir()
        Image.fromarray(rng.integers(0, 255, (args.size, args.size, 3), dtype=np.uint8)).save(sub / f"{i:07d}.png")
    write_s = time.time() - t0
    os.environ["GAN_STUDIO_CACHE"] = str(tmp / "cache")
    t0 = time.time()
    ds = load_dataset(str(folder), args.size)
    cold = time.time() - t0
    t0 = time.time()
    ds2 = load_dataset(str(folder), args.size)
    warm = time.time() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cache_mb = sum(p.stat().st_size for p in (tmp / "cache").rglob("*") if p.is_file()) / 2**20
    print(json.dumps({"files": args.files, "size": args.size, "write_s": round(write_s, 1),
                      "cold_scan_decode_cache_s": round(cold, 1), "files_per_s_cold": round(args.files / cold),
                      "warm_load_s": round(warm, 2), "peak_rss_mb": round(rss), "cache_mb": round(cache_mb, 1),
                      "images": len(ds), "same": bool((ds.images[:100] == ds2.images[:100]).all())}, indent=2))


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("ddp")
    d.add_argument("--steps", type=int, default=60)
    d.add_argument("--nproc", type=int, default=2)
    d.add_argument("--batch", type=int, default=32, help="per-rank batch")
    d.add_argument("--resolution", type=int, default=32)
    c = sub.add_parser("cache")
    c.add_argument("--files", type=int, default=200000)
    c.add_argument("--size", type=int, default=32)
    args = p.parse_args()
    {"ddp": ddp, "cache": cache}[args.cmd](args)


if __name__ == "__main__":
    main()
