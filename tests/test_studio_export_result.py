"""Export page (#20 item 5): the result box and its download buttons belong to the format, run and
checkpoint they were made for; switching format (or coming back) never shows another format's file.
Latent explorer (#20 item 10): its sample grid can be downloaded."""
from __future__ import annotations

from test_studio_latent_export import EXPORT, LATENT, _button, _ok, app, roots  # noqa: F401 - fixtures


def _results(at) -> list[str]:
    return [s.value for s in at.success if s.value.startswith("Exported")]


def _downloads(at) -> list[str]:
    return [d.proto.label for d in at.get("download_button")]


def test_the_result_follows_the_chosen_format(app):  # noqa: F811
    at = app(EXPORT, "trained").run()
    at.radio(key="exp_format").set_value("safetensors").run()
    _button(at, "Export").click().run()
    _ok(at)
    assert any("safetensors bundle" in r for r in _results(at))
    assert "Model file" in _downloads(at)
    at.radio(key="exp_format").set_value("torchscript").run()
    _ok(at)
    assert _results(at) == [] and "Model file" not in _downloads(at)  # nothing stale
    _button(at, "Export").click().run()
    assert [r for r in _results(at) if "TorchScript" in r] and not [r for r in _results(at) if "safetensors" in r]
    at.radio(key="exp_format").set_value("safetensors").run()  # coming back: its own result again
    assert "Model file" in _downloads(at)
    model = next(d for d in at.get("download_button") if d.proto.label == "Model file")
    assert model.proto.help.endswith(".safetensors.") or "safetensors" in model.proto.help
    res = _results(at)
    assert len(res) == 1 and "safetensors bundle" in res[0], res
    at.run()
    assert len(_results(at)) == 1 and "safetensors bundle" in _results(at)[0]


def test_latent_explorer_grid_downloads(app):  # noqa: F811
    at = app(LATENT, "trained").run()
    _ok(at)
    dl = next(d for d in at.get("download_button") if d.proto.label == "Download grid")
    assert dl.proto.help
    at.button(key="lat_pin_3").click().run()  # still there with pins
    assert any(d.proto.label == "Download grid" for d in at.get("download_button"))


def test_the_export_page_offers_torch_export_and_writes_a_pt2(app):  # noqa: F811
    """torch.export is the recommended PyTorch-native format (TorchScript is deprecated upstream), but the
    page offered only safetensors, TorchScript and ONNX."""
    at = app(EXPORT, "trained").run()
    assert list(at.radio(key="exp_format").options)[:2] == ["safetensors bundle", "torch.export (.pt2)"]
    at.radio(key="exp_format").set_value("torch-export").run()
    _button(at, "Export").click().run()
    _ok(at)
    res = _results(at)
    assert len(res) == 1 and "torch.export" in res[0] and ".pt2" in res[0] and "difference from PyTorch" in res[0], res
