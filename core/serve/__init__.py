"""``python -m core serve``: a trained generator behind a small HTTP API (starlette + uvicorn).

- ``app``: the starlette application (``/health``, ``/info``, ``/generate``) with its limits;
- ``server``: ``BackgroundServer``, the app on a real uvicorn server in a thread;
- ``cli``: the ``serve`` sub-command (loopback by default, a warning otherwise).
"""
from .app import ServeLimits, build_app, model_info
from .server import BackgroundServer

__all__ = ["ServeLimits", "build_app", "model_info", "BackgroundServer"]
