"""Side-by-side quality sweep: several configurations x seeds, each trained for the same CPU budget in its own
process (a few at a time), then one table (mean and range over seeds) and the grids, appended to a markdown file."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..config import PRESETS, parse_overrides


@dataclass(frozen=True)
class Variant:
    """One configuration of the sweep: a preset plus field overrides, under a short name."""
    name: str
    preset: str
    overrides: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, text: str) -> Variant:
        """``name=preset[+key=value+key=value]``, e.g. ``ttur=default+lr_d=4e-4+lr_g=1e-4``."""
        name, _, rest = text.partition("=")
        preset, *sets = rest.split("+") if rest else [name]
        if preset not in PRESETS:
            raise ValueError(f"variant {text!r}: unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
        parse_overrides(sets)  # fail here, not in a worker an hour later
        return cls(name.strip(), preset, tuple(sets))


def _job_cmd(v: Variant, seed: int, a: dict, out_json: Path) -> list[str]:
    cmd = [sys.executable, "-m", "core", "bench", "quality", "--preset", v.preset, "--tag", v.name,
           "--seed", str(seed), "--cpu-minutes", str(a["cpu_minutes"]), "--data", a["data"],
           "--resolution", str(a["resolution"]), "--runs-dir", a["runs_dir"], "--no-doc", "--json-out", str(out_json)]
    for s in ("threads=1", *v.overrides):  # one thread each: the jobs share the machine's cores fairly
        cmd += ["--set", s]
    return cmd


def run_sweep(variants: list[Variant], seeds: list[int], cpu_minutes: float, data: str = "fashion-mnist",
              resolution: int = 32, jobs: int = 2, runs_dir: str = "runs/bench", out_dir: str = "docs/benchmarks",
              doc: str | None = "docs/benchmarks.md", title: str = "", log=print) -> list[dict]:
    """Train every variant x seed; return one result dict per job (a failed job has ``error``)."""
    work = Path(runs_dir) / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(parents=True, exist_ok=True)
    a = {"cpu_minutes": cpu_minutes, "data": data, "resolution": resolution, "runs_dir": runs_dir}
    todo = [(v, s) for s in seeds for v in variants]  # seed-major: the first results cover every variant
    t0 = time.time()

    def one(job: tuple[Variant, int]) -> dict:
        v, seed = job
        out = work / f"{v.name}-seed{seed}.json"
        log_path = work / f"{v.name}-seed{seed}.log"
        with open(log_path, "w") as lf:
            rc = subprocess.run(_job_cmd(v, seed, a, out), stdout=lf, stderr=subprocess.STDOUT).returncode
        if rc != 0 or not out.exists():
            log(f"  {v.name} seed {seed}: FAILED (exit {rc}), see {log_path}")
            return {"tag": v.name, "seed": seed, "error": f"exit {rc}; log {log_path}"}
        r = json.loads(out.read_text())
        q = r.get("quality", {})
        log(f"  {v.name} seed {seed}: {r['steps']} steps, FD {q.get('classifier/fd', float('nan')):.2f}, "
            f"classes {q.get('classifier/coverage')}, {time.time() - t0:.0f} s since start")
        return r

    log(f"sweep: {len(todo)} jobs ({len(variants)} variants x {len(seeds)} seeds), {cpu_minutes:g} CPU-min each, "
        f"{jobs} at a time, logs in {work}")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, todo))
    (work / "results.json").write_text(json.dumps(results, indent=2))
    if doc:
        append_sweep_doc(Path(doc), results, variants, seeds, cpu_minutes, data, resolution, title, Path(out_dir))
    return results


def _stat(vals: list[float]) -> str:
    if not vals:
        return "n/a"
    m = sum(vals) / len(vals)
    return f"{m:.3g}" if len(vals) == 1 else f"{m:.3g} ({min(vals):.3g}–{max(vals):.3g})"


def summary_rows(results: list[dict], variants: list[Variant], classes: int | None = None) -> list[dict]:
    """Per variant: mean (range) of each score over its seeds, and how many seeds covered every class."""
    rows = []
    for v in variants:
        rs = [r for r in results if r.get("tag") == v.name and "error" not in r]
        q = [r.get("quality", {}) for r in rs]

        def col(key: str, q=q) -> list[float]:
            return [float(x[key]) for x in q if isinstance(x.get(key), (int, float))]
        n_cls = classes or max([len(x.get("classifier/class_share") or []) for x in q] or [0])
        full = sum(1 for x in q if n_cls and x.get("classifier/coverage") == n_cls)
        collapsed = sum(1 for r in rs if any(f.startswith("mode_collapse") for f in r.get("findings", [])))
        overfit = sum(1 for r in rs if any(f.startswith("overfitting") for f in r.get("findings", [])))
        rows.append({"name": v.name, "config": "+".join((v.preset, *v.overrides)), "seeds": len(rs),
                     "failed": sum(1 for r in results if r.get("tag") == v.name and "error" in r),
                     "steps": _stat([float(r["steps"]) for r in rs]), "fd": _stat(col("classifier/fd")),
                     "fd_mean": (sum(col("classifier/fd")) / len(col("classifier/fd"))) if col("classifier/fd") else None,
                     "covered": _stat(col("classifier/coverage")), "all_classes": f"{full}/{len(rs)}",
                     "precision": _stat(col("classifier/precision")), "recall": _stat(col("classifier/recall")),
                     "collapse": f"{collapsed}/{len(rs)}", "overfit": f"{overfit}/{len(rs)}",
                     "cores": _stat([float(r["cores_used"]) for r in rs])})
    return rows


def append_sweep_doc(doc: Path, results: list[dict], variants: list[Variant], seeds: list[int], cpu_minutes: float,
                     data: str, resolution: int, title: str, out_dir: Path) -> None:
    rows = summary_rows(results, variants)
    base = rows[0]["fd_mean"] if rows and rows[0]["fd_mean"] else None
    lines = [f"\n## {title or 'Quality sweep'}: {Path(data).name} at {resolution} px, {cpu_minutes:g} CPU-minutes per run "
             f"({time.strftime('%Y-%m-%d %H:%M')})\n",
             f"`python -m core bench sweep` — {len(variants)} configurations x seeds {', '.join(map(str, seeds))}, each "
             "trained in its own process on one CPU thread until it has used the CPU budget (data loading excluded), "
             "so runs that shared the machine trained as many CPU-seconds as a quiet one. Scores: the class-aware "
             "benchmark (classifier FD, classes covered, precision, recall; 2,000 EMA samples vs 2,000 reals). "
             "Values are mean (min–max) over seeds. *Collapse* / *overfit*: seeds where the run's own diagnostics "
             "raised that finding.\n",
             "| configuration | fields | steps | classifier FD | vs first | classes covered | all classes | precision "
             "| recall | collapse | overfit |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['fd_mean'] / base:.2f}x" if base and r["fd_mean"] else "n/a"
        lines.append(f"| `{r['name']}` | `{r['config']}` | {r['steps']} | {r['fd']} | {ratio} | {r['covered']} | "
                     f"{r['all_classes']} | {r['precision']} | {r['recall']} | {r['collapse']} | {r['overfit']} |")
    grids = [(v.name, next((r["grid"] for r in results if r.get("tag") == v.name and "grid" in r
                            and Path(r["grid"]).exists()), None)) for v in variants]
    grids = [(n, g) for n, g in grids if g]
    if grids:
        rel = lambda p: Path(p).resolve().relative_to(doc.parent.resolve()).as_posix() \
            if Path(p).resolve().is_relative_to(doc.parent.resolve()) else str(p)
        lines += ["", "Grids (first seed, EMA generator, fixed latents):", "",
                  "| " + " | ".join(f"`{n}`" for n, _ in grids) + " |", "|" + "---|" * len(grids),
                  "| " + " | ".join(f"![{n}]({rel(g)})" for n, g in grids) + " |"]
    fails = [r for r in results if "error" in r]
    if fails:
        lines += ["", "Failed jobs: " + "; ".join(f"{r['tag']} seed {r['seed']}: {r['error']}" for r in fails)]
    doc.parent.mkdir(parents=True, exist_ok=True)
    with open(doc, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
