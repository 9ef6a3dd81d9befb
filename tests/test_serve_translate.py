"""serve on a translation run (#18 + #17): POST /translate answers with the same pixels as `translate`, both cyclegan directions, 400/413 naming what is wrong."""
from __future__ import annotations

import io
import urllib.error
import urllib.request

import pytest
from PIL import Image
from translate_data import make_paired, make_unpaired

from core.config import preset
from core.serve import BackgroundServer, ServeLimits
from core.serve.translate_app import build_translate_app, is_translation_source, load_translators
from core.train import create_run, run_training

TINY = dict(resolution=16, g_width=8, d_width=8, batch_size=4, device="cpu", threads=1, steps=3, log_every=1,
            sample_every=3, checkpoint_every=3, eval_every=0)


def post(url: str, data: bytes) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read(), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, e.read(), {k.lower(): v for k, v in e.headers.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-translate")
    p2p = create_run(preset("pix2pix", data=str(make_paired(root / "paired", n=8, size=18)), **TINY), root / "runs")
    run_training(p2p)
    cyc = create_run(preset("cyclegan", data=str(make_unpaired(root / "unpaired", n=8, size=18)), **TINY,
                            pool_size=3), root / "runs")
    run_training(cyc)
    return p2p.store.path, cyc.store.path, root


def test_post_translate_gives_the_cli_pixels(runs, tmp_path):
    from core import cli
    p2p, _, root = runs
    assert is_translation_source(p2p)
    src = next((root / "paired" / "A").iterdir())
    assert cli.main(["translate", str(p2p), "--input", str(src), "--out", str(tmp_path / "o")]) == 0
    want = (tmp_path / "o" / src.name).read_bytes()
    nets, cfg, ch = load_translators(p2p)
    with BackgroundServer(build_translate_app(nets, cfg, ch, str(p2p), ServeLimits())) as url:
        code, body, headers = post(url + "/translate", src.read_bytes())
        assert code == 200 and headers["content-type"] == "image/png"
        import numpy as np
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(body))), np.asarray(Image.open(io.BytesIO(want))))
        code, body, _ = post(url + "/translate?direction=BtoA", src.read_bytes())
        assert code == 400 and b"direction" in body  # pix2pix learned one direction only
        code, body, _ = post(url + "/translate", b"not an image")
        assert code == 400 and b"not a readable image" in body
        code, body, _ = post(url + "/translate?seed=3", src.read_bytes())
        assert code == 400 and b"seed" in body


def test_cyclegan_serves_both_directions_and_caps_the_body(runs, monkeypatch):
    import core.serve.translate_app as T
    _, cyc, root = runs
    nets, cfg, ch = load_translators(cyc)
    assert sorted(nets) == ["AtoB", "BtoA"]
    img = next((root / "unpaired" / "A").iterdir()).read_bytes()
    monkeypatch.setattr(T, "MAX_BODY_BYTES", len(img) - 1)
    with BackgroundServer(build_translate_app(nets, cfg, ch, str(cyc), ServeLimits())) as url:
        code, body, _ = post(url + "/translate?direction=BtoA", img)
        assert code == 413 and b"cap" in body
    monkeypatch.setattr(T, "MAX_BODY_BYTES", 20 * 1024**2)
    with BackgroundServer(build_translate_app(nets, cfg, ch, str(cyc), ServeLimits())) as url:
        for d in ("AtoB", "BtoA"):
            code, body, headers = post(url + f"/translate?direction={d}", img)
            assert code == 200 and headers["x-direction"] == d and Image.open(io.BytesIO(body)).size == (16, 16)
