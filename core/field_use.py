"""Which TrainConfig fields a config really uses: the Train form disables the others and says why."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import ConfigError, TrainConfig
from .losses import get_loss

# Architectures whose builders ignore a field (core/models: mlp.py and resnet_sn.py say so at the builder).
ARCH_IGNORES: dict[str, dict[str, str]] = {
    "mlp": {"d_norm": "the mlp discriminator has no normalisation layers"},
    "resnet-sn": {"d_norm": "the resnet-sn discriminator is normalised by spectral norm only",
                  "spectral_norm": "resnet-sn always uses spectral norm in D"},
    "stylegan2": {"d_norm": "the stylegan2 discriminator has no normalisation layers (equalised learning rate instead)",
                  "spectral_norm": "the stylegan2 discriminator uses equalised learning rate, not spectral norm",
                  "minibatch_std": "the stylegan2 discriminator always has its minibatch std-dev layer"},
    "fastgan": {"d_norm": "the fastgan discriminator always uses BatchNorm with spectral norm",
                "spectral_norm": "fastgan always uses spectral norm in D",
                "minibatch_std": "the fastgan discriminator has no minibatch std-dev layer (its decoders fight memorisation)"},
    "r3gan": {"d_norm": "the r3gan discriminator has no normalisation layers (its residual init keeps it trainable)",
              "spectral_norm": "the r3gan discriminator has no normalisation, spectral norm included (R1 + R2 regularise it)",
              "minibatch_std": "the r3gan discriminator has no minibatch std-dev layer"},
}
# Fields only the style-based family reads (a mapping network, styles, path length).
STYLE_ONLY = {"mapping_layers": "only stylegan2 has a mapping network",
              "style_mixing": "only stylegan2 has per-layer styles to mix",
              "pl_weight": "path-length regularisation needs stylegan2's mapping network",
              "pl_every": "path-length regularisation needs stylegan2's mapping network"}
TRANSLATE_ONLY = ("direction", "l1_weight", "cycle_weight", "identity_weight", "pool_size", "lr_decay_start")


def unused_fields(values: Mapping[str, Any], device_type: str | None = None) -> dict[str, str]:
    """``{field: why its value is ignored}`` for the fields of ``values`` (missing ones take the defaults).

    The loss rules come from the loss object's own attributes, which is what the Trainer reads.
    ``device_type``: "cpu", "cuda" or "mps" where the run would train, None when not known.
    """
    v = {**TrainConfig().to_dict(), **values}
    out: dict[str, str] = {}
    try:
        loss = get_loss(v["loss"])
    except ConfigError:
        loss = None  # the form reports the bad loss itself; judge nothing by it
    if loss is not None:
        by_loss = f"not used by the {loss.name} loss"
        if not loss.uses_gradient_penalty:
            out["gp_weight"] = out["gp_one_sided"] = by_loss + " (only wgan-gp has a gradient penalty)"
        if not loss.uses_weight_clipping:
            out["clip_value"] = by_loss + " (only wgan clips weights)"
        if not loss.uses_label_smoothing:
            out["label_smoothing"] = by_loss + " (its real target is fixed)"
        if not loss.has_saturating_g_loss:
            out["g_saturating"] = by_loss + " (it has no saturating form)"
        if loss.prefers_optimizer != "adam":
            out["beta1"] = out["beta2"] = out["beta2_end"] = f"{loss.name} trains with {loss.prefers_optimizer}, which has no betas"
    out.update(ARCH_IGNORES.get(v["arch"], {}))
    if v["arch"] not in ("dcgan", "resnet-sn"):
        out["attention"] = f"self-attention layers exist in dcgan and resnet-sn only (arch is {v['arch']})"
    if not v["progressive"]:
        out.update({k: "progressive growing is off (progressive = false)"
                    for k in ("progressive_start", "fade_images", "stable_images")})
    if v["arch"] != "fastgan":
        out["recon_weight"] = f"only fastgan's discriminator has reconstruction decoders (arch is {v['arch']})"
    if v["arch"] != "stylegan2":
        out.update({k: f"{why} (arch is {v['arch']})" for k, why in STYLE_ONLY.items()})
    elif not v["pl_weight"]:
        out["pl_every"] = "path-length regularisation is off (pl_weight = 0)"
    if v["r1_auto"]:
        out["r1_weight"] = "r1_auto picks gamma = 0.0002 x resolution^2 / batch"
    elif not v["r1_weight"]:
        out["r1_every"] = "R1 is off (r1_weight = 0 and r1_auto off)"
    if not v["schedule_images"] or v["task"] != "generate":
        why = ("the cosine schedules are off (schedule_images = 0)" if v["task"] == "generate"
               else f"{v['task']} has its own learning-rate decay (lr_decay_start)")
        out.update({k: why for k in ("schedule_images", "lr_end_factor", "beta2_end", "gamma_end_factor")
                    if k != "schedule_images" or v["task"] != "generate"})
    if not v["eval_every"]:
        out["eval_samples"] = out["eval_metric"] = "evaluation is off (Evaluate every = 0)"
    if v["task"] == "generate":
        out.update({k: "only pix2pix and cyclegan runs translate images (task is generate)" for k in TRANSLATE_ONLY})
    else:  # translators map an image to an image: no noise, no EMA copy, no styles
        why = f"a {v['task']} run translates an input image: it has no latent noise, EMA copy or styles"
        out.update({k: why for k in ("latent_dim", "ema", *STYLE_ONLY)})
        other = list(TRANSLATE_ONLY[2:]) if v["task"] == "pix2pix" else ["l1_weight"]
        out.update({k: f"not used by {v['task']} (see its help)" for k in other})
    if device_type is not None and device_type != "cpu":
        out["threads"] = f"CPU threads only apply to CPU training, not {device_type}"
    return out
