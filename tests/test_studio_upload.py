"""Data page upload (#18): the panel renders; its button saves files under runs/uploads and has the page scan them."""
from __future__ import annotations

import io
import types
import zipfile

from test_studio_data import data_page, pngs, runs  # noqa: F401 - fixtures


class Uploaded(io.BytesIO):
    """What st.file_uploader hands over: a file object with a name."""

    def __init__(self, name: str, data: bytes):
        super().__init__(data)
        self.name = name


def test_the_upload_button_saves_and_asks_for_a_scan(runs, tmp_path, monkeypatch):  # noqa: F811
    from studio import state, upload_panel
    src = pngs(tmp_path / "src", 10)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(src.iterdir())[:9]:
            z.write(p, f"cats/{p.name}")
        z.writestr("../escape.png", b"x")
    ss = {upload_panel.K_FILES: [Uploaded("set.zip", buf.getvalue()),
                                 Uploaded("extra.png", sorted(src.iterdir())[9].read_bytes())],
          upload_panel.K_NAME: "my set"}
    fake = types.SimpleNamespace(session_state=ss)
    monkeypatch.setattr(upload_panel, "st", fake)
    monkeypatch.setattr(state, "st", fake)
    upload_panel._save("data_folder", "gs_rescan")
    dest = runs / "uploads" / "my-set"
    assert ss["data_folder"] == str(dest) and ss["gs_rescan"] is True
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.png")) == \
        sorted([f"cats/{p.name}" for p in sorted(src.iterdir())[:9]] + ["extra.png"])
    kind, msg = ss[state.K_FLASH]
    assert "10 image file(s) saved" in msg and "escape.png" in msg  # what was skipped, and why
    assert not (runs / "escape.png").exists() and not (runs / "uploads" / "escape.png").exists()


def test_the_panel_renders_on_the_data_page(runs):  # noqa: F811
    at = data_page()
    at.segmented_control(key="data_source").set_value("Image folder").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Upload images" in e.label for e in at.expander)
    assert at.button(key="upload_go")
