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
