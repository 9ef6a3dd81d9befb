"""Perceptual path length: the finite-difference formula on linear generators, 0 for a constant one,
the 1%/99% trimming, and `python -m core evaluate --metrics ppl` recording it."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.metrics.ppl import EPSILON, PIXEL_NET, path_distances, ppl, trimmed_mean

D, RES = 16, 4  # latent size; images 1 x 4 x 4 (16 pixels, so a linear G can be c * z reshaped)


class LinearG(nn.Module):
    """x = c * z as a 1 x 4 x 4 image (float64, so the finite difference is exact to ~1e-9)."""

    def __init__(self, c: float = 0.5):
        super().__init__()
        self.latent_dim, self.num_classes = D, 0
        self.c = nn.Parameter(torch.tensor(c, dtype=torch.float64))

    def forward(self, z, y=None):
        return (self.c * z).view(-1, 1, RES, RES)


class LinearStyleG(LinearG):
    """A 'style-based' linear G: mapping(z) = 2 z repeated over 3 ws, synthesis(ws) = c * ws[:, 0] as an image."""

    num_ws = 3

    def __init__(self, c: float = 0.5):
        super().__init__(c)
        self.register_buffer("w_avg", torch.zeros(D, dtype=torch.float64))

    def mapping(self, z, y=None, truncation_psi=1.0):
        return (2 * z)[:, None, :].repeat(1, self.num_ws, 1)

    def synthesis(self, ws):
        return (self.c * ws[:, 0]).view(-1, 1, RES, RES)

    def forward(self, z, y=None):
        return self.synthesis(self.mapping(z))


class ConstantG(LinearG):
    def forward(self, z, y=None):
        return torch.zeros(len(z), 1, RES, RES, dtype=torch.float64) + 0 * self.c


def _pairs(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, D, generator=g, dtype=torch.float64), torch.randn(n, D, generator=g, dtype=torch.float64),
            torch.rand(n, generator=g, dtype=torch.float64))


def test_w_lerp_distance_of_a_linear_generator_is_the_formula():
    # lerp in w: p(t+eps) - p(t) = eps (w1 - w0) exactly, so d / eps^2 = c^2 |w1 - w0|^2 / pixels.
    z0, z1, t = _pairs()
    d = path_distances(LinearStyleG(0.5), z0, z1, t, "w")
    expected = 0.25 * ((2 * z1 - 2 * z0) ** 2).sum(1) / (RES * RES)
    assert torch.allclose(d, expected, rtol=1e-6)


def test_z_slerp_distance_of_a_linear_generator_is_the_formula():
    # For equal-norm endpoints (radius r, angle omega) slerp moves at speed r * omega, so d -> c^2 (r omega)^2 / pixels.
    z0, z1, t = _pairs()
    r = 3.0
    z0, z1 = r * z0 / z0.norm(dim=1, keepdim=True), r * z1 / z1.norm(dim=1, keepdim=True)
    omega = torch.arccos((z0 * z1).sum(1) / r ** 2)
    d = path_distances(LinearG(0.5), z0, z1, t, "z")
    expected = 0.25 * (r * omega) ** 2 / (RES * RES)
    assert torch.allclose(d, expected, rtol=1e-3)  # O(eps) finite-difference error on a curved path


def test_ppl_is_the_trimmed_mean_of_the_formula():
    G = LinearStyleG(0.5)
    res = ppl(G, n=200, seed=3, batch_size=64)
    assert res.metric == "ppl_w" and res.feature_net == PIXEL_NET and res.epsilon == EPSILON
    # Recompute from the same latents (the documented generator order) with numpy's percentiles.
    g = torch.Generator().manual_seed(3 + 0x991)
    z0, z1 = torch.randn(200, D, generator=g), torch.randn(200, D, generator=g)
    d = (0.25 * ((2 * z1 - 2 * z0).double() ** 2).sum(1) / (RES * RES)).numpy()
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    kept = d[(d >= lo) & (d <= hi)]
    assert res.kept == len(kept) == 198  # one dropped at each end
    assert math.isclose(res.value, float(kept.mean()), rel_tol=1e-5)
    assert ppl(LinearG(0.5), n=50).metric == "ppl_z"
    assert ppl(G, n=50, space="z").metric == "ppl_z"


def test_identical_outputs_give_zero():
    res = ppl(ConstantG(), n=64)
    assert res.value == 0.0 and res.std == 0.0


def test_trimmed_mean_drops_outliers_and_bad_inputs_are_named():
    d = torch.cat([torch.ones(990), torch.full((5,), 1e9), torch.full((5,), -1e9)])
    mean, std, kept = trimmed_mean(d)
    assert (mean, std, kept) == (1.0, 0.0, 990)
    with pytest.raises(ValueError, match="ppl space"):
        ppl(LinearG(), n=8, space="x")
    with pytest.raises(ValueError, match="style-based"):
        ppl(LinearG(), n=8, space="w")
    with pytest.raises(ValueError, match="n >= 2"):
        ppl(LinearG(), n=1)


def test_eval_mode_and_rng_are_restored():
    G = LinearG().train()
    state = torch.random.get_rng_state()
    ppl(G, n=8)
    assert G.training and torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("arch", ["stylegan2", "dcgan"])
def test_cli_evaluate_records_ppl(tmp_path, capsys, arch):
    from core.cli import main
    from core.config import TrainConfig
    from core.train import create_run, run_training
    cfg = TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=2,
                      checkpoint_every=2, device="cpu", threads=1, arch=arch,
                      **({"mapping_layers": 2} if arch == "stylegan2" else {}))
    t = create_run(cfg, tmp_path)
    assert run_training(t) == "finished"
    run = t.store.path if hasattr(t, "store") else t
    assert main(["evaluate", str(run), "--metrics", "ppl", "--ppl-n", "32", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    name = "ppl_w" if arch == "stylegan2" else "ppl_z"
    assert "PPL in " + name[-1] in out and "32 latent pairs" in out and "pixel-mse-64px" in out
    rows = [json.loads(x) for x in (run / "evaluations.jsonl").read_text().splitlines()]
    assert [r["metric"] for r in rows] == [name]
    assert rows[0]["value"] > 0 and rows[0]["n"] == 32 and rows[0]["feature_net"] == PIXEL_NET
    assert rows[0]["detail"]["epsilon"] == EPSILON and rows[0]["step"] == 2



def test_runs_page_evaluate_offers_and_records_ppl(tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from core.config import TrainConfig
    from core.train import create_run, run_training
    cfg = TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=2,
                      checkpoint_every=2, device="cpu", threads=1)
    t = create_run(cfg, tmp_path)
    assert run_training(t) == "finished"
    run = t.store.path
    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "studio" / "pages" / "runs.py"),
                           default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    key = f"eval_{run.name}"
    assert any(o.startswith("PPL") for o in at.multiselect(key=f"{key}_metrics").options)
    at.multiselect(key=f"{key}_metrics").set_value(["ppl"])
    at.button(key=f"{key}_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("PPL in z" in s.value for s in at.success), [s.value for s in at.success]
    rows = [json.loads(x) for x in (run / "evaluations.jsonl").read_text().splitlines()]
    assert [r["metric"] for r in rows] == ["ppl_z"] and rows[0]["feature_net"] == PIXEL_NET


def test_ppl_beside_swd_and_not_by_default(tmp_path):
    from core.config import TrainConfig
    from core.metrics.evaluate import DEFAULT_METRICS, evaluate
    from core.train import create_run, run_training
    assert "ppl" not in DEFAULT_METRICS
    t = create_run(TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8,
                               steps=2, device="cpu", threads=1), tmp_path)
    assert run_training(t) == "finished"
    out = evaluate(t.store.path, n=16, metrics="swd,ppl", ppl_n=16, device="cpu")
    assert [r["metric"] for r in out["results"]] == ["ppl_z", "swd"] and out["n_real"] == 16
    assert [r["metric"] for r in evaluate(t.store.path, n=16, metrics="swd", device="cpu")["results"]] == ["swd"]
