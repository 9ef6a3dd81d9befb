"""The HTTP service around one loaded generator: /health, /info, /generate (PNG grid or zip), with caps."""
from __future__ import annotations

import io
import threading
import zipfile
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..config import ConfigError
from ..generator import LoadedGenerator, class_labels, generate_seeds, image_array
from ..imaging import grid_png, png_bytes

FORMATS = ("png", "zip")
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a 64-bit seed


@dataclass(frozen=True)
class ServeLimits:
    max_n: int = 64            # images per request; more -> 413
    max_concurrent: int = 2    # requests generating at once; more -> 503 at once (no queue to grow)

    def __post_init__(self) -> None:
        if self.max_n < 1:
            raise ConfigError("--max-n", f"must be at least 1, got {self.max_n}")
        if self.max_concurrent < 1:
            raise ConfigError("--max-concurrent", f"must be at least 1, got {self.max_concurrent}")


def model_info(g: LoadedGenerator) -> dict[str, Any]:
    """The model-card facts a client needs to call /generate."""
    return {"family": g.cfg.arch, "resolution": g.resolution, "channels": g.channels, "latent_dim": g.latent_dim,
            "conditional": bool(g.num_classes), "num_classes": g.num_classes, "class_names": list(g.class_names),
            "step": g.step, "uses_ema": g.uses_ema, "loss": g.cfg.loss, "source": g.source.name,
            # where /generate's truncation acts: style families pull w toward w_avg, the others truncate z
            "truncation_space": "w" if all(hasattr(g.G, a) for a in ("mapping", "synthesis", "w_avg")) else "z"}


class BadParam(ValueError):
    def __init__(self, param: str, message: str, status: int = 400):
        super().__init__(message)
        self.param, self.status = param, status


def _int(q, name: str, default: int, lo: int, hi: int | None = None) -> int:
    raw = q.get(name)
    if raw in (None, ""):
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadParam(name, f"{name} must be an integer, got {raw!r}") from None
    if v < lo or (hi is not None and v > hi):
        raise BadParam(name, f"{name} must be between {lo} and {hi}, got {v}" if hi is not None
                       else f"{name} must be at least {lo}, got {v}")
    return v


def _params(q, g: LoadedGenerator, limits: ServeLimits) -> tuple[list[int], float, str | None, str]:
    unknown = sorted(set(q.keys()) - {"seed", "n", "truncation", "class", "format"})
    if unknown:
        raise BadParam(unknown[0], f"unknown parameter {unknown[0]!r}; valid: seed, n, truncation, class, format")
    seed = _int(q, "seed", 0, 0, MAX_SEED)
    n = _int(q, "n", 1, 1)
    if n > limits.max_n:
        raise BadParam("n", f"n={n} is over this server's cap of {limits.max_n} images per request", 413)
    if seed + n - 1 > MAX_SEED:
        raise BadParam("seed", f"seed + n - 1 must stay below 2**63, got seed {seed} with n {n}")
    raw = q.get("truncation")
    try:
        psi = 1.0 if raw in (None, "") else float(raw)
    except ValueError:
        raise BadParam("truncation", f"truncation must be a number, got {raw!r}") from None
    if not 0.0 <= psi <= 1.0:  # also refuses nan
        raise BadParam("truncation", f"truncation (psi) must be between 0 and 1, got {raw}")
    fmt = q.get("format") or "png"
    if fmt not in FORMATS:
        raise BadParam("format", f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    seeds = list(range(seed, seed + n))
    cls = q.get("class") or None
    try:
        class_labels(g, seeds, cls)  # validates the class before any work
    except ConfigError as e:
        raise BadParam("class", str(e).split(": ", 1)[-1]) from None
    return seeds, psi, cls, fmt


def _error(param: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message, "parameter": param}, status_code=status)


def build_app(g: LoadedGenerator, limits: ServeLimits | None = None) -> Starlette:
    """A starlette app serving ``g``. Generation runs in the thread pool (the event loop keeps answering
    /health); at most ``limits.max_concurrent`` at once, further requests get 503 immediately."""
    limits = limits or ServeLimits()
    slots = threading.BoundedSemaphore(limits.max_concurrent)
    info = model_info(g)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def info_route(_request: Request) -> JSONResponse:
        return JSONResponse({**info, "max_n": limits.max_n, "max_concurrent": limits.max_concurrent})

    def render(seeds: list[int], psi: float, cls: str | None, fmt: str) -> bytes:
        images = generate_seeds(g, seeds, psi, cls)  # the same function as `python -m core generate`
        if fmt == "png":
            return grid_png(images)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for s, img in zip(seeds, images):
                zf.writestr(zipfile.ZipInfo(f"seed_{s:06d}.png", date_time=(2020, 1, 1, 0, 0, 0)),
                            png_bytes(image_array(img)))
        return buf.getvalue()

    async def generate_route(request: Request) -> Response:
        try:
            seeds, psi, cls, fmt = _params(request.query_params, g, limits)
        except BadParam as e:
            return _error(e.param, str(e), e.status)
        if not slots.acquire(blocking=False):
            return JSONResponse({"error": f"busy: {limits.max_concurrent} requests are generating; retry shortly"},
                                status_code=503, headers={"Retry-After": "1"})
        try:
            data = await run_in_threadpool(render, seeds, psi, cls, fmt)
        finally:
            slots.release()
        headers = {"X-Seeds": f"{seeds[0]}-{seeds[-1]}"}
        if fmt == "zip":
            headers["Content-Disposition"] = f'attachment; filename="seeds_{seeds[0]}-{seeds[-1]}.zip"'
            return Response(data, media_type="application/zip", headers=headers)
        return Response(data, media_type="image/png", headers=headers)

    return Starlette(routes=[Route("/health", health), Route("/info", info_route),
                             Route("/generate", generate_route)])
