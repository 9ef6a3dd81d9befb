"""core.serve: a real uvicorn server on a loopback port answering /health, /info and /generate with the
same pixels as `python -m core generate`, 400/413 naming the parameter, 503 beyond the concurrency cap."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import cli
from core.generator import generate_seeds, load_generator
from core.imaging import grid_png
from core.serve import BackgroundServer, ServeLimits, build_app
from core.serve import app as serve_app

ROOT = Path(__file__).resolve().parent.parent


def _make_run(root, **kw):
    from core.config import TrainConfig
    from core.train import create_run, run_training
    base = dict(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=2,
                checkpoint_every=2, device="cpu", threads=1)
    t = create_run(TrainConfig(**{**base, **kw}), root)
    assert run_training(t) == "finished"
    return t.store.path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _make_run(tmp_path_factory.mktemp("runs"), arch="resnet-sn", conditional=True)


def _get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_health_info_and_the_same_pixels_as_generate(run, tmp_path):
    g = load_generator(run)
    with BackgroundServer(build_app(g)) as url:
        assert _get(url + "/health")[:3:2] == (200, b'{"status":"ok"}')
        code, _, body = _get(url + "/info")
        info = json.loads(body)
        assert code == 200
        assert (info["family"], info["resolution"], info["channels"], info["latent_dim"]) == ("resnet-sn", 16, 3, 16)
        assert info["truncation_space"] == "z" and info["max_n"] == 64
        assert info["num_classes"] == 4 and info["class_names"] == ["circle", "square", "triangle", "ring"]
        code, headers, body = _get(url + "/generate?seed=3&n=4&truncation=0.7&class=square&format=zip")
        assert code == 200 and headers["content-type"] == "application/zip"
        assert cli.main(["generate", str(run), "-n", "4", "--seed", "3", "--truncation", "0.7", "--class", "square",
                         "--out", str(tmp_path / "cli")]) == 0
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            assert sorted(zf.namelist()) == [f"seed_{s:06d}.png" for s in range(3, 7)]
            for name in zf.namelist():
                assert np.array_equal(_pixels(zf.read(name)), _pixels((tmp_path / "cli" / name).read_bytes())), name
        code, headers, body = _get(url + "/generate?seed=5&n=3")
        assert code == 200 and headers["content-type"] == "image/png"
        assert np.array_equal(_pixels(body), _pixels(grid_png(generate_seeds(g, [5, 6, 7]))))
        assert _get(url + "/generate")[0] == 200  # every parameter has a default (seed 0, n 1)


@pytest.fixture(scope="module")
def capped_server(run):
    with BackgroundServer(build_app(load_generator(run), ServeLimits(max_n=8))) as url:
        yield url


@pytest.mark.parametrize("query, param, status", [
    ("seed=abc", "seed", 400), ("seed=-1", "seed", 400), ("n=0", "n", 400), ("n=1.5", "n", 400),
    ("n=9", "n", 413), ("truncation=nan", "truncation", 400), ("truncation=2", "truncation", 400),
    ("truncation=x", "truncation", 400), ("class=dog", "class", 400), ("class=7", "class", 400),
    ("format=gif", "format", 400), ("size=64", "size", 400), (f"seed={2**63 - 2}&n=4", "seed", 400),
])
def test_bad_parameters_are_refused_naming_the_parameter(capped_server, query, param, status):
    code, headers, body = _get(f"{capped_server}/generate?{query}")
    assert code == status and headers["content-type"] == "application/json"
    err = json.loads(body)
    assert err["parameter"] == param and param in err["error"]


def test_requests_beyond_the_concurrency_cap_get_503_at_once(run, monkeypatch):
    started, release = threading.Event(), threading.Event()
    real = serve_app.generate_seeds

    def slow(*a, **kw):
        started.set()
        assert release.wait(30)
        return real(*a, **kw)

    monkeypatch.setattr(serve_app, "generate_seeds", slow)
    with BackgroundServer(build_app(load_generator(run), ServeLimits(max_concurrent=1))) as url:
        first: list = []
        t = threading.Thread(target=lambda: first.append(_get(url + "/generate?seed=1")))
        t.start()
        assert started.wait(30)
        t0 = time.monotonic()
        code, headers, body = _get(url + "/generate?seed=2")
        assert code == 503 and headers["retry-after"] == "1" and "busy" in json.loads(body)["error"]
        assert time.monotonic() - t0 < 5  # refused, not queued behind the slow one
        assert _get(url + "/health")[0] == 200  # the event loop is free while generating
        release.set()
        t.join(30)
        assert first[0][0] == 200
        assert _get(url + "/generate?seed=2")[0] == 200  # the slot was given back


def test_limits_are_validated():
    with pytest.raises(ValueError, match="--max-n"):
        ServeLimits(max_n=0)
    with pytest.raises(ValueError, match="--max-concurrent"):
        ServeLimits(max_concurrent=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_answers_and_warns_off_loopback(run):
    """`python -m core serve` as a user starts it: --host other than 127.0.0.1 (here localhost, still
    loopback) prints the warning; the server answers /info."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "core", "serve", str(run), "--port", str(port), "--host",
                             "localhost"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                code, _, body = _get(f"http://127.0.0.1:{port}/info")
                break
            except urllib.error.URLError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert code == 200 and json.loads(body)["family"] == "resnet-sn"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "WARNING: binding to localhost" in err and "no login" in err


def test_serve_command_refuses_a_bad_port(run, capsys):
    assert cli.main(["serve", str(run), "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
