"""`python -m core weights`: --from FILE and fetch (with the downloader replaced: nothing is downloaded) check the
SHA-256 prefix and the contents, install atomically into the user cache, and FID then finds the file."""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pytest
import torch

from core import cli
from core.metrics.features import find_inception_weights
from core.weights import fetch as F


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no torch hub copy either
    monkeypatch.delenv("GAN_STUDIO_INCEPTION_WEIGHTS", raising=False)
    return tmp_path / "cache"


def _fake_weights(path: Path, monkeypatch, key: str = F.PROBE_KEY) -> Path:
    """A tiny tensors-only file; the expected checksum prefix is set to its own (no real weights offline)."""
    torch.save({key: torch.zeros(2)}, path)
    monkeypatch.setattr(F, "HASH_PREFIX", hashlib.sha256(path.read_bytes()).hexdigest()[:8])
    return path


def test_from_file_installs_a_verified_copy_that_fid_then_finds(cache, tmp_path, monkeypatch, capsys):
    assert cli.main(["weights"]) == 1 and "python -m core weights fetch" in capsys.readouterr().err
    src = _fake_weights(tmp_path / "w.pth", monkeypatch)
    assert cli.main(["weights", "--from", str(src)]) == 0
    assert capsys.readouterr().out.strip() == str(cache / F.WEIGHTS_FILE)
    assert (cache / F.WEIGHTS_FILE).read_bytes() == src.read_bytes()
    assert find_inception_weights() == cache / F.WEIGHTS_FILE
    assert cli.main(["weights", "status"]) == 0


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("problem", ["checksum", "pickle", "wrong-network", "missing"])
def test_bad_files_are_refused_naming_them(cache, tmp_path, monkeypatch, capsys, problem):
    src = tmp_path / "w.pth"
    if problem == "checksum":
        _fake_weights(src, monkeypatch)
        monkeypatch.setattr(F, "HASH_PREFIX", "00000000")
    elif problem == "pickle":
        src.write_bytes(pickle.dumps({"x": print}))  # not tensors-only: weights_only refuses it
        monkeypatch.setattr(F, "HASH_PREFIX", hashlib.sha256(src.read_bytes()).hexdigest()[:8])
    elif problem == "wrong-network":
        _fake_weights(src, monkeypatch, key="fc.weight")
    assert cli.main(["weights", "--from", str(src)]) == 2
    err = capsys.readouterr().err
    assert str(src) in err and {"checksum": "checksum mismatch", "pickle": "not a loadable", "missing": "no such file",
                                "wrong-network": "does not hold"}[problem] in err
    assert not (cache / F.WEIGHTS_FILE).exists()


def test_fetch_downloads_once_through_torch_hub_with_the_checksum(cache, tmp_path, monkeypatch):
    good = _fake_weights(tmp_path / "good.pth", monkeypatch)
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):  # stands in for the network
        calls.append((url, hash_prefix))
        Path(dst).write_bytes(good.read_bytes())

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    assert F.fetch_weights(progress=False) == cache / F.WEIGHTS_FILE
    assert calls == [(F.WEIGHTS_URL, F.HASH_PREFIX)]
    F.fetch_weights(progress=False)
    assert len(calls) == 1  # already there and valid: no second download
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temp files left

    def failing(url, dst, hash_prefix=None, progress=True):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", failing)
    with pytest.raises(F.WeightsError, match="--from FILE"):
        F.fetch_weights(force=True, progress=False)
    assert (cache / F.WEIGHTS_FILE).read_bytes() == good.read_bytes()  # the good copy survives a failed fetch
