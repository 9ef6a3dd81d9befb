"""Browser uploads (#18): images and zips land only under runs/uploads/NAME; zip-slip, links, bombs and junk are skipped with reasons."""
from __future__ import annotations

import io
import stat
import zipfile

import pytest
from faultkit import rgb_png

from core.data.errors import DataError
from core.data.scan import scan
from core.data.upload import save_upload, uploads_folder


def png_bytes(tmp_path, seed=0) -> bytes:
    return rgb_png(tmp_path / f"src{seed}.png", seed=seed).read_bytes()


def test_files_and_a_zip_with_class_folders(tmp_path):
    root = tmp_path / "runs"
    dest = uploads_folder(root, "my cats/../x")
    assert dest.parent == root / "uploads" and "/" not in dest.name and ".." not in dest.name
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(3):
            z.writestr(f"cats/c{i}.png", png_bytes(tmp_path, i))
            z.writestr(f"dogs/d{i}.png", png_bytes(tmp_path, 10 + i))
        z.writestr("readme.txt", "hello")
    rep = save_upload(dest, [("one.png", png_bytes(tmp_path, 20)), ("../../two.png", png_bytes(tmp_path, 21)),
                             ("set.zip", buf.getvalue())])
    assert rep.written == 8 and ("set.zip:readme.txt", "not an image file (png/jpg/jpeg/webp/bmp/gif/tif/tiff)") in rep.skipped
    assert (dest / "two.png").exists()  # a path in a plain file name is reduced to its base name
    report = scan(dest)
    # With class folders present the two loose images are left out (and the scan says so), as for any folder.
    assert report.usable == 6 and set(report.class_names) == {"cats", "dogs"} and report.notes


def test_zip_slip_links_hidden_and_bombs_are_skipped(tmp_path):
    root = tmp_path / "runs"
    dest = uploads_folder(root, "hostile")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("../escape.png", png_bytes(tmp_path))
        z.writestr("/abs.png", png_bytes(tmp_path))
        z.writestr("C:/win.png", png_bytes(tmp_path))
        z.writestr(".hidden/x.png", png_bytes(tmp_path))
        link = zipfile.ZipInfo("link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "/etc/passwd")
        z.writestr("bomb.png", b"\0" * (20 * 1024**2))  # 20 MB of zeros: ~20 KB compressed
        z.writestr("ok.png", png_bytes(tmp_path, 1))
    rep = save_upload(dest, [("evil.zip", buf.getvalue())])
    assert rep.written == 1 and (dest / "ok.png").exists()
    why = dict(rep.skipped)
    assert "zip bomb" in why["evil.zip:bomb.png"] and "link" in why["evil.zip:link.png"]
    assert len(rep.skipped) == 6
    assert not (tmp_path / "escape.png").exists() and not (root / "escape.png").exists()
    assert sorted(p.name for p in dest.rglob("*") if p.is_file()) == ["ok.png"]


def test_a_broken_zip_and_the_total_limit(tmp_path, monkeypatch):
    dest = uploads_folder(tmp_path, "x")
    rep = save_upload(dest, [("bad.zip", b"PK\x03\x04 not really")])
    assert rep.written == 0 and "not a readable zip" in rep.skipped[0][1]
    import core.data.upload as U
    monkeypatch.setattr(U, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(DataError, match="smaller uploads"):
        save_upload(dest, [(f"{i}.png", png_bytes(tmp_path, i)) for i in range(5)])
