"""Pixel-value transforms: negative, gamma, brightness/contrast, log, thresholds, histograms, CLAHE.

Images are ``(B, C, H, W)`` floats in [0, 1]; every channel is treated on its own (equalise the V of
HSV or the Y of YCbCr yourself when you want colours kept). The histogram-based ops quantise to 256
levels as OpenCV does on uint8 images, so they match ``cv2.equalizeHist`` / ``cv2.threshold(OTSU)``
on ``round(255 * x)`` exactly; they are not differentiable.

Example:
    >>> import torch
    >>> gamma(torch.full((1, 1, 2, 2), 0.25), 0.5)[0, 0, 0, 0].item()
    0.5
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from vislab.core.errors import ConfigError, did_you_mean
from vislab.ops._convert import op_module, check_channels, image_op
from vislab.ops._dispatch import map_planes

__all__ = [
    "negative", "gamma", "brightness_contrast", "log_transform", "threshold", "otsu_threshold", "adaptive_threshold",
    "histogram", "equalize_hist", "clahe", "posterize", "quantize", "adjust_saturation", "adjust_hue",
    "THRESHOLD_TYPES", "Negative", "Gamma", "BrightnessContrast", "LogTransform", "Threshold", "AdaptiveThreshold",
    "EqualizeHist", "Clahe", "Posterize", "Quantize", "AdjustSaturation", "AdjustHue",
]

THRESHOLD_TYPES = ("binary", "binary_inv", "trunc", "tozero", "tozero_inv")


@image_op("negative")
def negative(x: torch.Tensor) -> torch.Tensor:
    """``1 - x``: the photographic negative.

    Example:
        >>> import torch
        >>> negative(torch.zeros(1, 1, 1, 1)).item()
        1.0
    """
    return 1.0 - x


@image_op("gamma")
def gamma(x: torch.Tensor, gamma: float = 1.0, gain: float = 1.0) -> torch.Tensor:
    """Power law ``gain * x ** gamma`` (gamma < 1 brightens, > 1 darkens); negative inputs count as 0.

    Example:
        >>> import torch
        >>> gamma(torch.full((1, 1, 1, 1), 0.5), 2.0).item()
        0.25
    """
    if gamma <= 0:
        raise ConfigError(f"gamma: expected gamma > 0, got {gamma}")
    return gain * x.clamp(min=0) ** gamma


@image_op("brightness_contrast")
def brightness_contrast(x: torch.Tensor, brightness: float = 0.0, contrast: float = 1.0, clip: bool = True) -> torch.Tensor:
    """``contrast * x + brightness`` (``cv2.convertScaleAbs``'s alpha / beta on [0, 1]), clipped to [0, 1].

    Example:
        >>> import torch
        >>> round(brightness_contrast(torch.full((1, 1, 1, 1), 0.5), 0.1, 1.5).item(), 4)
        0.85
    """
    y = contrast * x + brightness
    return y.clamp(0.0, 1.0) if clip else y


@image_op("log_transform")
def log_transform(x: torch.Tensor, c: float | None = None) -> torch.Tensor:
    """``c * log(1 + x)``; the default ``c = 1 / log 2`` maps [0, 1] onto [0, 1], lifting the shadows.

    Example:
        >>> import torch
        >>> log_transform(torch.ones(1, 1, 1, 1)).item()
        1.0
    """
    c = 1.0 / math.log(2.0) if c is None else c
    return c * torch.log1p(x.clamp(min=0))


def _quantise(x: torch.Tensor) -> torch.Tensor:
    """Integer levels 0..255 of ``x`` in [0, 1] (as ``round(255 x)``), int64."""
    return x.detach().clamp(0, 1).mul(255).round().long()


@image_op("histogram", out="raw")
def histogram(x: torch.Tensor, bins: int = 256, range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Per-channel histogram ``(B, C, bins)`` of counts over ``range``; values outside are ignored.

    With 256 bins over [0, 1], bin ``v`` counts the pixels with ``round(255 x) == v``, as
    ``cv2.calcHist`` on the uint8 image.

    Example:
        >>> import torch
        >>> histogram(torch.tensor([0.0, 0.2, 1.0]).view(1, 1, 1, 3), bins=2).tolist()
        [[[2.0, 1.0]]]
    """
    if bins < 1:
        raise ConfigError(f"histogram: expected bins >= 1, got {bins}")
    b, c = x.shape[:2]
    lo, hi = range
    if bins == 256 and range == (0.0, 1.0):
        idx, ok = _quantise(x), (x >= 0) & (x <= 1)
    else:
        v = (x.detach() - lo) / (hi - lo)
        ok = (v >= 0) & (v <= 1)
        idx = (v * bins).floor().long().clamp(0, bins - 1)
    offs = torch.arange(b * c, device=x.device).view(b, c, 1, 1) * bins
    flat = (idx + offs)[ok]
    return torch.bincount(flat, minlength=b * c * bins).view(b, c, bins).to(x.dtype if x.is_floating_point() else torch.float32)


def _otsu_levels(hist: torch.Tensor) -> torch.Tensor:
    """Otsu's threshold level (0..255) per histogram ``(N, 256)``, as OpenCV (``x > t`` is foreground)."""
    h = hist.double()
    n = h.sum(-1, keepdim=True)
    p = h / n.clamp(min=1)
    levels = torch.arange(h.shape[-1], dtype=torch.float64, device=h.device)
    w0 = p.cumsum(-1)
    mu_t = (p * levels).sum(-1, keepdim=True)
    mu0_acc = (p * levels).cumsum(-1)
    w1 = 1 - w0
    ok = (w0 > 1e-12) & (w1 > 1e-12)
    mu0 = mu0_acc / w0.clamp(min=1e-12)
    mu1 = (mu_t - mu0_acc) / w1.clamp(min=1e-12)
    var = torch.where(ok, w0 * w1 * (mu0 - mu1) ** 2, torch.zeros_like(w0))
    # OpenCV keeps the first maximum (strictly greater), so does argmax
    return var.argmax(-1)


def otsu_threshold(x: Any) -> torch.Tensor:
    """Otsu's threshold per image and channel, ``(B, C)`` in [0, 1] (``cv2.threshold(..., THRESH_OTSU) / 255``).

    Example:
        >>> import torch
        >>> x = torch.tensor([0.1, 0.1, 0.9, 0.9]).view(1, 1, 2, 2)
        >>> x > otsu_threshold(x).view(1, 1, 1, 1)
        tensor([[[[False, False],
                  [ True,  True]]]])
    """
    from vislab.ops._convert import to_bchw

    t, _ = to_bchw(x, "otsu_threshold")
    b, c = t.shape[:2]
    return (_otsu_levels(histogram(t).view(b * c, -1)).view(b, c).to(t.dtype) / 255.0).to(t.device)


@image_op("threshold", out="mask")
def threshold(x: torch.Tensor, thresh: float | str = 0.5, maxval: float = 1.0, type: str = "binary") -> torch.Tensor:
    """Fixed or Otsu threshold per channel (``cv2.threshold``).

    Args:
        x: image ``(B, C, H, W)``.
        thresh: the threshold, or ``"otsu"`` for Otsu's per image and channel.
        maxval: value given to pixels above the threshold (binary types).
        type: ``binary`` (``x > t ? maxval : 0``), ``binary_inv``, ``trunc`` (``min(x, t)``),
            ``tozero`` (``x > t ? x : 0``), ``tozero_inv``.

    Example:
        >>> import torch
        >>> threshold(torch.tensor([0.2, 0.7]).view(1, 1, 1, 2), 0.5).tolist()
        [[[[0.0, 1.0]]]]
    """
    if type not in THRESHOLD_TYPES:
        raise ConfigError(f"threshold: expected type in {THRESHOLD_TYPES}, got {type!r}{did_you_mean(type, THRESHOLD_TYPES)}")
    if isinstance(thresh, str):
        if thresh != "otsu":
            raise ConfigError(f"threshold: expected a number or 'otsu', got {thresh!r}")
        t = otsu_threshold(x)[:, :, None, None]
        x = x.detach().clamp(0, 1).mul(255).round().div(255)  # Otsu works on the 256 levels
    else:
        t = torch.as_tensor(float(thresh), dtype=x.dtype, device=x.device)
    above = x > t
    zero = torch.zeros_like(x)
    if type == "binary":
        return torch.where(above, torch.full_like(x, maxval), zero)
    if type == "binary_inv":
        return torch.where(above, zero, torch.full_like(x, maxval))
    if type == "trunc":
        return torch.minimum(x, t.expand_as(x))
    if type == "tozero":
        return torch.where(above, x, zero)
    return torch.where(above, zero, x)


@image_op("adaptive_threshold", out="mask")
def adaptive_threshold(x: torch.Tensor, block_size: int = 11, c: float = 0.02, method: str = "mean",
                       invert: bool = False) -> torch.Tensor:
    """Local threshold: 1.0 where ``x > local_mean - c`` (``cv2.adaptiveThreshold``, border replicate).

    Args:
        x: image ``(B, C, H, W)``.
        block_size: odd window size of the local mean.
        c: offset subtracted from the local mean (image units: 0.02 is about 5 grey levels).
        method: ``mean`` (box) or ``gaussian`` (Gaussian-weighted mean, sigma from ``block_size``).
        invert: give 1.0 where ``x <= local_mean - c`` instead.

    Example:
        >>> import torch
        >>> adaptive_threshold(torch.zeros(1, 1, 5, 5), 3).sum().item()
        25.0
    """
    from vislab.ops.filters import box_blur, gaussian_blur

    if method not in ("mean", "gaussian"):
        raise ConfigError(f"adaptive_threshold: expected method 'mean' or 'gaussian', got {method!r}")
    if block_size < 3 or block_size % 2 == 0:
        raise ConfigError(f"adaptive_threshold: expected an odd block_size >= 3, got {block_size}")
    mean = box_blur(x, block_size, "replicate") if method == "mean" else gaussian_blur(x, block_size, None, "replicate")
    above = x > mean - c
    return (above != invert).to(x.dtype)


@image_op("equalize_hist")
def equalize_hist(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation per channel, exactly ``cv2.equalizeHist`` on ``round(255 x)``.

    Example:
        >>> import torch
        >>> equalize_hist(torch.tensor([0.2, 0.4]).view(1, 1, 1, 2)).tolist()
        [[[[0.0, 1.0]]]]
    """
    b, c, h, w = x.shape
    q = _quantise(x).view(b * c, h * w)
    hist = histogram(x).view(b * c, 256).double()
    total = float(h * w)
    first = (hist > 0).double().argmax(-1, keepdim=True)  # first non-empty level
    lo = hist.gather(-1, first)
    cdf = hist.cumsum(-1)
    scale = (255.0 / (total - lo).clamp(min=1)).float()  # float32 like OpenCV, for the same rounding
    lut = ((cdf - lo).float() * scale).round().clamp(0, 255).double()
    levels = torch.arange(256, device=x.device).view(1, -1)
    lut = torch.where(levels <= first, torch.zeros_like(lut), lut)
    lut = torch.where(lo == total, first.double().expand_as(lut), lut)  # a flat image stays as it is
    return (lut.gather(-1, q).view(b, c, h, w) / 255.0).to(x.dtype)


@image_op("clahe")
def clahe(x: torch.Tensor, clip_limit: float = 2.0, grid: tuple[int, int] | int = 8) -> torch.Tensor:
    """Contrast-limited adaptive histogram equalisation per channel (``cv2.createCLAHE`` on uint8).

    Runs on the CPU through OpenCV (CUDA inputs make a round trip); not differentiable.

    Example:
        >>> import torch
        >>> clahe(torch.rand(1, 3, 17, 11), 2.0, 4).shape
        torch.Size([1, 3, 17, 11])
    """
    import cv2

    gh, gw = (grid, grid) if isinstance(grid, int) else grid
    if clip_limit <= 0 or gh < 1 or gw < 1:
        raise ConfigError(f"clahe: expected clip_limit > 0 and grid >= 1, got {clip_limit}, {grid}")
    u8 = _quantise(x).to(torch.uint8).cpu()

    def one(s: np.ndarray, d: np.ndarray) -> None:
        d[...] = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(gw, gh)).apply(s)

    out = map_planes(one, u8)
    return (out.to(x.dtype) / 255.0).to(x.device)


@image_op("posterize")
def posterize(x: torch.Tensor, bits: int = 4) -> torch.Tensor:
    """Keep the top ``bits`` bits of each 8-bit level (``PIL.ImageOps.posterize``).

    Example:
        >>> import torch
        >>> round(posterize(torch.full((1, 1, 1, 1), 0.9), 1).item(), 4)
        0.502
    """
    if not 1 <= bits <= 8:
        raise ConfigError(f"posterize: expected bits in 1..8, got {bits}")
    mask = 256 - (1 << (8 - bits))
    return (_quantise(x) & mask).to(x.dtype) / 255.0


@image_op("quantize")
def quantize(x: torch.Tensor, levels: int = 4) -> torch.Tensor:
    """Round to ``levels`` evenly spaced values in [0, 1] (``levels=2`` is a 0.5 threshold).

    Example:
        >>> import torch
        >>> quantize(torch.tensor([0.1, 0.4, 0.9]).view(1, 1, 1, 3), 3).flatten().tolist()
        [0.0, 0.5, 1.0]
    """
    if levels < 2:
        raise ConfigError(f"quantize: expected levels >= 2, got {levels}")
    n = levels - 1
    return torch.round(x.clamp(0, 1) * n) / n


@image_op("adjust_saturation")
def adjust_saturation(x: torch.Tensor, factor: float = 1.0) -> torch.Tensor:
    """Scale the saturation of an RGB image (0 = gray, 1 = unchanged) by blending with its gray.

    Example:
        >>> import torch
        >>> adjust_saturation(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1), 0.0).flatten().tolist()[0]
        0.29899999499320984
    """
    from vislab.ops.color import rgb_to_gray

    check_channels(x, "adjust_saturation", 3)
    return (rgb_to_gray(x) + factor * (x - rgb_to_gray(x))).clamp(0, 1)


@image_op("adjust_hue")
def adjust_hue(x: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
    """Rotate the hue of an RGB image by ``shift`` turns (0.5 = 180 degrees).

    Example:
        >>> import torch
        >>> [round(v, 4) for v in adjust_hue(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1), 1 / 3).flatten().tolist()]
        [0.0, 1.0, 0.0]
    """
    from vislab.ops.color import hsv_to_rgb, rgb_to_hsv

    check_channels(x, "adjust_hue", 3)
    hsv = rgb_to_hsv(x)
    return hsv_to_rgb(torch.cat([(hsv[:, :1] + shift) % 1.0, hsv[:, 1:]], 1))


Negative = op_module("Negative", negative)
Gamma = op_module("Gamma", gamma)
BrightnessContrast = op_module("BrightnessContrast", brightness_contrast)
LogTransform = op_module("LogTransform", log_transform)
Threshold = op_module("Threshold", threshold)
AdaptiveThreshold = op_module("AdaptiveThreshold", adaptive_threshold)
EqualizeHist = op_module("EqualizeHist", equalize_hist)
Clahe = op_module("Clahe", clahe)
Posterize = op_module("Posterize", posterize)
Quantize = op_module("Quantize", quantize)
AdjustSaturation = op_module("AdjustSaturation", adjust_saturation)
AdjustHue = op_module("AdjustHue", adjust_hue)
