"""Load measurement for `python -m core serve` (not a test): requests/s and latency on loopback.

    python -m benchmarks.serve_load [SOURCE] [--requests 200] [--seconds 60] [--clients 4] [--n 1]
                                    [--max-concurrent 2] [--arch dcgan --resolution 32]

Serves SOURCE (a run folder or bundle) or, without one, an untrained generator of --arch at
--resolution (the cost of a forward pass does not depend on training), on a real uvicorn server on
127.0.0.1 and a free port, and sends at most --requests GET /generate requests (distinct seeds) from
--clients threads for at most --seconds. Prints a markdown section: requests/s of answered (200)
requests, p50/p95/max latency of those, and how many were refused busy (503).
"""
from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


def _untrained(arch: str, resolution: int):
    from core.config import TrainConfig
    from core.generator import LoadedGenerator
    from core.models import build_models
    cfg = TrainConfig(data="shapes", arch=arch, resolution=resolution, device="cpu")
    G, _ = build_models(cfg, 3, 0)
    return LoadedGenerator(G.eval().requires_grad_(False), cfg, 0, 3, 0, Path(f"untrained-{arch}"), [], False)


def main(argv: list[str] | None = None) -> int:
    import torch

    from core.generator import load_generator
    from core.serve import BackgroundServer, ServeLimits, build_app
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", nargs="?", help="run folder or bundle (default: an untrained --arch generator)")
    p.add_argument("--arch", default="dcgan")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--requests", type=int, default=200, help="most requests to send (default 200)")
    p.add_argument("--seconds", type=float, default=60.0, help="stop sending after this long (default 60)")
    p.add_argument("--clients", type=int, default=4, help="client threads (default 4)")
    p.add_argument("--n", type=int, default=1, help="images per request (default 1)")
    p.add_argument("--max-concurrent", type=int, default=2)
    a = p.parse_args(argv)
    g = load_generator(a.source) if a.source else _untrained(a.arch, a.resolution)
    seeds = itertools.count()
    lock = threading.Lock()
    lat: list[float] = []
    codes: dict[int, int] = {}
    with BackgroundServer(build_app(g, ServeLimits(max_n=max(64, a.n), max_concurrent=a.max_concurrent))) as url:
        urllib.request.urlopen(f"{url}/generate?seed=0&n={a.n}", timeout=60).read()  # warm-up
        t_end = time.monotonic() + a.seconds

        def client() -> None:
            while time.monotonic() < t_end:
                with lock:
                    s = next(seeds)
                if s >= a.requests:
                    return
                t0 = time.perf_counter()
                try:
                    with urllib.request.urlopen(f"{url}/generate?seed={s}&n={a.n}", timeout=60) as r:
                        r.read()
                        code = r.status
                except urllib.error.HTTPError as e:
                    code = e.code
                dt = time.perf_counter() - t0
                with lock:
                    codes[code] = codes.get(code, 0) + 1
                    if code == 200:
                        lat.append(dt)
                if code == 503:
                    time.sleep(0.01)  # a client honouring Retry-After would wait longer; this keeps pressure on

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
    print(f"## Serve: GET /generate on loopback — {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} intra-op threads")
    print(f"- Model: {g.cfg.arch} {g.resolution} px ({'untrained' if not a.source else g.source.name}), "
          f"{a.n} image(s) per request as a PNG grid; server --max-concurrent {a.max_concurrent}")
    print(f"- Command: `{' '.join(['python -m benchmarks.serve_load', *(sys.argv[1:] if argv is None else argv)])}`")
    print(f"- {sum(codes.values())} requests from {a.clients} client threads in {wall:.1f} s: "
          + ", ".join(f"{c}: {k}" for c, k in sorted(codes.items())) + "\n")
    print("| answered/s | images/s | p50 ms | p95 ms | max ms | refused busy (503) |\n|---|---|---|---|---|---|")
    ok = codes.get(200, 0)
    print(f"| {ok / wall:.1f} | {ok * a.n / wall:.1f} | {pct(0.5):.1f} | {pct(0.95):.1f} | "
          f"{lat[-1] * 1000 if lat else float('nan'):.1f} | {codes.get(503, 0)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
