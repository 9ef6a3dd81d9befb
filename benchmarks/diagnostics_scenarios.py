"""Validate the diagnostics on real (small) training runs: deliberately broken configurations must
raise the right finding within a bounded number of steps, healthy ones must raise no warning or
critical finding. Prints a markdown table (for docs/diagnostics.md) and the monitor's overhead.

    python -m benchmarks.diagnostics_scenarios                 # every scenario (~10 min of CPU)
    python -m benchmarks.diagnostics_scenarios --quick         # the short ones only
    python -m benchmarks.diagnostics_scenarios collapsed-latent healthy-fashion-mnist
    python -m benchmarks.diagnostics_scenarios --json out.json

tests/test_diagnostics_real.py runs the short scenarios from this file as tests.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.config import TrainConfig, preset
from core.runs import load_run
from core.train import create_run

# Tiny networks on the built-in procedural dataset at 16 px: ~10-30 ms per step on one CPU thread.
TINY = dict(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=32, log_every=20,
            sample_every=100, checkpoint_every=100_000, device="cpu", threads=1)


def collapse_latent(trainer) -> None:
    """A generator whose latent input is multiplied by 0: every z gives the same image."""
    gens = [trainer.G] + ([trainer.ema.model] if trainer.ema is not None else [])
    for g in gens:
        orig = g.generate
        g.generate = lambda z, y, _o=orig: _o(z * 0, y)


def runaway_sgd(trainer) -> None:
    """Plain SGD with learning rate 10 (TrainConfig caps Adam's rate at 1): the updates blow up."""
    trainer.opt_g = torch.optim.SGD(trainer.G.parameters(), lr=10.0)
    trainer.opt_d = torch.optim.SGD(trainer.D.parameters(), lr=10.0)


def lr_jump(at_step: int, lr: float) -> Callable:
    """Train normally, then raise both learning rates to ``lr`` at ``at_step`` (a bad schedule)."""
    def patch(trainer) -> None:
        orig_step = trainer.step

        def step(*a, **k):
            if trainer.step_count == at_step:
                for opt in (trainer.opt_g, trainer.opt_d):
                    for g in opt.param_groups:
                        g["lr"] = lr
            return orig_step(*a, **k)
        trainer.step = step
    return patch


def noise_folder(root: Path, n: int = 240, size: int = 16, seed: int = 0) -> Path:
    """``n`` random-noise PNGs: nothing to generalise from, so D can only memorise them."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8)).save(root / f"n{i:04d}.png")
    return root


@dataclass
class Scenario:
    name: str
    what: str
    overrides: dict[str, Any]
    expect: str | None  # the finding kind that must appear (None: no warning/critical at all)
    bound: int  # the finding must start at or before this step (for healthy runs: the run length)
    steps: int
    patch: Callable | None = None
    quick: bool = True  # part of the pytest suite
    base: dict[str, Any] = field(default_factory=lambda: dict(TINY))
    folder: Callable[[Path], Path] | None = None

    def config(self, tmp: Path) -> TrainConfig:
        kw = {**self.base, **self.overrides, "steps": self.steps}
        if self.folder is not None:
            kw["data"] = str(self.folder(tmp / "data"))
        return preset("default", **kw)


SCENARIOS = [
    Scenario("healthy-default", "default preset (bce, EMA), tiny widths", {}, None, 500, 500),
    Scenario("d-lr-50x", "lr_d = 50 x lr_g (1e-3 vs 2e-5)", dict(lr_g=2e-5, lr_d=1e-3), "d_dominance", 240, 240),
    Scenario("g-lr-tiny", "lr_g = 1e-6 (G barely learns)", dict(lr_g=1e-6), "d_dominance", 400, 400, quick=False),
    Scenario("collapsed-latent", "G's latent multiplied by 0", {}, "mode_collapse", 360, 360, patch=collapse_latent),
    Scenario("saturating-g", "g_saturating=true with lr_d = 50 x lr_g", dict(g_saturating=True, lr_g=2e-5, lr_d=1e-3),
             "vanishing_gradients", 240, 240),
    Scenario("runaway-lr", "SGD with lr 10 on both networks", {}, "divergence", 60, 60, patch=runaway_sgd),
    # --- longer: benchmark only
    Scenario("lr-jump", "lsgan; lr 0.05 on both networks from step 700", dict(loss="lsgan"), "exploding_gradients", 900, 900,
             patch=lr_jump(700, 0.05), quick=False),
    Scenario("d-lr-tiny", "lr_d = 1e-6 (D barely learns)", dict(lr_d=1e-6), "g_dominance", 900, 900, quick=False),
    Scenario("memorising-d", "240 noise images, D 4x wider than G", dict(d_width=32, steps=2000), "overfitting", 2000,
             2000, quick=False, folder=noise_folder),
    Scenario("healthy-hinge", "hinge loss, tiny widths", dict(loss="hinge", beta1=0.0, beta2=0.9), None, 1000, 1000,
             quick=False),
    Scenario("healthy-lsgan", "lsgan loss, tiny widths", dict(loss="lsgan"), None, 1000, 1000, quick=False),
    Scenario("healthy-wgan-gp", "wgan-gp, n_critic 2, tiny widths",
             dict(loss="wgan-gp", n_critic=2, lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9), None, 800, 800, quick=False),
    Scenario("healthy-fashion-mnist", "default preset on Fashion-MNIST 32 px, widths 32, batch 64",
             dict(data="fashion-mnist", resolution=32, g_width=32, d_width=32, latent_dim=64, batch_size=64,
                  log_every=25, sample_every=250), None, 1500, 1500, quick=False),
]
BY_NAME = {s.name: s for s in SCENARIOS}


def run_scenario(sc: Scenario, runs_dir: Path) -> dict[str, Any]:
    """Train the scenario; return its findings, the detection step and the monitor's cost."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    cfg = sc.config(runs_dir)
    t = create_run(cfg, runs_dir / "runs")
    if sc.patch is not None:
        sc.patch(t)
    from core.train import run_loop, standard_hooks
    hooks = standard_hooks(t)
    t0 = time.perf_counter()
    state = run_loop(t, hooks)
    wall = time.perf_counter() - t0
    info = load_run(t.store.path)
    findings = [e for e in info.events() if e.get("type") == "finding"]
    started = [e for e in findings if e.get("status", "started") == "started"]
    alarms = [e for e in started if e.get("severity") in ("warning", "critical")]
    hit = [e for e in started if e["kind"] == sc.expect] if sc.expect else []
    detected = hit[0]["step"] if hit else None
    if sc.expect:
        ok = detected is not None and detected <= sc.bound
    else:
        ok = not alarms
    mon = next((h for h in hooks if type(h).__name__ == "DiagnosticsMonitor"), None)
    timing = dict(mon.timing) if mon is not None else {}
    return {"name": sc.name, "what": sc.what, "expect": sc.expect or "no warning/critical", "bound": sc.bound,
            "detected": detected, "ok": ok, "state": state, "steps": t.step_count, "wall_s": wall,
            "sec_per_step": wall / max(t.step_count, 1), "timing": timing,
            "findings": [(e["step"], e["kind"], e["severity"], e.get("status")) for e in findings],
            "first": hit[0] if hit else None, "sample_every": getattr(mon, "sample_every", None)}


def table(results: list[dict[str, Any]]) -> str:
    out = ["| scenario | what | expected finding | detected at step | bound | other findings (step kind severity status) | ok |",
           "|---|---|---|---|---|---|---|"]
    for r in results:
        others = ", ".join(f"{s} {k} {sev} {st}" for s, k, sev, st in r["findings"] if k != r["expect"]) or "-"
        det = r["detected"] if r["detected"] is not None else ("-" if r["expect"].startswith("no ") else "not detected")
        out.append(f"| {r['name']} | {r['what']} | {r['expect']} | {det} | {r['bound']} | {others} | "
                   f"{'yes' if r['ok'] else 'NO'} |")
    return "\n".join(out)


def overhead(results: list[dict[str, Any]]) -> str:
    out = ["| scenario | s/step | history detectors per log step | sample check (every N steps) | overhead per step |",
           "|---|---|---|---|---|"]
    for r in results:
        t = r["timing"]
        if not t.get("history_n"):
            continue
        h = t["history_s"] / t["history_n"]
        s = t["sample_s"] / t["sample_n"] if t.get("sample_n") else float("nan")
        total = t["history_s"] + t["sample_s"]
        out.append(f"| {r['name']} | {r['sec_per_step'] * 1000:.1f} ms | {h * 1000:.2f} ms | {s * 1000:.0f} ms "
                   f"(every {r['sample_every']}) | {100 * total / max(r['wall_s'], 1e-9):.2f}% |")
    return "\n".join(out)


def measure_overhead(resolution: int = 32, width: int = 64, batch: int = 64, reps: int = 5) -> dict[str, float]:
    """Cost of the monitor next to a training step for a default-sized model (no run folder)."""
    from core.data import load_dataset
    from core.diagnostics import DiagnosticsMonitor
    from core.train import Trainer
    cfg = preset("default", data="shapes", resolution=resolution, g_width=width, d_width=width, batch_size=batch,
                 device="cpu", threads=1)
    t = Trainer(cfg, load_dataset(cfg.data, cfg.resolution))
    t.step()
    t0 = time.perf_counter()
    for _ in range(reps):
        t.step(want_grad_norms=True)
    step_s = (time.perf_counter() - t0) / reps
    mon = DiagnosticsMonitor(t, sample_warmup=10**9)
    rng = np.random.default_rng(0)
    rows = [{"step": 25 * (i + 1), "loss/d": 0.7 + 0.1 * rng.random(), "loss/g": 1.2 + 0.2 * rng.random(),
             "d/real": 0.75, "d/fake": 0.3, "grad/g": 4 + rng.random(), "grad/d": 8 + rng.random()} for i in range(200)]
    t0 = time.perf_counter()
    for r in rows:
        mon(t, dict(r))
    hist_s = (time.perf_counter() - t0) / len(rows)
    mon.sample_stats(t)  # the first check also caches the real reference images
    t0 = time.perf_counter()
    for _ in range(reps):
        mon.sample_stats(t)
    sample_s = (time.perf_counter() - t0) / reps
    every = mon.sample_every
    return {"resolution": resolution, "width": width, "batch": batch, "step_s": step_s, "history_s": hist_s,
            "sample_s": sample_s, "sample_every": every, "log_every": cfg.log_every,
            "overhead_pct": 100 * (hist_s / cfg.log_every + sample_s / every) / step_s}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"scenarios to run (default: all): {', '.join(BY_NAME)}")
    ap.add_argument("--quick", action="store_true", help="only the short scenarios the tests run")
    ap.add_argument("--json", help="also write the results to this file")
    a = ap.parse_args(argv)
    todo = [BY_NAME[n] for n in a.names] if a.names else [s for s in SCENARIOS if s.quick or not a.quick]
    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for sc in todo:
            r = run_scenario(sc, Path(tmp) / sc.name)
            results.append(r)
            print(f"{sc.name}: {'ok' if r['ok'] else 'FAILED'} detected={r['detected']} bound={sc.bound} "
                  f"state={r['state']} {r['wall_s']:.1f}s findings={r['findings']}", flush=True)
    print()
    print(table(results))
    print()
    print(overhead(results))
    if not a.names and not a.quick:
        o = measure_overhead()
        print(f"\nDefault-sized model ({o['resolution']} px, widths {o['width']}, batch {o['batch']}, 1 CPU thread): "
              f"training step {o['step_s'] * 1000:.0f} ms; history detectors {o['history_s'] * 1000:.2f} ms per log "
              f"step (every {o['log_every']}); sample check {o['sample_s'] * 1000:.0f} ms (every {o['sample_every']} "
              f"steps); overhead {o['overhead_pct']:.2f}% of training time")
        results.append({"name": "overhead", **o})
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, default=str))
    return 0 if all(r.get("ok", True) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
