"""Quality benchmark: train a preset on a real dataset for a fixed CPU budget, record grid + numbers."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from ..config import PRESETS, TrainConfig
from ..imaging import upscale_png
from ..runs import load_run


def run_quality(data: str = "fashion-mnist", minutes: float = 15.0, preset: str = "default", resolution: int = 32,
                runs_dir: str = "runs/bench", out_dir: str = "docs/benchmarks", seed: int = 0,
                doc: str | None = "docs/benchmarks.md", overrides: dict | None = None, cpu_minutes: float = 0.0,
                tag: str = "", class_aware: bool = True) -> dict:
    """Train ``preset`` for ``minutes`` of wall-clock (or ``cpu_minutes`` of this process's CPU time) on
    ``data``; write the final EMA grid and, unless ``doc`` is None, a report section."""
    from ..train import run_training
    from ..train.setup import create_run
    cfg = TrainConfig(**{**PRESETS[preset], "data": data, "resolution": resolution,
                         "minutes": 0.0 if cpu_minutes > 0 else minutes, "steps": 10**7, "seed": seed,
                         "name": f"bench-quality-{tag or preset}", **(overrides or {})})
    t0, cpu0 = time.time(), time.process_time()
    trainer = create_run(cfg, runs_dir)
    # A CPU-time budget makes runs on a shared machine comparable: a contended run takes longer in wall
    # time but trains as many CPU-seconds. It counts from the first step (data loading excluded).
    cpu_start: list[float] = []

    def cpu_budget_used() -> bool:
        if not cpu_start:
            cpu_start.append(time.process_time())
        return time.process_time() - cpu_start[0] >= cpu_minutes * 60

    final = run_training(trainer, should_stop=cpu_budget_used if cpu_minutes > 0 else None)
    if cpu_minutes > 0 and final == "stopped":
        final = "finished"  # the budget, not a user, ended it
    wall = time.time() - t0
    cores_used = (time.process_time() - cpu0) / max(wall, 1e-9)  # < threads means the CPU was contended
    info = load_run(trainer.store.path)
    rows = info.metrics()
    last = rows[-1] if rows else {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    label = tag or preset
    stem = f"quality-{label}-{Path(data).name}-{resolution}px" + (f"-seed{seed}" if seed else "")
    grid = out / f"{stem}.png"
    latest = info.latest_sample()
    if latest is not None:
        grid.write_bytes(upscale_png(latest.read_bytes(), 512))
    reals = out / f"{stem}-reals.png"
    if (trainer.store.path / "reals.png").exists():
        reals.write_bytes(upscale_png((trainer.store.path / "reals.png").read_bytes(), 512))
    quality = {k: v for k, v in last.items() if k.startswith(("metric/", "quality/"))}
    for r in reversed(rows):  # the last evaluation, if periodic metrics ran
        q = {k: v for k, v in r.items() if k.startswith(("metric/", "quality/"))}
        if q:
            quality = q
            break
    class_aware = _class_aware(trainer) if class_aware else {}
    if class_aware:
        quality.update(class_aware)
    findings = [e for e in info.events() if e.get("type") == "finding" and e.get("status") == "started"]
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.processor() or platform.machine()}, "
        f"{trainer.threads or 'n/a'} CPU thread(s)" if trainer.device.type == "cpu" else str(trainer.device),
        "device": str(trainer.device), "preset": preset, "tag": label, "seed": seed,
        "cpu_minutes": cpu_minutes, "data": data, "resolution": resolution, "minutes": minutes,
        "state": final, "steps": info.step, "wall_s": round(wall, 1), "cores_used": round(cores_used, 2), "img_per_s_last": last.get("perf/img_per_s"),
        "loss_d_last": last.get("loss/d"), "loss_g_last": last.get("loss/g"), "quality": quality,
        "findings": [f"{f.get('kind')} ({f.get('severity')}) at step {f.get('step')}" for f in findings],
        "run_dir": str(trainer.store.path), "grid": str(grid),
    }
    if doc:
        _append_doc(Path(doc), result, grid, reals)
    print(json.dumps(result, indent=2))
    return result


CLASS_AWARE_N = 2000  # generated and real images per class-aware score (FD's bias shrinks with n)


def _class_aware(trainer) -> dict:
    """Classifier FD, class coverage, precision and recall of the trained (EMA) generator, when the
    data has labels: a classifier trained once on the data and cached (core/metrics/classifier.py)."""
    from ..metrics.classifier import cached_classifier, class_aware_scores
    from ..metrics.evaluate import generate_images, select_real
    ds = trainer.dataset
    if ds.labels is None or ds.num_classes < 2:
        return {}
    real_all = ds.images[:]
    net, info = cached_classifier(real_all, ds.labels, ds.num_classes, ds.fingerprint)
    G = trainer.sample_generator
    fake = generate_images(G, CLASS_AWARE_N, seed=1)
    s = class_aware_scores(net, select_real(real_all, CLASS_AWARE_N, seed=1), fake)
    return {**s.as_metrics(), "classifier/accuracy": info["accuracy"],
            "classifier/class_share": s.class_share}


def _append_doc(doc: Path, r: dict, grid: Path, reals: Path) -> None:
    doc.parent.mkdir(parents=True, exist_ok=True)
    rel = lambda p: Path(p).relative_to(doc.parent).as_posix() if Path(p).is_relative_to(doc.parent) else str(p)
    q = ", ".join(f"{k} = {v:.4g}" for k, v in r["quality"].items() if isinstance(v, (int, float))) or "n/a"
    share = r["quality"].get("classifier/class_share")
    if share:
        q += "; generated class shares: " + " ".join(f"{v:.2f}" for v in share)
    text = (f"\n### Quality: `{r['preset']}` on {r['data']} at {r['resolution']} px, {r['minutes']:g} min "
            f"({r['date']})\n\n"
            f"- machine: {r['machine']} (cores actually used: {r['cores_used']}); final state: {r['state']}; "
            f"steps: {r['steps']}; "
            f"last throughput: {r['img_per_s_last'] or 0:.0f} img/s\n"
            f"- last losses: D {r['loss_d_last'] or float('nan'):.3f}, G {r['loss_g_last'] or float('nan'):.3f}; "
            f"quality: {q}\n"
            f"- diagnostics findings raised: {', '.join(r['findings']) or 'none'}\n\n"
            f"| generated (EMA, fixed latent) | real |\n|---|---|\n"
            f"| ![generated]({rel(grid)}) | ![real]({rel(reals)}) |\n")
    if not doc.exists():
        doc.write_text("# Benchmarks\n\nAll numbers are measured by scripts in this repository "
                       "(`python -m core bench ...`); each section says when and on what.\n")
    with open(doc, "a", encoding="utf-8") as f:
        f.write(text)
