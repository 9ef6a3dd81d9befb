"""#19 finding 14 and #20 item 14: CLI user errors are one line and exit 2, before any slow work; help says what each flag does."""
from __future__ import annotations

import pytest

from core.cli import main
from core.data.dataset import _too_few
from core.data.scan import scan


def test_runs_dir_onto_a_file_is_refused_before_the_data_is_loaded(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    loaded = []
    monkeypatch.setattr("core.train.setup.create_run", lambda *a, **k: loaded.append(a))
    for runs_dir in (a_file, a_file / "below"):
        assert main(["train", "--runs-dir", str(runs_dir), "--steps", "1"]) == 2
        err = capsys.readouterr().err
        assert "--runs-dir" in err and str(a_file) in err and "Traceback" not in err
    assert not loaded and a_file.read_text() == "mine"


def test_train_help_shows_each_flags_meaning_and_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for flag, words in (("--resolution", "power of two"), ("--steps", "Total generator steps"),
                        ("--batch-size", "Images per step"), ("--seed", "Random seed"),
                        ("--runs-dir", "holds the run folders"), ("--quiet", "no progress bar")):
        i = out.index(flag + " ", out.index("options:"))
        assert words in out[i:i + 400], (flag, out[i:i + 400])
    assert "(default: 32)" in out and "(default: 5000)" in out and "(default: 64)" in out


def test_too_few_images_does_not_say_there_are_none(tmp_path):
    from PIL import Image
    Image.new("RGB", (20, 20)).save(tmp_path / "only.png")
    msg = str(_too_few(scan(tmp_path), str(tmp_path)))
    assert "found 1 usable image," in msg and "no image files" not in msg and "Add at least 7 more images" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no image files" in str(_too_few(scan(empty), str(empty)))


def test_the_launcher_prints_the_url_when_no_browser_opens(monkeypatch, capsys):
    import webbrowser

    import run_studio
    monkeypatch.setattr(webbrowser, "open", lambda url: False)  # what a headless server's webbrowser answers
    assert run_studio.open_browser("http://localhost:8501", 8501) is False
    out = capsys.readouterr().out
    assert "Open http://localhost:8501 in your browser" in out and "ssh -L 8501:localhost:8501" in out
    monkeypatch.setattr(webbrowser, "open", lambda url: True)
    assert run_studio.open_browser("http://localhost:8501", 8501) is True and not capsys.readouterr().out


def test_a_non_ascii_run_name_is_refused_by_name():
    from core.config import ConfigError, TrainConfig
    with pytest.raises(ConfigError) as e:
        TrainConfig(name="café").validate()
    assert e.value.field == "name" and "ASCII" in str(e.value)
    TrainConfig(name="cafe-2.v1_x").validate()


def test_runs_past_99999_stay_visible_and_numbered(tmp_path):
    from core.runs import RunStore, list_runs
    (tmp_path / "99999-old").mkdir()
    a = RunStore.create(tmp_path, "new", {"steps": 1}, {})
    b = RunStore.create(tmp_path, "new", {"steps": 1}, {})
    assert a.path.name == "100000-new" and b.path.name == "100001-new"
    assert [r.path.name for r in list_runs(tmp_path)] == ["100001-new", "100000-new", "99999-old"]


@pytest.mark.parametrize("argv, words", [
    (["--seed", "-1"], "non-negative"),
    (["--seed", str(2**64)], "2^63"),
    (["--seed", str(2**63 - 2), "-n", "4"], "2^63"),
])
def test_generate_refuses_bad_seeds_in_one_line(tiny_run, tmp_path, capsys, argv, words):
    assert main(["generate", str(tiny_run), "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert "--seed" in err and words in err and "Traceback" not in err and not (tmp_path / "o").exists()


def test_generate_out_onto_or_under_a_file(tiny_run, tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    for out in (f, f / "below"):
        assert main(["generate", str(tiny_run), "-n", "2", "--out", str(out)]) == 2
        assert "--out" in capsys.readouterr().err
    assert f.read_text() == "mine"
    d = tmp_path / "adir"
    d.mkdir()
    assert main(["generate", str(tiny_run), "-n", "2", "--zip", "--out", str(tmp_path / "adir.zip")]) == 0
    (tmp_path / "isdir.zip").mkdir()
    assert main(["generate", str(tiny_run), "-n", "2", "--zip", "--out", str(tmp_path / "isdir.zip")]) == 2


def test_a_full_disk_leaves_only_complete_images(tiny_run, tmp_path, capsys, monkeypatch):
    import errno

    import core.generator.writer as W
    real, calls = W.atomic_write_bytes, []

    def filling(path, data, **k):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, **k)
    monkeypatch.setattr(W, "atomic_write_bytes", filling)
    out = tmp_path / "imgs"
    assert main(["generate", str(tiny_run), "-n", "8", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "3 images before it are complete" in err
    from PIL import Image
    files = sorted(out.iterdir())
    assert [p.name for p in files] == ["seed_000000.png", "seed_000001.png", "seed_000002.png"]  # no temp files
    for p in files:
        Image.open(p).load()


def test_a_failed_zip_leaves_no_partial_zip(tiny_run, tmp_path, capsys, monkeypatch):
    import errno
    import zipfile
    real, n = zipfile.ZipFile.writestr, []

    def filling(self, *a, **k):
        n.append(1)
        if len(n) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)
    monkeypatch.setattr(zipfile.ZipFile, "writestr", filling)
    assert main(["generate", str(tiny_run), "-n", "8", "--zip", "--out", str(tmp_path / "s.zip")]) == 2
    assert "nothing was kept" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_generate_writes_in_batches_with_the_same_images(tiny_run, tmp_path, monkeypatch):
    import core.generator.writer as W
    monkeypatch.setattr(W, "BATCH", 3)
    assert main(["generate", str(tiny_run), "-n", "7", "--out", str(tmp_path / "a")]) == 0
    monkeypatch.setattr(W, "BATCH", 64)
    assert main(["generate", str(tiny_run), "-n", "7", "--out", str(tmp_path / "b")]) == 0
    for p in sorted((tmp_path / "a").iterdir()):
        assert p.read_bytes() == (tmp_path / "b" / p.name).read_bytes()
