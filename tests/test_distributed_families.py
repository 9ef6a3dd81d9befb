"""Model families under torchrun (gloo, 2 CPU processes): arch=fastgan trains a few steps with the ranks' weights
identical and a complete run folder (issue #16)."""
from __future__ import annotations

import pytest
from test_translate_distributed import assert_complete_run, assert_same_weights, run_two_ranks

pytestmark = [pytest.mark.ddp, pytest.mark.slow]


def test_fastgan_two_ranks_stay_identical_and_write_a_complete_run(tmp_path):
    runs = tmp_path / "runs"
    sets = ["g_width=8", "d_width=8", "latent_dim=16", "threads=1", "log_every=2", "sample_every=3",
            "checkpoint_every=4", "ada_target=0.6"]
    w0, w1 = run_two_ranks(tmp_path, ["train", "--preset", "fastgan", "--data", "shapes", "--resolution", "16",
                                      "--batch-size", "2", "--steps", "6", "--runs-dir", str(runs), "--device", "cpu",
                                      "--quiet", *[x for s in sets for x in ("--set", s)]])
    assert_same_weights(w0, w1, ("G", "D"))
    assert_complete_run(runs, 6)
