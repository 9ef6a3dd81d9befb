"""Security: the server listens on 127.0.0.1 only, with XSRF/CORS protection and no file watcher; hostile
checkpoints and bundles are refused without running their code; run paths cannot leave the runs root;
the minimum library versions carry the known security fixes."""
from __future__ import annotations

import ast
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from faultkit import ROOT, cli, env_for_child, tiny, wait_for

from core.runs import RunError, RunStore, delete_run, resolve_inside, sanitize_name
from core.train import run_training


# ------------------------------------------------------------------ the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listeners(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of sockets LISTENing on ``port``."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            f = ln.split()
            addr, hport = f[1].rsplit(":", 1)
            if f[3] == "0A" and int(hport, 16) == port:
                out.append(addr)
    return out


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_server_binds_loopback_with_xsrf_and_no_file_watcher(tmp_path):
    pytest.importorskip("streamlit")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_studio.py"), "--no-browser", "--port", str(port),
                             "--runs-dir", str(tmp_path / "runs")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env_for_child(), cwd=str(tmp_path), text=True)
    try:
        assert wait_for(lambda: _listeners(port) or proc.poll() is not None, 120, 0.2)
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.5)
        addrs = _listeners(port)
        assert addrs and all(a == "0100007F" for a in addrs), f"listening on {addrs}, expected 127.0.0.1 only"
        # XSRF on: the server hands out its _streamlit_xsrf token cookie; CORS on: a foreign origin is not echoed.
        req = urllib.request.Request(f"http://127.0.0.1:{port}/_stcore/health",
                                     headers={"Origin": "http://evil.example"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
            cookies = r.headers.get_all("set-cookie") or []
            allow = r.headers.get("access-control-allow-origin")
        assert any(c.startswith("_streamlit_xsrf=") for c in cookies), cookies
        assert allow not in ("*", "http://evil.example"), allow
        # The streamlit process itself: no file watcher, nothing switches XSRF/CORS off.
        kids = _children(proc.pid)
        assert kids, "run_studio.py should run streamlit as a child process"
        argv = Path(f"/proc/{kids[0]}/cmdline").read_bytes().split(b"\0")
        args = [a.decode() for a in argv]
        assert args[args.index("--server.fileWatcherType") + 1] == "none"
        assert args[args.index("--server.address") + 1] == "127.0.0.1"
        for opt in ("--server.enableXsrfProtection", "--server.enableCORS"):  # forced on, never off
            assert [args[i + 1] for i, a in enumerate(args) if a == opt] == ["true"], opt
        hosts = [args[i + 1] for i, a in enumerate(args) if a == "--server.allowedHosts"]
        assert hosts == ["localhost", "127.0.0.1"], hosts
        envs = Path(f"/proc/{kids[0]}/environ").read_bytes().split(b"\0")
        assert not any(e.startswith((b"STREAMLIT_SERVER_ENABLE_XSRF", b"STREAMLIT_SERVER_ENABLE_CORS")) for e in envs)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # run_studio forwards it; streamlit shuts down
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                for k in _children(proc.pid):
                    os.kill(k, signal.SIGKILL)
                proc.kill()
                proc.wait(10)


def test_repo_streamlit_config_keeps_protections():
    """`streamlit run studio/app.py` without run_studio.py reads .streamlit/config.toml: same safe settings."""
    cfg = ROOT / ".streamlit" / "config.toml"
    if not cfg.exists():
        pytest.skip("no .streamlit/config.toml")
    import tomllib
    c = tomllib.loads(cfg.read_text())
    server = c.get("server", {})
    assert server.get("address") == "127.0.0.1"
    assert server.get("fileWatcherType") == "none"
    assert server.get("enableXsrfProtection", True) is True and server.get("enableCORS", True) is True
    assert server.get("allowedHosts") == ["localhost", "127.0.0.1"]  # DNS rebinding: no other Host name


def test_binding_elsewhere_needs_a_flag_and_warns(capsys):
    import run_studio
    src = (ROOT / "run_studio.py").read_text()
    assert 'default="127.0.0.1"' in src
    with socket.socket() as s:  # a busy port: main() stops right after the warning, no server starts
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        rc = run_studio.main(["--host", "0.0.0.0", "--port", str(port), "--no-browser", "--runs-dir", "/nonexistent"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "WARNING" in err and "0.0.0.0" in err and "no login" in err.lower()
    assert "Browsers may open it as: localhost, 127.0.0.1" in err and "--allow-host" in err
    args = run_studio.build_command(run_studio.argparse.Namespace(host="127.0.0.1", port=8501))
    assert args[args.index("--server.address") + 1] == "127.0.0.1"
    # Bound elsewhere, that address is allowed too (and names given with --allow-host), nothing more.
    args = run_studio.build_command(run_studio.argparse.Namespace(host="10.1.2.3", port=8501,
                                                                   allow_host=["gan.lan"]))
    hosts = [args[i + 1] for i, a in enumerate(args) if a == "--server.allowedHosts"]
    assert hosts == ["localhost", "127.0.0.1", "10.1.2.3", "gan.lan"] and "*" not in hosts



def _upgrade_status(port: int, host: str, origin: str | None) -> str:
    """The status line the server answers to a raw WebSocket upgrade of /_stcore/stream."""
    lines = ["GET /_stcore/stream HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Protocol: streamlit"] + ([f"Origin: {origin}"] if origin else [])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def test_dns_rebinding_and_foreign_origins_cannot_open_the_websocket(tmp_path):
    """A page on evil.example whose name was re-pointed at 127.0.0.1 sends Host and Origin
    evil.example:PORT (same-origin to the browser): the studio must refuse that upgrade, while the
    names the studio is opened by (localhost, 127.0.0.1) still connect."""
    pytest.importorskip("streamlit")
    from e2e import driver
    port = driver.free_port()
    with driver.studio_server(tmp_path / "runs", port=port, log=tmp_path / "studio.log"):
        for host in ("localhost", "127.0.0.1"):
            st = _upgrade_status(port, f"{host}:{port}", f"http://{host}:{port}")
            assert " 101 " in st, f"{host}: {st}"
        evil = f"evil.example:{port}"
        for origin in (f"http://{evil}", None):
            st = _upgrade_status(port, evil, origin)
            assert " 101 " not in st and " 403 " in st, f"rebinding upgrade (Origin {origin}) answered {st}"
        st = _upgrade_status(port, f"localhost:{port}", "http://evil.example")  # CORS: a foreign page
        assert " 101 " not in st, st

# ------------------------------------------------------------------ hostile checkpoints
class _Evil:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant(path: Path, marker: Path) -> Path:
    """A file that looks like our checkpoint and runs `touch MARKER` when unpickled without weights_only."""
    from core.train.checkpoint import FORMAT
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "version": 1, "step": 99, "G": {"w": torch.zeros(2)}, "payload": _Evil(marker)},
               path)
    return path


def test_planted_pickle_really_is_dangerous(tmp_path):
    """Control experiment: a careless torch.load(weights_only=False) does run the payload."""
    marker = tmp_path / "pwned-control"
    evil = _plant(tmp_path / "evil.pt", marker)
    code = f"import torch; torch.load({str(evil)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], env=env_for_child(), timeout=120, capture_output=True)
    assert marker.exists()


@pytest.fixture
def trained_run(tmp_path):
    from core.train import create_run
    t = create_run(tiny(steps=3, checkpoint_every=3), tmp_path / "runs")
    assert run_training(t) == "finished"
    return t.store.path


def test_load_checkpoint_and_load_generator_refuse_a_planted_pickle(tmp_path, trained_run):
    from core.generator import load_generator
    from core.train.checkpoint import CheckpointError, latest_valid_checkpoint, load_checkpoint
    marker = tmp_path / "pwned"
    evil = _plant(trained_run / "checkpoints" / "step_0000009.pt", marker)  # newest: resume would pick it first
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(evil)
    assert str(evil) in str(e.value) and "not a usable checkpoint" in str(e.value)
    with pytest.raises(CheckpointError):
        load_generator(evil)
    path, state = latest_valid_checkpoint(trained_run / "checkpoints")  # skips it, uses the real one
    assert path.name == "step_0000003.pt"
    assert load_generator(trained_run).step == 3
    # the only checkpoint of a run is hostile: nothing loads
    only = tmp_path / "only"
    (only / "checkpoints").mkdir(parents=True)
    (only / "config.json").write_text((trained_run / "config.json").read_text())
    _plant(only / "checkpoints" / "step_0000003.pt", marker)
    with pytest.raises(CheckpointError) as e:
        load_generator(only)
    assert "no usable checkpoint" in str(e.value)
    assert not marker.exists()


def test_bundles_refuse_pickles(tmp_path):
    from core.generator import load_generator
    from core.train.checkpoint import CheckpointError
    marker = tmp_path / "pwned"
    fake = _plant(tmp_path / "model.safetensors", marker)  # a pickle wearing a .safetensors name
    with pytest.raises(CheckpointError) as e:
        load_generator(fake)
    assert "not a safetensors file" in str(e.value)
    side = tmp_path / "b" / "model.json"
    side.parent.mkdir()
    _plant(side.with_name("weights.bin"), marker)
    side.write_text(json.dumps({"format": "gan-studio-generator", "version": 1, "weights": "weights.bin",
                                "config": tiny().to_dict(), "channels": 3, "num_classes": 0, "step": 1}))
    with pytest.raises(CheckpointError):
        load_generator(side)
    side.write_text(json.dumps({"format": "gan-studio-generator", "version": 1, "weights": "../../etc/passwd",
                                "config": tiny().to_dict(), "channels": 3, "num_classes": 0, "step": 1}))
    with pytest.raises(CheckpointError):
        load_generator(side)
    assert not marker.exists()


def test_cli_resume_and_generate_refuse_a_planted_pickle(tmp_path, trained_run):
    marker = tmp_path / "pwned"
    for _, p in [(0, q) for q in (trained_run / "checkpoints").glob("*.pt")]:
        p.unlink()
    evil = _plant(trained_run / "checkpoints" / "step_0000003.pt", marker)
    r = cli("resume", str(trained_run), "--steps", "10", "--quiet")
    assert r.returncode == 2 and r.stderr.startswith("error:") and "unreadable" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    g = cli("generate", str(evil), "-n", "2", "--out", str(tmp_path / "out"))
    assert g.returncode == 2 and "error:" in g.stderr and "not a usable checkpoint" in g.stderr, g.stderr
    assert "Traceback" not in g.stderr
    assert not marker.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_no_unsafe_deserialisation_in_the_code():
    """Every torch.load passes weights_only=True; no pickle/marshal loads, no np.load(allow_pickle=True)."""
    bad = []
    for f in [*ROOT.joinpath("core").rglob("*.py"), *ROOT.joinpath("studio").rglob("*.py")]:
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            name = f"{getattr(fn.value, 'id', getattr(fn.value, 'attr', ''))}.{fn.attr}" if isinstance(
                fn, ast.Attribute) else getattr(fn, "id", "")
            kw = {k.arg: k.value for k in node.keywords}
            where = f"{f.relative_to(ROOT)}:{node.lineno}"
            if name == "torch.load":
                v = kw.get("weights_only")
                if not (isinstance(v, ast.Constant) and v.value is True):
                    bad.append(f"{where} torch.load without weights_only=True")
            if name in ("pickle.load", "pickle.loads", "marshal.loads", "dill.load", "joblib.load"):
                bad.append(f"{where} {name}")
            if name.endswith(".load") and isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value:
                bad.append(f"{where} allow_pickle=True")
    assert not bad, bad


# ------------------------------------------------------------------ paths from the UI
def test_sanitize_name_never_yields_a_path():
    for hostile in ("../../etc", "/etc/passwd", "..", ".", "", "a/../../b", "..\\..\\x", "a\0b", "~root",
                    "x" * 500, "\u202e.png", "runs/../..", "-", "...."):
        s = sanitize_name(hostile)
        assert s and "/" not in s and "\\" not in s and "\0" not in s and s not in (".", "..")
        assert not s.startswith((".", "-", "~")) or s == "run"
        assert len(s) <= 60


def test_run_store_create_stays_inside_the_root(tmp_path):
    root = tmp_path / "runs"
    for hostile in ("../escape", "/tmp/abs", "..", "a/../../b"):
        store = RunStore.create(root, hostile, tiny().to_dict(), {})
        assert store.path.resolve().parent == root.resolve()
    assert not (tmp_path / "escape").exists()


def test_resolve_inside_and_delete_run_refuse_escapes(tmp_path):
    root, outside = tmp_path / "runs", tmp_path / "precious"
    (root / "00001-ok").mkdir(parents=True)
    outside.mkdir()
    (outside / "keep.txt").write_text("do not delete")
    (root / "00002-link").symlink_to(outside, target_is_directory=True)  # a symlink to a folder outside
    (root / "00001-ok" / "up").symlink_to(tmp_path, target_is_directory=True)
    hostile = ["../precious", str(outside), "00001-ok/../../precious", "00002-link", root / "00002-link",
               "00001-ok/up/precious", "/", "~", "..", root / ".."]
    for h in hostile:
        with pytest.raises(RunError):
            resolve_inside(root, h)
        with pytest.raises(RunError):
            delete_run(root, h)
    for h in (".", "", root):  # the root itself is not a run folder
        with pytest.raises(RunError):
            delete_run(root, h)
    assert (outside / "keep.txt").read_text() == "do not delete"
    assert (root / "00001-ok").is_dir()
    assert resolve_inside(root, "00001-ok") == (root / "00001-ok").resolve()
    delete_run(root, "00001-ok")  # a real run folder inside the root can be deleted
    assert not (root / "00001-ok").exists() and (outside / "keep.txt").exists()


# ------------------------------------------------------------------ dependency minimums
MINIMUMS = {"torch": (2, 6, 0), "pillow": (11, 3, 0), "streamlit": (1, 61, 0)}  # 1.61: server.allowedHosts


def _ver(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", s.split("+")[0])[:3])


def test_minimum_versions_pinned_and_installed():
    req = (ROOT / "requirements.txt").read_text().lower()
    for pkg, minimum in MINIMUMS.items():
        m = re.search(rf"^{pkg}\s*>=\s*([\d.]+)", req, re.M)
        assert m, f"requirements.txt has no minimum for {pkg}"
        assert _ver(m.group(1)) >= minimum, f"{pkg}>={m.group(1)} is below the first fixed release {minimum}"
    import PIL
    import streamlit
    for pkg, v in (("torch", torch.__version__), ("pillow", PIL.__version__), ("streamlit", streamlit.__version__)):
        assert _ver(v) >= MINIMUMS[pkg], f"installed {pkg} {v} is older than {MINIMUMS[pkg]}"
    doc = ROOT / "docs" / "reliability.md"
    if doc.exists():
        text = doc.read_text()
        assert "CVE-2025-32434" in text  # the torch.load(weights_only=True) bypass fixed in 2.6.0


def test_studio_uploads_are_bounded_and_vetted():
    """Uploads exist in two places, each with its own checks: the Data page hands files to core.data.upload
    (sizes, counts, zip-slip, links, bombs; then the folder is scanned, every file decoded), the Translate
    page decodes one image through core.data.decode with Pillow's bomb guard on. The per-file size cap is
    Streamlit's server.maxUploadSize, set explicitly so a user's config cannot raise it. A new uploader
    elsewhere fails this test until it says how it is vetted."""
    vetted = {"studio/upload_panel.py": "core.data.upload", "studio/pages/translate.py": "translate_images"}
    uses = [str(f.relative_to(ROOT)) for f in ROOT.joinpath("studio").rglob("*.py")
            if "file_uploader" in f.read_text(encoding="utf-8")]
    assert uses and set(uses) <= set(vetted), f"{uses}: an st.file_uploader without a known vetting path"
    for f in uses:
        assert vetted[f] in (ROOT / f).read_text(encoding="utf-8"), f
    assert "core.data.decode" in (ROOT / "studio" / "translate_images.py").read_text(encoding="utf-8")
    import run_studio
    cmd = run_studio.build_command(run_studio.argparse.Namespace(host="127.0.0.1", port=8501))
    assert "--server.maxUploadSize" in cmd and cmd[cmd.index("--server.maxUploadSize") + 1] == "200"
