"""`python -m core serve RUN_OR_BUNDLE`: serve a trained generator (or a pix2pix/cyclegan translator) over HTTP (127.0.0.1 unless --host)."""
from __future__ import annotations

import argparse
import sys

from ..config import ConfigError


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..generator import load_generator
    from .app import ServeLimits, build_app
    if not 1 <= args.port <= 65535:
        raise ConfigError("--port", f"must be between 1 and 65535, got {args.port}")
    limits = ServeLimits(max_n=args.max_n, max_concurrent=args.max_concurrent)
    from .translate_app import build_translate_app, is_translation_source, load_translators
    if is_translation_source(args.source):  # a pix2pix / cyclegan run: image in, image out
        nets, cfg, channels = load_translators(args.source, args.checkpoint)
        app, what = build_translate_app(nets, cfg, channels, args.source, limits), (
            f"{cfg.task} translator ({', '.join(sorted(nets))}) from {args.source}", "POST /translate?direction=")
    else:
        g = load_generator(args.source, checkpoint=args.checkpoint)
        app, what = build_app(g, limits), (f"{g.cfg.arch} generator from {g.source} (step {g.step})",
                                           "/generate?seed=0&n=16")
    if args.host != "127.0.0.1":
        print(f"WARNING: binding to {args.host}: anyone who can reach this machine on port {args.port} can ask "
              "this server for images (there is no login, and each request costs CPU/GPU time). Use only on a "
              "trusted network, or put an authenticating reverse proxy in front.", file=sys.stderr)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Serving {what[0]} at http://{host}:{args.port}  (GET /health, /info, {what[1]}; Ctrl-C to stop)",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                access_log=args.log_level in ("info", "debug"))
    return 0


def add_parser(sub) -> None:
    s = sub.add_parser("serve", help="serve a trained generator over HTTP (GET /generate?seed=0&n=16)")
    s.add_argument("source", help="run folder, checkpoint file, or exported bundle (.safetensors or its .json)")
    s.add_argument("--checkpoint", default="latest", help="for a run folder: latest (default), best or a step number")
    s.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1, this machine only). Anything else lets the network "
                        "use the server: there is no login")
    s.add_argument("--port", type=int, default=8600, help="port to listen on (default 8600)")
    s.add_argument("--max-n", dest="max_n", type=int, default=64,
                   help="most images one request may ask for (default 64; more get HTTP 413)")
    s.add_argument("--max-concurrent", dest="max_concurrent", type=int, default=2,
                   help="requests generating at the same time (default 2); more get HTTP 503 with Retry-After "
                        "instead of queueing, so memory stays bounded")
    s.add_argument("--log-level", dest="log_level", default="warning",
                   choices=("critical", "error", "warning", "info", "debug"), help="uvicorn log level")
    s.set_defaults(func=cmd_serve)
