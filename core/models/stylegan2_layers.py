"""StyleGAN2 building blocks in plain PyTorch: equalised-lr linear/conv, [1,3,3,1] resampling, modulated conv.

Everything here is standard ``torch.nn.functional`` (no custom CUDA/C++ kernels), so the networks
train on CPU, MPS and CUDA and export to ONNX. Names and maths follow NVlabs' stylegan2-ada-pytorch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_GAIN = math.sqrt(2)  # leaky ReLU(0.2) * sqrt(2) keeps unit variance through the layers


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x / RMS(x) per sample (the mapping network's input 'pixel norm')."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (Karras et al. 2018).

    The stored weight is N(0, 1) / lr_mul and is scaled by lr_mul / sqrt(fan_in) at every forward,
    so Adam's per-parameter step size is the same for every layer whatever its fan-in; ``lr_mul``
    (0.01 in the mapping network) slows a layer down relative to the rest.
    """

    def __init__(self, cin: int, cout: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init))) if bias else None
        self.weight_gain = lr_mul / math.sqrt(cin)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias * self.lr_mul if self.bias is not None else None
        x = F.linear(x, self.weight * self.weight_gain, b)
        return lrelu(x) if self.activation else x


def blur_kernel(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 4 x 4 low-pass filter outer([1, 3, 3, 1]) / 64 (sums to 1)."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=dtype)
    return (k[:, None] * k[None, :]) / k.sum() ** 2


def _depthwise(f: torch.Tensor, channels: int, dtype: torch.dtype) -> torch.Tensor:
    return f.to(dtype)[None, None].repeat(channels, 1, 1, 1)  # (C, 1, 4, 4)


# The channel count c is passed in (a Python int from the layer), not read from x.shape: an ONNX
# trace would otherwise see a kernel of unknown shape and refuse the depthwise convolution.
def blur(x: torch.Tensor, f: torch.Tensor, c: int, pad: int, gain: float = 1.0) -> torch.Tensor:
    """Filter each of the ``c`` channels with ``f`` after zero-padding ``pad`` pixels on each side."""
    return F.conv2d(x, _depthwise(f * gain, c, x.dtype), padding=pad, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor, c: int) -> torch.Tensor:
    """2x upsampling by zero insertion + the [1,3,3,1] filter (gain 4), as upfirdn2d(up=2): H -> 2H.

    A transposed depthwise conv with stride 2 is exactly that (the filter is symmetric)."""
    return F.conv_transpose2d(x, _depthwise(f * 4, c, x.dtype), stride=2, padding=1, groups=c)


def downsample2d(x: torch.Tensor, f: torch.Tensor, c: int) -> torch.Tensor:
    """2x downsampling: the [1,3,3,1] filter then every second pixel (upfirdn2d(down=2)): H -> H/2."""
    return F.conv2d(x, _depthwise(f, c, x.dtype), stride=2, padding=1, groups=c)


class EqualConv2d(nn.Module):
    """Conv with equalised learning rate, optional [1,3,3,1] 2x downsampling, leaky ReLU and output gain.

    Downsampling follows stylegan2-ada: 3x3 convs blur (pad 2) then convolve with stride 2; 1x1
    convs (the residual skip) blur-downsample first, then convolve.
    """

    def __init__(self, cin: int, cout: int, kernel: int, bias: bool = True, activation: bool = True,
                 down: bool = False, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.weight_gain = 1 / math.sqrt(cin * kernel * kernel)
        self.cin, self.kernel, self.down, self.activation, self.gain = cin, kernel, down, activation, gain
        self.register_buffer("f", blur_kernel(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias
        if self.down and self.kernel == 1:
            x = F.conv2d(downsample2d(x, self.f, self.cin), w, b)
        elif self.down:
            x = F.conv2d(blur(x, self.f, self.cin, pad=2), w, b, stride=2)
        else:
            x = F.conv2d(x, w, b, padding=self.kernel // 2)
        if self.activation:
            x = lrelu(x)
        return x * self.gain if self.gain != 1 else x


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     up: bool = False, f: torch.Tensor | None = None) -> torch.Tensor:
    """StyleGAN2's modulated convolution: per-sample weights w'_oi = s_i w_oi, demodulated to
    w''_oi = w'_oi / sqrt(sum_i,k w'_oi^2 + 1e-8) (unit expected output std for unit input).

    Computed as scale input channels by s, one ordinary conv with the shared weight, scale output
    channels by the demodulation coefficient: exactly the same numbers as the per-sample grouped
    conv (``groups=B``), but one batched conv (faster on CPU/cuDNN, channels_last-friendly) and
    exportable to ONNX with a dynamic batch (a grouped conv's group count is fixed in the graph).
    ``up``: 2x upsampling, as a stride-2 transposed conv followed by the [1,3,3,1] blur (gain 4).
    The demodulation coefficients are computed in fp32 (under autocast the squares would lose bits).
    """
    k = weight.shape[-1]
    x = x * styles[:, :, None, None].to(x.dtype)
    if up:
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)  # (H-1)*2 + 3 = 2H + 1
        x = blur(x, f, weight.shape[0], pad=1, gain=4.0)  # 2H + 1 + 2 - 3 = 2H
    else:
        x = F.conv2d(x, weight, padding=k // 2)
    if demodulate:
        d = (styles.float().square() @ weight.float().square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()  # (B, cout)
        x = x * d[:, :, None, None].to(x.dtype)
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling) + per-pixel noise with a learned strength + bias + lrelu.

    Noise: fresh N(0, 1) per sample in training mode; in eval mode a fixed buffer (``noise_const``,
    saved with the weights), so a seed always gives the same image and exports are deterministic.
    Set ``noise_mode`` to "random", "const" or "none" to override.
    """

    def __init__(self, w_dim: int, cin: int, cout: int, resolution: int, up: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)  # styles start at 1: an unmodulated conv
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))
        self.register_buffer("f", blur_kernel(), persistent=False)
        self.up, self.resolution = up, resolution
        self.noise_mode = "auto"  # auto = random while training, const in eval

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), demodulate=True, up=self.up, f=self.f)
        mode = self.noise_mode if self.noise_mode != "auto" else ("random" if self.training else "const")
        if mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength.to(x.dtype)
        elif mode == "const":
            x = x + (self.noise_const * self.noise_strength).to(x.dtype)
        return lrelu(x + self.bias.to(x.dtype)[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels, not demodulated (the output keeps the style's scale), + bias."""

    def __init__(self, w_dim: int, cin: int, channels: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.weight_gain = 1 / math.sqrt(cin)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        return x + self.bias.to(x.dtype)[None, :, None, None]
