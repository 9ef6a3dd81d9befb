"""`python -m core evaluate RUN` for translation runs, on the held-out items the run never trained on:
pix2pix L1/PSNR/SSIM against the paired targets (as the training hook computes them, next to the
mean-training-target baseline); cyclegan cycle-consistency and identity L1 (unpaired: no targets)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .cli import load_translation_state, translator_from_state
from .data import center_crop, load_translation_data
from .ssim import ssim

FEATURE_NET = "none (pixels)"
LABELS = {"l1": "L1 to target (held-out)", "psnr": "PSNR dB (held-out)", "ssim": "SSIM (held-out)",
          "cycle_l1_aba": "cycle L1 A→B→A (held-out A)", "cycle_l1_bab": "cycle L1 B→A→B (held-out B)",
          "identity_l1_a": "identity L1 G_BtoA(A) vs A", "identity_l1_b": "identity L1 G_AtoB(B) vs B"}
LOWER_IS_BETTER = {"l1": True, "psnr": False, "ssim": False, "cycle_l1_aba": True, "cycle_l1_bab": True,
                   "identity_l1_a": True, "identity_l1_b": True}


def is_translation_run(run_dir: str | Path) -> bool:
    from ..serve.translate_app import is_translation_source
    return Path(run_dir).is_dir() and is_translation_source(run_dir)


def _row(metric: str, v: torch.Tensor, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """v: one value per held-out item; mean and std over them."""
    v = v.double()
    return {"metric": metric, "value": float(v.mean()), "std": float(v.std()) if len(v) > 1 else 0.0,
            "n": int(len(v)), "feature_net": FEATURE_NET, "label": LABELS[metric], **({"detail": detail} if detail else {})}


@torch.no_grad()
def evaluate_translation(run_dir: str | Path, checkpoint: str | Path | None = None, device: Any = "cpu",
                         progress=None) -> dict[str, Any]:
    """The ``core.metrics.evaluate`` result shape (``results`` rows for ``record``); pixels in [0, 1]."""
    say = progress or (lambda m: None)
    state, ck = load_translation_state(checkpoint or run_dir)  # a checkpoint file, or the run's latest
    G, cfg, c = translator_from_state(state, None, run_dir)
    say(f"decoding the held-out items of {cfg.data} ...")
    ds = load_translation_data(str(cfg.data), cfg.task, cfg.resolution, c)
    dev = torch.device(device)
    a_in = cfg.direction == "AtoB"
    ha, hb = (ds.to_float(x.clone()).to(dev) for x in (ds.held_a, ds.held_b))
    src, tgt = (ha, hb) if a_in else (hb, ha)
    G = G.to(dev)
    res: list[dict[str, Any]] = []
    if cfg.task == "pix2pix":
        out = G(src).float().clamp(-1, 1)
        o, t = (out + 1) / 2, (tgt + 1) / 2
        l1 = (o - t).abs().flatten(1).mean(1)
        mse = (o - t).pow(2).flatten(1).mean(1)
        train_t = ds.b if a_in else ds.a
        mean_t = (ds.to_float(center_crop(train_t, cfg.resolution).clone()).mean(0, keepdim=True).to(dev) + 1) / 2
        base = float((mean_t - t).abs().mean())
        res = [_row("l1", l1, {"mean_target_l1": base, "copy_l1": float(((out - src).abs() / 2).mean())}),
               _row("psnr", 10 * torch.log10(1.0 / mse.clamp_min(1e-10))), _row("ssim", ssim(o, t))]
        n = len(src)
    else:
        G2 = translator_from_state(state, "BtoA" if a_in else "AtoB", run_dir)[0].to(dev)
        ab, ba = (G, G2) if a_in else (G2, G)  # ab: A -> B, ba: B -> A

        def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return ((x.float().clamp(-1, 1) - y).abs() / 2).flatten(1).mean(1)
        res = [_row("cycle_l1_aba", l1(ba(ab(ha)), ha)), _row("cycle_l1_bab", l1(ab(ba(hb)), hb)),
               _row("identity_l1_a", l1(ba(ha), ha)), _row("identity_l1_b", l1(ab(hb), hb))]
        n = len(ha) + len(hb)
    return {"step": int(state.get("step", 0)), "checkpoint": str(ck), "n": n, "n_real": n, "results": res,
            "unavailable": {}, "seconds": {}, "task": cfg.task}


def print_table(run_dir: Path, result: dict[str, Any]) -> None:
    what = ("pairs (output vs target)" if result["task"] == "pix2pix"
            else "A and B images (cycle consistency: unpaired data has no targets)")
    print(f"{run_dir.name} at step {result['step']} ({Path(result['checkpoint']).name}): {result['n']} held-out {what}")
    for r in result["results"]:
        better = "lower is better" if LOWER_IS_BETTER[r["metric"]] else "higher is better"
        print(f"  {r['label']:32s} {r['value']:.4f} ± {r['std']:.4f}  {better}")
        if r.get("detail", {}).get("mean_target_l1") is not None:
            print(f"  {'(mean training target: L1)':32s} {r['detail']['mean_target_l1']:.4f}")
