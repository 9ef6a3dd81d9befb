#!/usr/bin/env python
"""Start GAN Studio: `python run_studio.py [--port 8501] [--runs-dir runs] [--no-browser]`.

Runs `python -m streamlit run studio/app.py` bound to 127.0.0.1 with the file watcher, the
toolbar's developer options and usage statistics off, XSRF and CORS protection forced on and
WebSocket Host names limited to the ones the studio is opened by (DNS rebinding), opens the
browser once the server answers, and forwards Ctrl-C / SIGTERM so training threads stop cleanly
(final checkpoint).
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import webbrowser
from pathlib import Path

ROOT = Path(__file__).resolve().parent
APP = ROOT / "studio" / "app.py"
LOOPBACK_NAMES = ("localhost", "127.0.0.1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
# server.allowedHosts (the WebSocket Host allow-list) first exists in this Streamlit release;
# older ones would reject the flag, and without it any web page can rebind a name to 127.0.0.1.
MIN_STREAMLIT = (1, 61, 0)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_for_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def allowed_hosts(args: argparse.Namespace) -> list[str]:
    """Host names the studio accepts WebSocket connections for (ports are not compared).

    Why: the socket is bound to loopback, but a page on evil.example can re-point that name at
    127.0.0.1 (DNS rebinding); its WebSocket then carries Host and Origin evil.example, which look
    same-origin. Only the names the studio is really opened by may connect.
    """
    names = list(LOOPBACK_NAMES)
    if args.host in WILDCARD_HOSTS:  # every interface: the names and addresses of this machine
        names += [socket.gethostname(), socket.getfqdn(), *_own_addresses()]
    elif args.host not in names:
        names.append(args.host)
    names += getattr(args, "allow_host", None) or []
    return list(dict.fromkeys(n for n in names if n))


def _own_addresses() -> list[str]:
    out = []
    try:
        out += [ai[4][0] for ai in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    except OSError:
        pass
    try:  # the address of the default route's interface (UDP connect sends nothing)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            out.append(s.getsockname()[0])
    except OSError:
        pass
    return out


def streamlit_too_old() -> str | None:
    """A message when the installed Streamlit lacks server.allowedHosts, else None."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        v = version("streamlit")
    except PackageNotFoundError:
        return "Streamlit is not installed: pip install -r requirements.txt"
    parts = tuple(int(x) for x in re.findall(r"\d+", v)[:3])
    if parts < MIN_STREAMLIT:
        need = ".".join(map(str, MIN_STREAMLIT))
        return (f"Streamlit {v} is too old: GAN Studio needs {need} or newer, the first release that can refuse "
                f"DNS-rebinding connections (server.allowedHosts). Upgrade: pip install 'streamlit>={need}'")
    return None


def build_command(args: argparse.Namespace) -> list[str]:
    hosts = [a for h in allowed_hosts(args) for a in ("--server.allowedHosts", h)]
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", args.host,
        "--server.port", str(args.port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        # Explicit, so a user's ~/.streamlit/config.toml or STREAMLIT_SERVER_* variable cannot turn them off.
        "--server.enableXsrfProtection", "true",
        "--server.enableCORS", "true",
        "--server.maxUploadSize", "200",  # MB per uploaded file (Data page, Translate page); core vets the rest
        *hosts,
        "--client.toolbarMode", "minimal",
        # Streamlit's forced full garbage collection after every script and fragment run cost ~170 ms of
        # CPU each here (4% of a core for a page refreshing every 5 s, taken from training on a small
        # CPU); Python's own generational collector still runs (tools/idle_cpu.py, docs/reliability.md).
        "--runner.postScriptGC", "false",
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", "localhost" if args.host == "127.0.0.1" else args.host,
        "--browser.serverPort", str(args.port),
        # Colours for both themes, no base: the studio follows the browser's light / dark preference.
        "--theme.light.primaryColor", "#7c3aed",
        "--theme.dark.primaryColor", "#a78bfa",
    ]


def open_browser(url: str, port: int) -> bool:
    """Open ``url`` in the user's browser; where none can be opened (a server, SSH), say plainly what to do."""
    try:
        opened = webbrowser.open(url)
    except webbrowser.Error:
        opened = False
    if not opened:
        print(f"No browser could be opened on this machine. Open {url} in your browser; from another "
              f"computer, forward the port first: ssh -L {port}:localhost:{port} THIS_MACHINE", flush=True)
    return opened


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Start GAN Studio in your browser.")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    p.add_argument("--runs-dir", default="runs", help="folder holding the run folders (default ./runs)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1). Anything else exposes the studio, which can read "
                        "and delete files in the runs folder and start training, to your network.")
    p.add_argument("--allow-host", dest="allow_host", action="append", metavar="NAME",
                   help="another host name the browser may use to reach the studio (e.g. behind a reverse proxy); "
                        "repeatable. localhost, 127.0.0.1 and --host are always allowed")
    args = p.parse_args(argv)
    if args.host != "127.0.0.1":
        print(f"WARNING: binding to {args.host}: anyone who can reach this machine on port {args.port} can use the "
              "studio (start training, read images, delete runs). There is no login. Use only on a trusted "
              "network.", file=sys.stderr)
        print(f"Browsers may open it as: {', '.join(allowed_hosts(args))} (any other name is refused, against DNS "
              "rebinding; add one with --allow-host NAME).", file=sys.stderr)
    if not 1 <= args.port <= 65535:
        p.error("--port must be between 1 and 65535")
    if (old := streamlit_too_old()) is not None:
        print(old, file=sys.stderr)
        return 2
    if not port_free(args.host, args.port):
        print(f"Port {args.port} on {args.host} is already in use (another studio?). Pick another with --port.",
              file=sys.stderr)
        return 2

    runs_dir = Path(args.runs_dir).expanduser().resolve()
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"Cannot create the runs folder {runs_dir}: {e.strerror or e}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env["GAN_STUDIO_RUNS_DIR"] = str(runs_dir)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")

    # Own session: a terminal's Ctrl-C reaches only us, and we forward it exactly once.
    proc = subprocess.Popen(build_command(args), cwd=str(ROOT), env=env, start_new_session=True)

    def forward(signum, _frame):  # noqa: ANN001
        if proc.poll() is None:
            proc.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)

    url = f"http://{'localhost' if args.host == '127.0.0.1' else args.host}:{args.port}"

    def announce() -> None:
        if wait_for_port("127.0.0.1" if args.host in ("127.0.0.1", "0.0.0.0") else args.host, args.port, proc):
            print(f"GAN Studio is running at {url}  (runs folder: {runs_dir}; Ctrl-C to stop)", flush=True)
            if not args.no_browser:
                open_browser(url, args.port)

    threading.Thread(target=announce, daemon=True).start()
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # the handler already forwarded it; keep waiting for a clean exit
            continue


if __name__ == "__main__":
    sys.exit(main())
