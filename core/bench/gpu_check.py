"""The GPU check behind benchmarks/gpu_check.sh: every precision/layout/compile path trains, resume
equals an uninterrupted run, a torchrun job runs, and ours vs the textbook loop, in one table.

``python -m core.bench.gpu_check [--out DIR] [--smoke]``. On a machine without CUDA (or with
``--smoke``) the same checks run on the CPU at toy sizes, so the script is known to work before a
GPU is ever lent; the speed part then uses tiny settings and says so.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def _sizes(gpu: bool) -> dict[str, Any]:
    """How big each part is: minutes on a GPU, seconds on a CPU."""
    if gpu:
        return dict(res=32, width=32, batch=64, steps=300, min_std=0.05, resume_steps=40, ddp_steps=60,
                    speed=((64, 128), (128, 64)), rounds=3, round_s=3.0, images=4096)
    # (a few steps of a tiny G hardly move its near-constant start: "not flat" is all one can ask)
    return dict(res=16, width=8, batch=8, steps=20, min_std=1e-3, resume_steps=4, ddp_steps=8,
                speed=((32, 16),), rounds=1, round_s=0.5, images=256)


def _modes(gpu: bool) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, config overrides, Trainer kwargs) of every path a user can pick."""
    modes = [("fp32", {"precision": "fp32"}, {}),
             ("fp32 plain NCHW (fast_path off)", {"precision": "fp32"}, {"fast_path": False})]
    if gpu:
        modes += [("bf16 autocast + channels_last", {"precision": "bf16"}, {}),
                  ("fp16 + GradScaler", {"precision": "fp16"}, {}),
                  ("fp16 + GradScaler, wgan (RMSprop)", {"precision": "fp16", "loss": "wgan", "n_critic": 2}, {}),
                  ("bf16 + R1 + DiffAugment + EMA", {"precision": "bf16", "r1_weight": 1.0,
                                                     "diffaug": "color,translation,cutout", "ema": 0.999}, {}),
                  ("wgan-gp bf16", {"precision": "bf16", "loss": "wgan-gp", "n_critic": 2}, {})]
    modes += [("compile" + (" bf16" if gpu else ""), {"compile": True, "precision": "bf16" if gpu else "fp32"}, {}),
              ("compile + R1", {"compile": True, "r1_weight": 1.0, "precision": "bf16" if gpu else "fp32"}, {})]
    return modes


def _cfg(sz: dict, device: str, **kw) -> TrainConfig:
    base = dict(data="shapes", resolution=sz["res"], g_width=sz["width"], d_width=sz["width"], latent_dim=32,
                batch_size=sz["batch"], steps=10**6, device=device, ema=0.0, threads=0 if device == "cuda" else 2)
    return TrainConfig(**{**base, **kw}).validate()


def _peak_reset(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)


