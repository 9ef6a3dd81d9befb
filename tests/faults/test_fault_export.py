"""#19: a full disk during `export` is one line and exit 2 with no file of the set left; a SIGKILL during
`export` never leaves a partial file under the final name (temp file in the same folder, fsync, os.replace)."""
from __future__ import annotations

import errno
import subprocess
import sys

import pytest
from faultkit import env_for_child

from core.cli import main


@pytest.mark.parametrize("fmt, fail_at", [("safetensors", 1), ("safetensors", 3), ("torch-export", 1)])
def test_a_full_disk_during_export_is_one_line_and_leaves_nothing(tiny_run, tmp_path, capsys, monkeypatch, fmt, fail_at):
    import core.fsutil as fs
    real, calls = fs.os.fsync, []

    def full(fd):  # the data reached the temp file; the disk is full when it is flushed
        calls.append(fd)
        if len(calls) >= fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)
    monkeypatch.setattr(fs.os, "fsync", full)
    out = tmp_path / "exp"
    assert main(["export", str(tiny_run), "--format", fmt, "--out", str(out) + "/"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == []  # no temp file, and no half set of the bundle's files


def test_sigkill_during_export_keeps_the_previous_file_whole(tiny_run, tmp_path):
    out = tmp_path / "exp"
    assert main(["export", str(tiny_run), "--out", str(out) + "/"]) == 0
    weights = next(out.glob("*.safetensors"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code = ("import os, signal, core.fsutil as fs\n"
            "fs.os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"  # killed with the temp file written
            "from core.cli import main\n"
            f"main(['export', {str(tiny_run)!r}, '--out', {str(out) + '/'!r}])\n")
    r = subprocess.run([sys.executable, "-c", code], env=env_for_child(), capture_output=True, timeout=120)
    assert r.returncode == -9
    after = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.endswith(".tmp")}
    assert after == before and weights.stat().st_size == len(before[weights.name])
    assert all(p.name.startswith(".") for p in out.iterdir() if p.name not in before)  # only a hidden temp file
