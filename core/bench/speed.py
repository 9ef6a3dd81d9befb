"""Speed benchmark: our Trainer against the textbook DCGAN loop, side by side in one process.

``python -m core bench speed [--data DIR|fashion-mnist] [--quick]``

Per configuration (resolution x batch) both loops are built, warmed up, then timed in alternating
rounds (A B, B A, A B, ...) so that drifting load hits both alike; each round records images/s, the
CPU cores our process tree used (CPU seconds / wall seconds, DataLoader workers included) and the
cores the whole machine was busy. Also measured in the same run: FLOPs per iteration
(torch.utils.flop_counter), the device's ceiling (a large conv and a large matmul), start -> first
sample grid, scan + cache (cold/warm), and throughput with a competing load switched on and off.
Results are printed as JSON and appended to docs/benchmarks.md.
"""
from __future__ import annotations

import functools
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig, parse_overrides
from .load import Load
from .procstat import Meter, Span, load_average
from .report import append_doc, fmt, machine_description, ratio, summary, to_markdown

DEFAULT_IMAGES = 10_000
FULL_CONFIGS = ((64, 64), (64, 128), (32, 64), (32, 128))
QUICK_CONFIGS = ((32, 64),)


# ------------------------------------------------------------------ data
def export_fashion_pngs(n: int = DEFAULT_IMAGES, root: str | Path | None = None) -> Path:
    """Write the first ``n`` Fashion-MNIST training images as PNGs (one subfolder per class), once."""
    from ..data import default_cache_dir
    from ..data.builtin import _find_idx, _load_mnist_like

    root = Path(root) if root else default_cache_dir() / "bench" / f"fashion-mnist-png-{n // 1000}k"
    done = root / ".complete"
    if done.is_file() and done.read_text().strip() == str(n):
        return root
    cache = default_cache_dir()
    if _find_idx("fashion-mnist", cache) is None:
        _load_mnist_like("fashion-mnist", cache)  # downloads when there is no local copy
    images, labels = _load_mnist_like("fashion-mnist", cache)
    n = min(n, len(images))
    write_class_pngs(images[:n], labels[:n], root)
    done.write_text(str(n))
    return root


def write_class_pngs(images, labels, root: Path) -> Path:
    """uint8 images (N, C, H, W; C = 1 or 3) as ``root/class_<label>/<i>.png``: the layout the
    textbook loop's ImageFolder reads."""
    from PIL import Image
    for i, (img, y) in enumerate(zip(images, labels)):
        d = root / f"class_{int(y)}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).save(d / f"{i:05d}.png")
    return root


def resolve_folder(data: str | None, images: int) -> Path:
    if data is None or data.strip().lower() == "fashion-mnist":
        return export_fashion_pngs(images)
    p = Path(data).expanduser().resolve()
    if not p.is_dir():
        raise SystemExit(f"--data: {data} is not a folder (give an image folder, or 'fashion-mnist')")
    if any(c.is_dir() for c in p.iterdir()):
        return p
    # A flat folder: torchvision's ImageFolder (the baseline) needs class subfolders, so both loops
    # read it through a wrapper folder whose single class is a link to it.
    import hashlib

    from ..data import default_cache_dir
    wrap = default_cache_dir() / "bench" / f"flat-{hashlib.sha1(str(p).encode()).hexdigest()[:12]}"
    wrap.mkdir(parents=True, exist_ok=True)
    link = wrap / "images"
    if not link.is_symlink():
        link.symlink_to(p, target_is_directory=True)
    return wrap


