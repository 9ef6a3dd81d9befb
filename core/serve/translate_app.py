"""The HTTP service around a translation run (pix2pix / cyclegan): /health, /info, POST /translate (image in, PNG out), with caps."""
from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..data.decode import load_image
from ..data.errors import DataError
from ..imaging import png_bytes
from ..translate.cli import translate_array
from .app import ServeLimits

MAX_BODY_BYTES = 20 * 1024**2  # one uploaded image; more -> 413 (the bomb guard then bounds its pixels)


def is_translation_source(source: str | Path) -> bool:
    """A run folder whose config says task pix2pix/cyclegan (cheap: config.json, no weights), or an exported
    translator bundle (its .safetensors header or .json)."""
    from ..runs import load_run
    from ..translate.bundle import is_translator_bundle
    p = Path(source)
    if p.is_file():
        return is_translator_bundle(p)
    try:
        if p.is_dir():
            return (load_run(p).config or {}).get("task", "generate") != "generate"
    except Exception:  # noqa: BLE001 - a folder that cannot be read is left to the generator loader's error
        return False
    return False


def load_translators(source: str | Path, checkpoint: str = "latest") -> tuple[dict[str, torch.nn.Module], Any, int]:
    """{direction: network} (both for cyclegan), the run's config and its channel count."""
    from ..translate.bundle import is_translator_bundle, load_translator_bundle
    from ..translate.cli import load_translator
    if is_translator_bundle(source):
        return load_translator_bundle(source)
    G, cfg, channels = load_translator(source, None, checkpoint)
    nets = {cfg.direction: G}
    if cfg.task == "cyclegan":
        other = "BtoA" if cfg.direction == "AtoB" else "AtoB"
        nets[other] = load_translator(source, other, checkpoint)[0]
    return nets, cfg, channels


def build_translate_app(nets: dict[str, torch.nn.Module], cfg, channels: int, source: str,
                        limits: ServeLimits | None = None) -> Starlette:
    limits = limits or ServeLimits()
    slots = threading.BoundedSemaphore(limits.max_concurrent)
    info = {"task": cfg.task, "resolution": cfg.resolution, "channels": channels, "directions": sorted(nets),
            "default_direction": cfg.direction, "source": Path(source).name, "max_body_bytes": MAX_BODY_BYTES,
            "max_concurrent": limits.max_concurrent}

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def info_route(_request: Request) -> JSONResponse:
        return JSONResponse(info)

    @torch.no_grad()
    def run(net: torch.nn.Module, data: bytes) -> bytes:
        # Decoded exactly as translate/training do: EXIF orientation, colour mode, centre crop, resize.
        y = translate_array(net, load_image(io.BytesIO(data), cfg.resolution, channels))
        return png_bytes(y[0] if channels == 1 else np.ascontiguousarray(y.transpose(1, 2, 0)))

    def error(param: str, message: str, status: int) -> JSONResponse:
        return JSONResponse({"error": message, "parameter": param}, status_code=status)

    async def translate_route(request: Request) -> Response:
        unknown = sorted(set(request.query_params.keys()) - {"direction"})
        if unknown:
            return error(unknown[0], f"unknown parameter {unknown[0]!r}; valid: direction", 400)
        direction = request.query_params.get("direction") or cfg.direction
        if direction not in nets:
            return error("direction", f"direction must be one of {', '.join(sorted(nets))}, got {direction!r}", 400)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return error("body", f"the image is over this server's cap of {MAX_BODY_BYTES // 1024**2} MB", 413)
        body = bytearray()
        async for chunk in request.stream():  # counted as it arrives: a missing or false length cannot exhaust memory
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return error("body", f"the image is over this server's cap of {MAX_BODY_BYTES // 1024**2} MB", 413)
        if not body:
            return error("body", "POST the image file as the request body (PNG, JPEG, WebP, ...)", 400)
        if not slots.acquire(blocking=False):
            return JSONResponse({"error": f"busy: {limits.max_concurrent} requests are translating; retry shortly"},
                                status_code=503, headers={"Retry-After": "1"})
        try:
            data = await run_in_threadpool(run, nets[direction], bytes(body))
        except DataError as e:
            return error("body", f"not a readable image: {str(e).split(': ', 1)[-1]}", 400)
        finally:
            slots.release()
        return Response(data, media_type="image/png", headers={"X-Direction": direction})

    return Starlette(routes=[Route("/health", health), Route("/info", info_route),
                             Route("/translate", translate_route, methods=["POST"])])