def _peak_gb(dev: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None


def check_mode(name: str, overrides: dict, kw: dict, sz: dict, dev: torch.device, ds) -> dict[str, Any]:
    """Train a few hundred steps: finite losses, samples that change and are not flat."""
    from ..train import Trainer
    row: dict[str, Any] = {"check": name}
    try:
        _peak_reset(dev)
        t = Trainer(_cfg(sz, dev.type, **overrides), ds, device=dev, **kw)
        before = t.sample_fixed()
        t0 = time.perf_counter()
        first = None
        finite = True
        warm = 3  # compiled paths build their graphs over the first steps (G, D, D in the G phase)
        for i in range(sz["steps"]):
            out = t.step(want_grad_norms=(i % 25 == 24))
            if i == warm - 1:
                float(out["loss/d"])
                first = time.perf_counter() - t0
            if i % 50 == 49 or i == sz["steps"] - 1:  # an occasional check: each one is a host sync
                finite &= all(math.isfinite(float(v)) for v in out.values())
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t0 - (first or 0)
        after = t.sample_fixed()
        change = float((after - before).abs().mean())
        spread = float(after.std())
        ok = finite and t.weights_finite() and change > 1e-3 and spread > sz["min_std"]
        row.update(ok=ok, steps=sz["steps"], first_3_steps_s=round(first or 0, 2),
                   steps_per_s=round((sz["steps"] - warm) / max(dt, 1e-9), 1), sample_change=round(change, 4),
                   sample_std=round(spread, 3), d_real=round(float(out["d/real"]), 3),
                   d_fake=round(float(out["d/fake"]), 3), peak_gb=_peak_gb(dev), precision=t.precision.label,
                   channels_last=t.channels_last)
    except Exception as e:  # one broken path must not hide the others' results
        row.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
    return row


def check_resume(sz: dict, dev: torch.device, ds) -> dict[str, Any]:
    """N steps straight vs N/2, checkpoint (through bytes, as on disk), a new Trainer, N/2 more."""
    import io

    from ..train import Trainer
    row: dict[str, Any] = {"check": "resume = uninterrupted run"}
    n = sz["resume_steps"]
    prec = "bf16" if dev.type == "cuda" else "fp32"

    def deterministic() -> None:  # after each Trainer: its fast path turns the autotuner on
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True

    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
        cfg = _cfg(sz, dev.type, precision=prec, ema=0.99, diffaug="translation", threads=1 if dev.type == "cpu" else 0)
        a = Trainer(cfg, ds, device=dev)
        deterministic()
        for _ in range(n):
            a.step()
        b = Trainer(cfg, ds, device=dev)
        deterministic()
        for _ in range(n // 2):
            b.step()
        buf = io.BytesIO()
        torch.save(b.state_dict(), buf)
        c = Trainer(cfg, ds, device=dev)
        deterministic()
        c.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True, map_location=dev))
        for _ in range(n - n // 2):
            c.step()
        diff = max(float((pa - pc).abs().max()) for pa, pc in
                   zip(list(a.G.state_dict().values()) + list(a.D.state_dict().values()),
                       list(c.G.state_dict().values()) + list(c.D.state_dict().values()))
                   if pa.is_floating_point())
        row.update(ok=diff <= 1e-5, steps=n, max_weight_diff=diff, precision=prec)
    except Exception as e:
        row.update(ok=False, error=f"{type(e).__name__}: {e}"[:300])
    finally:
        torch.use_deterministic_algorithms(False)
    return row


def check_torchrun(sz: dict, dev: torch.device, workdir: Path) -> dict[str, Any]:
    """A torchrun job (1 process per GPU, at most 2; 2 gloo processes on a CPU) with evaluation, then a resume."""
    import socket
    n = min(2, torch.cuda.device_count()) if dev.type == "cuda" else 2
    row: dict[str, Any] = {"check": f"torchrun, {n} process{'es' if n > 1 else ''} ({'nccl' if dev.type == 'cuda' else 'gloo'})"}
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    announce = workdir / "ddp_run.txt"
    sets = ["--set", f"g_width={sz['width']}", "--set", f"d_width={sz['width']}", "--set", "latent_dim=32",
            "--set", "log_every=5", "--set", f"eval_every={sz['ddp_steps'] // 2}", "--set", "eval_samples=64",
            "--set", "checkpoint_every=1000", "--set", "sample_every=1000"]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n), "--master-addr",
              "127.0.0.1", "--master-port", str(port)]
    t0 = time.perf_counter()
    try:
        r = subprocess.run([*launch, "-m", "core", "train", "--data", "shapes", "--resolution", str(sz["res"]),
                            "--batch-size", str(sz["batch"]), "--steps", str(sz["ddp_steps"]), "--device", dev.type,
                            "--runs-dir", str(workdir / "runs"), "--announce", str(announce), "--quiet", *sets],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"train exited {r.returncode}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}")
        run_dir = Path(announce.read_text())
        r2 = subprocess.run([*launch[:-1], str(port + 1), "-m", "core", "resume", str(run_dir), "--steps",
                             str(sz["ddp_steps"] + 10), "--quiet"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
        if r2.returncode != 0:
            raise RuntimeError(f"resume exited {r2.returncode}: {r2.stderr.strip().splitlines()[-1] if r2.stderr.strip() else ''}")
        status = json.loads((run_dir / "status.json").read_text())
        best = (run_dir / "checkpoints" / "best.pt").exists()
        evals = sum(1 for line in (run_dir / "events.jsonl").read_text().splitlines()
                    if line.strip() and json.loads(line).get("type") == "metric")
        ok = status.get("state") == "finished" and status.get("step") == sz["ddp_steps"] + 10 and best and evals >= 2
        row.update(ok=ok, seconds=round(time.perf_counter() - t0, 1), final_step=status.get("step"),
                   state=status.get("state"), evaluations=evals, best_pt=best)
    except Exception as e:
        row.update(ok=False, error=f"{type(e).__name__}: {e}"[:300], seconds=round(time.perf_counter() - t0, 1))
    return row


def export_builtin_pngs(n: int, root: Path, resolution: int = 64) -> Path:
    """The built-in shapes as a class-per-folder PNG tree: data the textbook loop's ImageFolder
    reads on any machine (the GPU machine has no Fashion-MNIST and no internet)."""
    from ..data import load_dataset
    from .speed import write_class_pngs
    ds = load_dataset("shapes", resolution)
    labels = ds.labels[:n].tolist() if ds.labels is not None else [0] * min(n, len(ds))
    return write_class_pngs(ds.images[:n].numpy(), labels, root)


def check_speed(sz: dict, dev: torch.device, workdir: Path) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The speed benchmark's own code: textbook vs ours, alternating rounds, FLOPs, ceilings."""
    from .speed import _ceilings, bench_config, first_sample_time
    folder = export_builtin_pngs(sz["images"], workdir / "shapes-png", 128 if dev.type == "cuda" else 32)
    ceil = _ceilings(dev)
    rows = []
    for res, batch in sz["speed"]:
        _peak_reset(dev)
        try:
            c = bench_config(folder, res, batch, dev, sz["rounds"], sz["round_s"], torch.get_num_threads(), {}, [])
            flops = c["flops_per_iter"]["ours"]
            ours = c["ours"]["img_s"]["median"]
            # Against the best of the measured conv and matmul peaks in the precision the step
            # runs in (bf16 on a GPU): what this device can do at all, measured in this run.
            suffix = "_bf16" if dev.type == "cuda" and "matmul_gflops_bf16" in ceil else ""
            peak = max(ceil.get(f"conv_gflops{suffix}", 0), ceil.get(f"matmul_gflops{suffix}", 0))
            rows.append({"check": f"speed {res}x{res} batch {batch}", "ok": True,
                         "textbook_img_s": round(c["textbook"]["img_s"]["median"], 1), "ours_img_s": round(ours, 1),
                         "ratio": round(c["ratio_median_of_medians"], 2),
                         "ours_tflops": round(ours / batch * flops / 1e12, 2),
                         "mfu_vs_measured_peak": round(ours / batch * flops / 1e9 / peak, 3) if peak else None,
                         "peak_gb": _peak_gb(dev)})
        except Exception as e:
            rows.append({"check": f"speed {res}x{res} batch {batch}", "ok": False, "error": f"{type(e).__name__}: {e}"[:300]})
    try:
        fs = first_sample_time(folder, workdir / "runs-first", 32)
        rows.append({"check": "Start -> first sample grid", "ok": fs["first_sample_s"] is not None,
                     "seconds": round(fs["first_sample_s"] or -1, 2), "create_run_s": round(fs["create_run_s"], 2)})
    except Exception as e:
        rows.append({"check": "Start -> first sample grid", "ok": False, "error": f"{type(e).__name__}: {e}"[:300]})
    return rows, ceil


def sync_check() -> dict[str, Any]:
    """tests/test_cuda_sync.py: training steps under torch.cuda.set_sync_debug_mode('error')."""
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda_sync.py"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    last = (r.stdout.strip().splitlines() or [""])[-1]
    return {"check": "no host sync in the step (set_sync_debug_mode)", "ok": r.returncode == 0, "pytest": last,
            **({"error": r.stdout[-600:]} if r.returncode else {})}


def to_markdown(info: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [f"### GPU check, {info['date']} — {info['device']}", "",
             f"torch {info['torch']}, CUDA {info['cuda']}, cuDNN {info['cudnn']}; measured peak "
             + ", ".join(f"{k} {v:,.0f}" for k, v in info["ceiling_gflops"].items()) + " GFLOP/s; "
             f"total {info['total_s']:.0f} s{' (CPU smoke sizes: not a GPU result)' if info['smoke'] else ''}", "",
             "| check | ok | details |", "|---|---|---|"]
    for r in rows:
        details = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("check", "ok") and v is not None)
        lines.append(f"| {r['check']} | {'yes' if r.get('ok') else '**NO**'} | {details} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="folder for gpu_check.md and gpu_check.json")
    ap.add_argument("--smoke", action="store_true", help="CPU-sized run even where CUDA exists")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: modes,resume,torchrun,speed,sync")
    args = ap.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    gpu = torch.cuda.is_available() and not args.smoke
    dev = torch.device("cuda" if gpu else "cpu")
    sz = _sizes(gpu)
    t_start = time.time()
    from ..data import load_dataset
    ds = load_dataset("shapes", sz["res"])
    rows: list[dict[str, Any]] = []

    def log(r: dict[str, Any]) -> None:
        rows.append(r)
        print(json.dumps(r, default=str), flush=True)

    ceil: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gan-gpu-check-") as tmp:
        if "modes" not in skip:
            for name, ov, kw in _modes(gpu):
                log(check_mode(name, ov, kw, sz, dev, ds))
        if "resume" not in skip:
            log(check_resume(sz, dev, ds))
        if "sync" not in skip and gpu:
            log(sync_check())
        if "torchrun" not in skip:
            log(check_torchrun(sz, dev, Path(tmp)))
        if "speed" not in skip:
            speed_rows, ceil = check_speed(sz, dev, Path(tmp))
            for r in speed_rows:
                log(r)
    info = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": torch.cuda.get_device_name(dev) if gpu else "CPU",
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "ceiling_gflops": ceil, "total_s": time.time() - t_start, "smoke": not gpu}
    md = to_markdown(info, rows)
    print(md)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_check.md").write_text(md)
        (out / "gpu_check.json").write_text(json.dumps({"info": info, "rows": rows}, indent=1, default=str))
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
