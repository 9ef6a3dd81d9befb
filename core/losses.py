"""Adversarial losses by name (bce, wgan, wgan-gp, hinge, lsgan, rpgan) and regularisers (gradient penalty, R1, R2, feature matching)."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.config import ConfigError


class AdversarialLoss:
    """One GAN objective on D's raw logits. Subclasses override d_loss / g_loss (and d_output for bce).

    All losses are means over the batch, so they do not depend on batch size.
    """

    name: str = ""
    uses_gradient_penalty: bool = False
    uses_weight_clipping: bool = False
    prefers_optimizer: str = "adam"
    uses_label_smoothing: bool = False   # d_loss moves its real target with real_target (label smoothing)
    has_saturating_g_loss: bool = False  # g_loss(saturating=True) is a different objective
    chance_d_loss: float | None = None  # D's loss when it cannot tell real from fake (real_target = 1)
    g_needs_real: bool = False  # g_loss compares fakes with D's logits on a real batch (relativistic)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor, saturating: bool = False,
               real_logits: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def d_output(self, logits: torch.Tensor) -> torch.Tensor:
        """What to report as D(x) / D(G(z)): the raw critic value unless the loss defines a probability."""
        return logits

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class BCELoss(AdversarialLoss):
    """Goodfellow et al. 2014. D: BCE(real, t) + BCE(fake, 0). G: non-saturating -log D(G(z)) by default."""

    name = "bce"
    uses_label_smoothing = True
    has_saturating_g_loss = True
    chance_d_loss = 2 * math.log(2)

    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        # real_target < 1 is one-sided label smoothing (Salimans et al. 2016): only the real side moves.
        real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return real + fake

    def g_loss(self, fake_logits, saturating=False, real_logits=None):
        if saturating:
            # Minimise mean log(1 - D(G(z))) = -mean softplus(logit): the original minimax form, whose
            # gradient vanishes exactly when D confidently rejects fakes (early training).
            return -F.softplus(fake_logits).mean()
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))  # -mean log D

    def d_output(self, logits):
        return torch.sigmoid(logits)


class LSGANLoss(AdversarialLoss):
    """Mao et al. 2017 (a=0, b=c=1): D: 1/2 E(D(x) - t)^2 + 1/2 E D(G(z))^2; G: 1/2 E(D(G(z)) - 1)^2."""

    name = "lsgan"
    uses_label_smoothing = True  # the real target t of (D(x) - t)^2
    # A D that cannot tell the two apart outputs the constant 0.5: 1/2 * 0.25 + 1/2 * 0.25.
    chance_d_loss = 0.25

    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        return 0.5 * (real_logits - real_target).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()

    def g_loss(self, fake_logits, saturating=False, real_logits=None):
        return 0.5 * (fake_logits - 1).pow(2).mean()


class WGANLoss(AdversarialLoss):
    """Arjovsky et al. 2017: critic minimises E D(G(z)) - E D(x) (weights clipped); G minimises -E D(G(z))."""

    name = "wgan"
    uses_weight_clipping = True
    prefers_optimizer = "rmsprop"  # the paper found momentum-based optimisers unstable with clipping
    chance_d_loss = 0.0

    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits, saturating=False, real_logits=None):
        return -fake_logits.mean()


class WGANGPLoss(WGANLoss):
    """Gulrajani et al. 2017: the WGAN objective with a gradient penalty instead of clipping."""

    name = "wgan-gp"
    uses_weight_clipping = False
    uses_gradient_penalty = True
    prefers_optimizer = "adam"


class HingeLoss(AdversarialLoss):
    """Lim & Ye 2017 / SNGAN / BigGAN: D: E relu(1 - D(x)) + E relu(1 + D(G(z))); G: -E D(G(z))."""

    name = "hinge"
    chance_d_loss = 2.0  # both logits at 0

    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def g_loss(self, fake_logits, saturating=False, real_logits=None):
        return -fake_logits.mean()


class RpGANLoss(AdversarialLoss):
    """Relativistic pairing (Jolicoeur-Martineau 2019; R3GAN, Huang et al. 2024): each fake is judged
    against a real one. D: E softplus(D(G(z)) - D(x)); G: E softplus(D(x) - D(G(z))).

    Unlike bce, D cannot win by pushing every logit up or down together, only by ranking each real
    above its paired fake, which R3GAN shows removes the mode dropping of the classic loss when
    paired with R1 and R2 (zero-centred penalties on real and fake images).
    """

    name = "rpgan"
    g_needs_real = True
    chance_d_loss = math.log(2)  # equal logits: softplus(0)

    def d_loss(self, real_logits, fake_logits, real_target=1.0):
        return F.softplus(fake_logits - real_logits).mean()

    def g_loss(self, fake_logits, saturating=False, real_logits=None):
        if real_logits is None:
            raise ValueError("rpgan: the generator loss needs D's logits on a real batch (real_logits=)")
        return F.softplus(real_logits.detach() - fake_logits).mean()

    def d_output(self, logits):
        return torch.sigmoid(logits)


_LOSSES: dict[str, AdversarialLoss] = {cls.name: cls() for cls in (BCELoss, WGANLoss, WGANGPLoss, HingeLoss, LSGANLoss,
                                                                   RpGANLoss)}


def available_losses() -> tuple[str, ...]:
    return tuple(_LOSSES)


def get_loss(name: str) -> AdversarialLoss:
    """The loss object registered under ``name``; ConfigError naming ``loss`` otherwise."""
    try:
        return _LOSSES[name]
    except (KeyError, TypeError):
        raise ConfigError("loss", f"unknown loss {name!r}; valid: {', '.join(_LOSSES)}") from None


# ---------------------------------------------------------------------------------------------- regularisers

def _per_sample_norm(grad: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    # eps inside the sqrt: the derivative of sqrt is infinite at 0 (an all-zero gradient would give NaN).
    return (grad.flatten(1).pow(2).sum(dim=1) + eps).sqrt()


def gradient_penalty(D: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     y: torch.Tensor | None = None, one_sided: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """WGAN-GP penalty on random interpolates of real and fake: mean (||grad_x D(x_hat)|| - 1)^2.

    Returns ``(penalty, mean gradient norm)``; the caller multiplies the penalty by ``gp_weight``.
    ``one_sided`` penalises only norms above 1 (mean relu(norm - 1)^2). The penalty is a
    double-backward through D and is computed here in fp32 with autocast off, since fp16 gradients
    of gradients underflow; D must not use BatchNorm (it would couple the per-sample gradients).
    """
    real, fake = real.detach().float(), fake.detach().float()
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device)  # (B, 1, 1, 1)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False):
        out = D(x_hat, y) if y is not None else D(x_hat)
        (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
        norm = _per_sample_norm(grad)
        gap = F.relu(norm - 1) if one_sided else norm - 1
        penalty = gap.pow(2).mean()
    return penalty, norm.detach().mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean over the batch of ||grad_x D(x)||^2 on real images.

    Contract: ``real_images`` had ``requires_grad_(True)`` before ``real_logits = D(real_images)``
    was computed (in fp32 for the same reason as the gradient penalty). The gamma/2 factor is NOT
    applied here: the caller adds ``r1_weight / 2 * r1_penalty(...)`` to D's loss.
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty: real_images must require grad before D is applied to them")
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_images, create_graph=True)
    return grad.float().flatten(1).pow(2).sum(dim=1).mean()


def r1_penalty_fp32(D: Callable[..., torch.Tensor], real: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """R1 from its own forward of ``D`` (an eager module, not a compiled one) on ``real`` in fp32
    with autocast off: for compiled training forwards (no double backward through aot_autograd)
    and mixed precision (the inner gradient is not loss-scaled, so fp16 would underflow)."""
    x = real.detach().float().requires_grad_(True)
    with torch.autocast(device_type=x.device.type, enabled=False):
        out = D(x, y) if y is not None else D(x)
        return r1_penalty(out.float(), x)


def r2_penalty_fp32(D: Callable[..., torch.Tensor], fake: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """R2 (R3GAN): R1's zero-centred gradient penalty on generated images instead of real ones.
    R1 alone lets D grow steep around the fakes; R3GAN's convergence argument needs both."""
    return r1_penalty_fp32(D, fake, y)


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Salimans et al. 2016: squared L2 distance between mean real and mean fake D features (real detached)."""
    return (real_features.detach().float().mean(dim=0) - fake_features.float().mean(dim=0)).pow(2).sum()


@torch.no_grad()
def clip_weights(module: nn.Module, value: float) -> None:
    """WGAN weight clipping of every parameter to [-value, value] (in place)."""
    for p in module.parameters():
        p.clamp_(-value, value)
