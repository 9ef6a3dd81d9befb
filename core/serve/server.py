"""Run the app on a real uvicorn server in a background thread (tests, the load benchmark, notebooks)."""
from __future__ import annotations

import threading
import time

import uvicorn


class BackgroundServer:
    """``with BackgroundServer(app) as url:`` — uvicorn on 127.0.0.1 and a free port (the OS picks it)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0):
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                                    lifespan="off"))
        self.host, self.timeout = host, timeout
        self.thread = threading.Thread(target=self.server.run, name="gan-serve", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server did not start on {self.host} within {self.timeout:.0f} s")
            time.sleep(0.02)
        return f"http://{self.host}:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=self.timeout)