# ------------------------------------------------------------------ ceiling and FLOPs
def _best_time(fn: Callable[[], Any], reps: int = 5, sync: Callable[[], None] = lambda: None) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_ceiling(device: torch.device, dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """GFLOP/s of one large conv (NCHW and NHWC; the better one) and one large matmul."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    big = device.type == "cuda"
    b, c, h = (256, 256, 32) if big else (64, 256, 16)
    x = torch.randn(b, c, h, h, device=device, dtype=dtype)
    w = torch.randn(2 * c, c, 3, 3, device=device, dtype=dtype)
    conv_flops = 2 * b * (2 * c) * h * h * c * 9
    best = float("inf")
    for layout in (torch.contiguous_format, torch.channels_last):
        xf, wf = x.contiguous(memory_format=layout), w.contiguous(memory_format=layout)
        best = min(best, _best_time(functools.partial(torch.nn.functional.conv2d, xf, wf, padding=1), sync=sync))
    n = 8192 if big else 2048
    a, bm = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    mm = _best_time(lambda: a @ bm, sync=sync)
    return {"conv_gflops": conv_flops / best / 1e9, "matmul_gflops": 2 * n ** 3 / mm / 1e9}


def _ceilings(device: torch.device) -> dict[str, float]:
    """fp32 ceilings; on CUDA also bf16 ones, which are what an autocast step is measured against."""
    c = measure_ceiling(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        c.update({f"{k}_bf16": v for k, v in measure_ceiling(device, torch.bfloat16).items()})
    return c


def count_flops(fn: Callable[[], Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


# ------------------------------------------------------------------ the two loops
class TextbookSide:
    name = "textbook"

    def __init__(self, folder: Path, resolution: int, batch: int, device: torch.device, threads: int):
        from .textbook import TextbookDCGAN, endless, make_dataloader
        self.batch, self.threads = batch, threads
        self.model = TextbookDCGAN(resolution, nc=3, device=device)
        self.loader = make_dataloader(str(folder), resolution, batch, workers=2)
        self.it = endless(self.loader)
        self.images = 0

    def iterate(self, n: int) -> int:
        torch.set_num_threads(self.threads)  # the default settings, restored after our rounds
        seen = 0
        for _ in range(n):
            seen += self.model.iteration(next(self.it))["batch"]  # .item() calls sync every iteration
        return seen

    def close(self) -> None:
        self.it.close()  # shuts the DataLoader's worker processes down


class OursSide:
    def __init__(self, cfg: TrainConfig, dataset, device: torch.device, name: str = "ours",
                 fast_path: bool = True, shared_cpu: bool = False):
        from ..train import Trainer
        self.name = name
        self.t = Trainer(cfg, dataset, device=device, fast_path=fast_path, shared_cpu=shared_cpu)
        self.batch = cfg.batch_size
        self.device = device

    @property
    def threads(self) -> str | int | None:
        """What the report shows: a fixed count, or 'auto' with where the tuner stands now."""
        tu = self.t.thread_tuner
        if tu is None:
            return self.t.threads
        return (f"auto {'/'.join(map(str, tu.candidates))}: now {tu.current}, {tu.switches} switches, "
                f"{tu.skipped} re-checks skipped")

    def iterate(self, n: int) -> int:
        self.t.apply_threads()  # the textbook side resets the process to the default count
        out = {}
        for _ in range(n):
            out = self.t.step()
        if out:
            float(out["loss/d"])  # one sync per round: the queued work is done before the clock stops
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return n * self.batch

    def close(self) -> None:
        pass


def _timed(side, n: int) -> tuple[float, Span]:
    with Meter() as m:
        imgs = side.iterate(n)
    return imgs / m.span.wall_s, m.span


def alternate(sides: list, rounds: int, round_s: float, warmup: int = 2,
              toggle: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Warm every side up, then ``rounds`` rounds; the order of sides flips every round.

    ``toggle(k)``, when given, is called before each measurement with k = 0 (load off) or 1 (load
    on), and each side is measured in both states every round (off/on order flips too).
    """
    per_iter = {}
    for s in sides:
        with Meter() as m:
            s.iterate(warmup)
        t1 = time.perf_counter()
        s.iterate(1)
        per_iter[s.name] = (time.perf_counter() - t1, m.span.wall_s)
    # Same wall time per round for every side: n iterations of about round_s seconds.
    n_of = {s.name: max(1, round(round_s / max(per_iter[s.name][0], 1e-4))) for s in sides}
    states = (0, 1) if toggle else (None,)
    res: dict[str, dict] = {f"{s.name}{'' if k is None else ('@load' if k else '')}":
                            {"img_s": [], "cores": [], "machine": []} for s in sides for k in states}
    for r in range(rounds):
        order = sides if r % 2 == 0 else sides[::-1]
        for s in order:
            for k in (states if r % 2 == 0 else states[::-1]):
                if toggle is not None:
                    toggle(k)
                ips, span = _timed(s, n_of[s.name])
                key = f"{s.name}{'' if k is None else ('@load' if k else '')}"
                res[key]["img_s"].append(ips)
                res[key]["cores"].append(span.cores)
                res[key]["machine"].append(span.machine_cores)
    if toggle is not None:
        toggle(0)
    out = {"iters_per_round": n_of, "first_iters_s": {k: v[1] for k, v in per_iter.items()}}
    for key, v in res.items():
        out[key] = {"img_s": summary(v["img_s"]), "cores": summary(v["cores"]),
                    "machine_cores": summary(v["machine"]), "rounds": [round(x, 2) for x in v["img_s"]]}
    return out


# ------------------------------------------------------------------ ours config
def ours_config(folder: Path, resolution: int, batch: int, overrides: dict | None = None) -> TrainConfig:
    """Our Trainer with the textbook's architecture, loss, optimiser and batch size."""
    base = dict(data=str(folder), resolution=resolution, channels=3, arch="dcgan", loss="bce", latent_dim=100,
                g_width=64, d_width=64, d_norm="batch", ema=0.0, lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999,
                batch_size=batch, n_critic=1, steps=10**9, log_every=10**6, sample_every=10**6,
                checkpoint_every=10**6)
    return TrainConfig(**{**base, **(overrides or {})}).validate()


VARIANTS = {
    # name: (config overrides, Trainer kwargs); each is timed in the same alternation as "ours".
    "plain": ({}, {"fast_path": False}),
    "compile": ({"compile": True}, {}),
    "threads1": ({"threads": 1}, {}),
    "threads-all": ({"threads": -1}, {}),  # -1: replaced by the machine's physical cores
}


def variant_overrides(v: str) -> tuple[dict, dict]:
    from ..train.device import physical_cores
    ov, kw = VARIANTS[v]
    if ov.get("threads") == -1:
        ov = {**ov, "threads": physical_cores()}
    return ov, kw


def bench_config(folder: Path, resolution: int, batch: int, device: torch.device, rounds: int, round_s: float,
                 default_threads: int, overrides: dict, variants: list[str]) -> dict[str, Any]:
    from ..data import load_dataset
    ds = load_dataset(str(folder), resolution, channels=3)
    cfg = ours_config(folder, resolution, batch, overrides)
    tb = TextbookSide(folder, resolution, batch, device, default_threads)
    sides: list = [tb, OursSide(cfg, ds, device)]
    compile_s = {}
    for v in variants:
        ov, kw = variant_overrides(v)
        s = OursSide(ours_config(folder, resolution, batch, {**overrides, **ov}), ds, device, name=f"ours-{v}", **kw)
        if ov.get("compile"):
            t0 = time.perf_counter()
            s.iterate(2)  # the first calls compile the forward and backward graphs
            compile_s[s.name] = time.perf_counter() - t0
        sides.append(s)
    try:
        flops = {"textbook": count_flops(lambda: tb.model.iteration(next(tb.it))),
                 "ours": count_flops(lambda: sides[1].t.step())}
        res = alternate(sides, rounds, round_s)
    finally:
        tb.close()
    res["flops_per_iter"] = flops
    res["ratio"] = {s.name: ratio(res, s.name, "textbook") for s in sides[1:]}
    res["ratio_median_of_medians"] = res["ours"]["img_s"]["median"] / res["textbook"]["img_s"]["median"]
    res["gflops_achieved"] = {k: res[k]["img_s"]["median"] / batch * flops[k] / 1e9 for k in flops}
    res["threads"] = {s.name: s.threads for s in sides}
    res["compile_s"] = compile_s
    res["resolution"], res["batch"] = resolution, batch
    return res


# ------------------------------------------------------------------ start-up times
def scan_cache_times(folder: Path, resolution: int) -> dict[str, float]:
    from ..data import load_dataset
    with tempfile.TemporaryDirectory(prefix="gs-bench-cache-") as d:
        t0 = time.perf_counter()
        ds = load_dataset(str(folder), resolution, channels=3, cache_dir=d)
        cold = time.perf_counter() - t0
        t1 = time.perf_counter()
        load_dataset(str(folder), resolution, channels=3, cache_dir=d)
        warm = time.perf_counter() - t1
    return {"images": len(ds), "cold_s": cold, "warm_s": warm}


def first_sample_time(folder: Path, runs_dir: str | Path, resolution: int = 32, overrides: dict | None = None,
                      timeout: float = 120.0) -> dict[str, Any]:
    """Wall time from "start" (create_run, as the studio's Start button, then run() in a thread)
    to the first sample grid on disk and to the first metrics row (step 1)."""
    from ..train import run_training
    from ..train.setup import create_run
    cfg = ours_config(folder, resolution, 64, {**(overrides or {}), "name": "bench-speed-first-sample",
                                                "sample_every": 10**6})
    stop = threading.Event()
    t0 = time.perf_counter()
    trainer = create_run(cfg, runs_dir, shared_cpu=True)
    t_created = time.perf_counter() - t0
    th = threading.Thread(target=run_training, args=(trainer,), kwargs={"should_stop": stop.is_set}, daemon=True)
    th.start()
    first_png = first_row = None
    samples, metrics = trainer.store.samples_dir, trainer.store.path / "metrics.jsonl"
    while time.perf_counter() - t0 < timeout and (first_png is None or first_row is None) and th.is_alive():
        if first_png is None and any(samples.glob("*.png")):
            first_png = time.perf_counter() - t0
        if first_row is None and metrics.is_file() and metrics.stat().st_size > 0:
            first_row = time.perf_counter() - t0
        time.sleep(0.01)
    stop.set()
    th.join(60)
    return {"create_run_s": t_created, "first_sample_s": first_png, "first_metrics_row_s": first_row,
            "run_dir": str(trainer.store.path), "threads": trainer.threads}


def bench_contention(folder: Path, resolution: int, batch: int, device: torch.device, kind: str, rounds: int,
                     round_s: float, default_threads: int, overrides: dict, runs_dir: str | Path) -> dict[str, Any]:
    """Throughput with the load on vs off: the textbook loop, ours with the default (adaptive)
    threads as the studio starts it, and ours pinned to 1 thread and to all cores."""
    from ..data import load_dataset
    from ..train.setup import create_run
    ds = load_dataset(str(folder), resolution, channels=3)
    cfg = ours_config(folder, resolution, batch, overrides)
    tb = TextbookSide(folder, resolution, batch, device, default_threads)
    sides = [tb, OursSide(cfg, ds, device, name="ours", shared_cpu=True)]
    if device.type == "cpu":
        for v in ("threads1", "threads-all"):
            ov, kw = variant_overrides(v)
            sides.append(OursSide(ours_config(folder, resolution, batch, {**overrides, **ov}), ds, device,
                                  name=f"ours-{v}", **kw))
    run_dir = None
    if kind == "studio":  # a run folder for the Monitor page to show
        run_dir = create_run(cfg.replace(name="bench-speed-load"), runs_dir, dataset=ds).store.path
    load = Load(kind, run_dir)
    try:
        res = alternate(sides, rounds, round_s, toggle=load.set)
    finally:
        load.close()
        tb.close()
    res["kept"] = {s.name: ratio(res, f"{s.name}@load", s.name) for s in sides}
    if "ours-threads-all" in res:  # under load vs the fastest fixed setting without load
        res["vs_headless_all_threads"] = ratio(res, "ours@load", "ours-threads-all")
    res["threads"] = {s.name: s.threads for s in sides}
    tuner = sides[1].t.thread_tuner
    res["tuner"] = tuner.summary() if tuner else None
    res["load"], res["resolution"], res["batch"] = kind, resolution, batch
    return res


# ------------------------------------------------------------------ entry points
def run_speed(data: str | None = None, quick: bool = False, runs_dir: str | Path = "runs/bench",
              overrides: dict | None = None, rounds: int | None = None, round_s: float | None = None,
              configs: tuple | None = None, variants: list[str] | None = None, load: str = "busy",
              images: int = DEFAULT_IMAGES, doc: str | Path | None = "docs/benchmarks.md",
              device: str = "auto", parts: tuple[str, ...] = ("scan", "first", "speed", "load"),
              load_config: tuple[int, int] = (32, 64),
              log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)) -> dict[str, Any]:
    from ..train.device import pick_device
    overrides = dict(overrides or {})
    dev = pick_device(device)
    default_threads = torch.get_num_threads()
    rounds = rounds or (2 if quick else 5)
    round_s = round_s or (2.0 if quick else 6.0)
    configs = configs or (QUICK_CONFIGS if quick else FULL_CONFIGS)
    t_start = time.time()
    folder = resolve_folder(data, images)
    r: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "quick": quick, "machine": machine_description(dev),
                         "device": str(dev), "folder": str(folder), "rounds": rounds, "round_s": round_s,
                         "load_start": load_average()[0], "command": " ".join(["python -m core bench speed",
                                                                                *sys.argv[3:]])}
    log(f"speed: data {folder}; device {dev}; load average {r['load_start']:.2f}")
    ceilings = [_ceilings(dev)]
    if "scan" in parts:
        r["scan"] = scan_cache_times(folder, 32)
        log(f"speed: scan+cache {r['scan']}")
    from ..data import load_dataset
    r["images"] = len(load_dataset(str(folder), 32, channels=3))
    if "first" in parts:
        r["first_sample"] = first_sample_time(folder, runs_dir, 32, overrides)
        torch.set_num_threads(default_threads)
        log(f"speed: first sample {r['first_sample']}")
    r["configs"] = []
    if "speed" in parts:
        for res, batch in configs:
            log(f"speed: {res}x{res} batch {batch} ...")
            torch.set_num_threads(default_threads)
            ceilings.append(_ceilings(dev))  # re-measured often: on a shared machine one reading can be low
            c = bench_config(folder, res, batch, dev, rounds, round_s, default_threads, overrides, variants or [])
            r["configs"].append(c)
            log(f"speed:   textbook {fmt(c['textbook']['img_s'])} img/s, ours {fmt(c['ours']['img_s'])} img/s, "
                f"ratio {c['ratio']['ours']['median']:.2f}")
    if "load" in parts and load != "none" and dev.type == "cpu":
        log(f"speed: competing load {load} ...")
        r["contention"] = bench_contention(folder, *load_config, dev, load, rounds, round_s, default_threads,
                                           overrides, runs_dir)
        log(f"speed:   kept {r['contention']['kept']}")
    torch.set_num_threads(default_threads)
    ceilings.append(_ceilings(dev))
    r["ceiling"] = {k: max(c[k] for c in ceilings) for k in ceilings[0]}
    r["ceiling_readings"] = ceilings
    r["load_end"] = load_average()[0]
    r["total_s"] = time.time() - t_start
    if doc and (r["configs"] or r.get("contention")):
        append_doc(Path(doc), to_markdown(r))
        log(f"speed: appended to {doc}")
    return r


def cli_speed(args) -> int:
    variants = [v.strip() for v in (getattr(args, "variants", None) or "").split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise SystemExit(f"--variants: unknown {bad}; valid: {', '.join(VARIANTS)}")
    configs = None
    if args.resolution:
        configs = tuple((args.resolution, b) for b in (getattr(args, "batches", None) or [64, 128]))
    parts = tuple(p.strip() for p in (getattr(args, "parts", None) or "scan,first,speed,load").split(","))
    r = run_speed(data=args.data, quick=args.quick, runs_dir=args.runs_dir,
                  overrides=parse_overrides(args.set or []), rounds=getattr(args, "rounds", None),
                  round_s=getattr(args, "round_s", None), configs=configs, variants=variants,
                  load=getattr(args, "load", "busy"), images=getattr(args, "images", DEFAULT_IMAGES),
                  doc=None if getattr(args, "no_doc", False) else getattr(args, "doc", "docs/benchmarks.md"),
                  parts=parts)
    print(json.dumps(r, indent=1, default=str))
    return 0
