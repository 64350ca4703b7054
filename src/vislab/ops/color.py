"""Colour spaces and colour detection.

Conventions (all on ``(B, 3, H, W)`` RGB float images in [0, 1]):

==========  ======================================================  ============================
space       channels and ranges                                     matches
==========  ======================================================  ============================
gray        Y = 0.299 R + 0.587 G + 0.114 B, [0, 1]                 ``COLOR_RGB2GRAY``
HSV         H in [0, 1) (fraction of a turn), S, V in [0, 1]         ``COLOR_RGB2HSV`` (H / 360)
HLS         H in [0, 1), L, S in [0, 1]                              ``COLOR_RGB2HLS`` (H / 360)
Lab         L in [0, 100], a, b about [-128, 127]; sRGB, D65         ``skimage.color.rgb2lab``
YCbCr       Y, Cb, Cr in [0, 1] (offset 0.5), channel order Y Cb Cr  ``COLOR_RGB2YCrCb`` reordered
XYZ         linear RGB to CIE XYZ (no gamma), D65                    ``COLOR_RGB2XYZ``
==========  ======================================================  ============================

Example:
    >>> import torch
    >>> [round(v, 4) for v in rgb_to_hsv(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).flatten().tolist()]
    [0.0, 1.0, 1.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vislab.core.errors import ConfigError, did_you_mean
from vislab.ops._convert import op_module, check_channels, image_op, to_bchw
from vislab.ops._dispatch import map_pixels, use_opencv

__all__ = [
    "rgb_to_gray", "gray_to_rgb", "rgb_to_bgr", "rgb_to_hsv", "hsv_to_rgb", "rgb_to_hls", "hls_to_rgb",
    "rgb_to_lab", "lab_to_rgb", "rgb_to_ycbcr", "ycbcr_to_rgb", "rgb_to_xyz", "xyz_to_rgb",
    "hsv_range_mask", "color_mask", "COLOR_PRESETS", "dominant_colors", "convert_color", "COLOR_SPACES",
    "RgbToGray", "RgbToHsv", "HsvToRgb", "RgbToHls", "HlsToRgb", "RgbToLab", "LabToRgb", "RgbToYcbcr",
    "YcbcrToRgb", "RgbToXyz", "XyzToRgb", "HsvRangeMask", "ColorMask",
]

_EPS = 1e-8
_RGB2XYZ = torch.tensor([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
_WHITE_D65 = (0.95047, 1.0, 1.08883)  # CIE D65, 2 degrees (scikit-image; OpenCV rounds to 0.950456, 1.088754)


def _rgb(x: torch.Tensor, where: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    check_channels(x, where, 3)
    return x[:, 0:1], x[:, 1:2], x[:, 2:3]


@image_op("rgb_to_gray")
def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB to ``(B, 1, H, W)`` luma, weights 0.299, 0.587, 0.114.

    Example:
        >>> import torch
        >>> rgb_to_gray(torch.ones(1, 3, 2, 2)).shape
        torch.Size([1, 1, 2, 2])
    """
    r, g, b = _rgb(x, "rgb_to_gray")
    return 0.299 * r + 0.587 * g + 0.114 * b


@image_op("gray_to_rgb")
def gray_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` to ``(B, 3, H, W)`` by repeating the channel.

    Example:
        >>> import torch
        >>> gray_to_rgb(torch.ones(1, 1, 2, 2)).shape
        torch.Size([1, 3, 2, 2])
    """
    check_channels(x, "gray_to_rgb", 1)
    return x.expand(-1, 3, -1, -1).contiguous()


@image_op("rgb_to_bgr")
def rgb_to_bgr(x: torch.Tensor) -> torch.Tensor:
    """Swap the first and last channel (RGB <-> BGR, its own inverse).

    Example:
        >>> import torch
        >>> rgb_to_bgr(torch.arange(3.).view(1, 3, 1, 1)).flatten().tolist()
        [2.0, 1.0, 0.0]
    """
    check_channels(x, "rgb_to_bgr", 3)
    return x.flip(1)


def _hue(r: torch.Tensor, g: torch.Tensor, b: torch.Tensor, vmax: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    d = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(vmax == r, (g - b) / d, torch.where(vmax == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d))
    h = torch.where(delta > 0, h, torch.zeros_like(h)) / 6.0
    return h - torch.floor(h)  # [0, 1)


@image_op("rgb_to_hsv")
def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB to HSV, every channel in [0, 1] (H is the fraction of a turn: 0.5 = 180 degrees).

    Example:
        >>> import torch
        >>> [round(v, 4) for v in rgb_to_hsv(torch.tensor([0.0, 0.5, 0.5]).view(1, 3, 1, 1)).flatten().tolist()]
        [0.5, 1.0, 0.5]
    """
    r, g, b = _rgb(x, "rgb_to_hsv")
    if use_opencv(x):
        return _cv_hue_space(x, "RGB2HSV")
    vmax, vmin = x.max(1, keepdim=True).values, x.min(1, keepdim=True).values
    delta = vmax - vmin
    s = delta / torch.where(vmax > 0, vmax, torch.ones_like(vmax))
    return torch.cat([_hue(r, g, b, vmax, delta), s, vmax], 1)


def _cv_hue_space(x: torch.Tensor, code: str) -> torch.Tensor:
    """OpenCV's float HSV / HLS conversions, hue rescaled between degrees and turns."""
    import cv2

    flag = getattr(cv2, "COLOR_" + code)
    if code.startswith("RGB"):
        def one(block: np.ndarray, out: np.ndarray) -> None:
            cv2.cvtColor(block, flag, dst=out)
            out[:, :, 0] *= 1.0 / 360.0
    else:
        def one(block: np.ndarray, out: np.ndarray) -> None:
            if not block.flags.writeable or not block.flags.owndata:
                block = block.copy()  # a channels-last input: leave the caller's memory alone
            block[:, :, 0] *= 360.0
            cv2.cvtColor(block, flag, dst=out)
    return map_pixels(one, x)


def _from_hue(h: torch.Tensor, c: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """RGB from hue (in turns), chroma and the minimum (shared by HSV and HLS)."""
    h6 = (h - torch.floor(h)) * 6.0
    k = torch.stack([(5.0 + h6) % 6.0, (3.0 + h6) % 6.0, (1.0 + h6) % 6.0])  # R, G, B
    w = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    return torch.cat([m + c * (1.0 - w[i]) for i in range(3)], 1)


@image_op("hsv_to_rgb")
def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV (all channels in [0, 1]) to RGB; inverse of :func:`rgb_to_hsv`.

    Example:
        >>> import torch
        >>> [round(v, 4) for v in hsv_to_rgb(torch.tensor([0.5, 1.0, 0.5]).view(1, 3, 1, 1)).flatten().tolist()]
        [0.0, 0.5, 0.5]
    """
    check_channels(x, "hsv_to_rgb", 3)
    if use_opencv(x):
        return _cv_hue_space(x, "HSV2RGB")
    h, s, v = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    c = v * s
    return _from_hue(h, c, v - c)


@image_op("rgb_to_hls")
def rgb_to_hls(x: torch.Tensor) -> torch.Tensor:
    """RGB to HLS (hue, lightness, saturation), every channel in [0, 1].

    Example:
        >>> import torch
        >>> rgb_to_hls(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).flatten().tolist()
        [0.0, 0.5, 1.0]
    """
    r, g, b = _rgb(x, "rgb_to_hls")
    if use_opencv(x):
        return _cv_hue_space(x, "RGB2HLS")
    vmax, vmin = x.max(1, keepdim=True).values, x.min(1, keepdim=True).values
    delta, total = vmax - vmin, vmax + vmin
    lum = total * 0.5
    den = torch.where(lum < 0.5, total, 2.0 - total)
    s = torch.where(delta > 0, delta / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(delta))
    return torch.cat([_hue(r, g, b, vmax, delta), lum, s], 1)


@image_op("hls_to_rgb")
def hls_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HLS (all channels in [0, 1]) to RGB; inverse of :func:`rgb_to_hls`.

    Example:
        >>> import torch
        >>> hls_to_rgb(torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1)).flatten().tolist()
        [1.0, 0.0, 0.0]
    """
    check_channels(x, "hls_to_rgb", 3)
    if use_opencv(x):
        return _cv_hue_space(x, "HLS2RGB")
    h, lum, s = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    c = (1.0 - (2.0 * lum - 1.0).abs()) * s
    return _from_hue(h, c, lum - c * 0.5)


def _mat(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", m.to(x), x)


@image_op("rgb_to_xyz")
def rgb_to_xyz(x: torch.Tensor) -> torch.Tensor:
    """Linear RGB to CIE XYZ (D65), no gamma (``cv2.COLOR_RGB2XYZ``, kornia).

    Example:
        >>> import torch
        >>> [round(v, 4) for v in rgb_to_xyz(torch.ones(1, 3, 1, 1)).flatten().tolist()]
        [0.9505, 1.0, 1.0888]
    """
    check_channels(x, "rgb_to_xyz", 3)
    return _mat(x, _RGB2XYZ)


@image_op("xyz_to_rgb")
def xyz_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """CIE XYZ (D65) to linear RGB; inverse of :func:`rgb_to_xyz`.

    Example:
        >>> import torch
        >>> xyz_to_rgb(rgb_to_xyz(torch.full((1, 3, 1, 1), 0.5))).allclose(torch.full((1, 3, 1, 1), 0.5), atol=1e-5)
        True
    """
    check_channels(x, "xyz_to_rgb", 3)
    return _mat(x, torch.linalg.inv(_RGB2XYZ.double()).float() if x.dtype != torch.float64 else torch.linalg.inv(_RGB2XYZ.double()))


def _srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0.04045, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)


def _linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0.0031308, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055, 12.92 * x)


@image_op("rgb_to_lab")
def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB to CIE L*a*b* (D65): L in [0, 100], a and b about [-128, 127].

    Example:
        >>> import torch
        >>> [round(v, 2) + 0.0 for v in rgb_to_lab(torch.ones(1, 3, 1, 1)).flatten().tolist()]  # + 0.0: no -0.0
        [100.0, 0.0, 0.0]
    """
    check_channels(x, "rgb_to_lab", 3)
    xyz = _mat(_srgb_to_linear(x), _RGB2XYZ)
    xyz = xyz / torch.tensor(_WHITE_D65, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    thr = 0.008856
    f = torch.where(xyz > thr, xyz.clamp(min=thr) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    return torch.cat([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], 1)


@image_op("lab_to_rgb")
def lab_to_rgb(x: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIE L*a*b* (D65) to sRGB; out-of-gamut colours are clipped to [0, 1] unless ``clip=False``.

    Example:
        >>> import torch
        >>> lab_to_rgb(rgb_to_lab(torch.full((1, 3, 1, 1), 0.3))).allclose(torch.full((1, 3, 1, 1), 0.3), atol=1e-4)
        True
    """
    check_channels(x, "lab_to_rgb", 3)
    lum, a, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    fy = (lum + 16.0) / 116.0
    f = torch.cat([fy + a / 500.0, fy, (fy - b / 200.0).clamp(min=0.0)], 1)  # a negative Z clipped, as skimage
    thr = 6.0 / 29.0
    xyz = torch.where(f > thr, f.clamp(min=thr) ** 3, (f - 16.0 / 116.0) / 7.787)
    xyz = xyz * torch.tensor(_WHITE_D65, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    rgb = _linear_to_srgb(xyz_to_rgb(xyz))
    return rgb.clamp(0.0, 1.0) if clip else rgb


@image_op("rgb_to_ycbcr")
def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """RGB to Y Cb Cr in [0, 1] (OpenCV's constants, chroma offset 0.5).

    Example:
        >>> import torch
        >>> [round(v, 4) for v in rgb_to_ycbcr(torch.ones(1, 3, 1, 1)).flatten().tolist()]
        [1.0, 0.5, 0.5]
    """
    r, g, b = _rgb(x, "rgb_to_ycbcr")
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return torch.cat([y, (b - y) * 0.564 + 0.5, (r - y) * 0.713 + 0.5], 1)


@image_op("ycbcr_to_rgb")
def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Y Cb Cr (offset 0.5) to RGB; inverse of :func:`rgb_to_ycbcr` (OpenCV's constants).

    Example:
        >>> import torch
        >>> [round(v, 3) for v in ycbcr_to_rgb(torch.tensor([1.0, 0.5, 0.5]).view(1, 3, 1, 1)).flatten().tolist()]
        [1.0, 1.0, 1.0]
    """
    check_channels(x, "ycbcr_to_rgb", 3)
    y, cb, cr = x[:, 0:1], x[:, 1:2] - 0.5, x[:, 2:3] - 0.5
    return torch.cat([y + 1.403 * cr, y - 0.714 * cr - 0.344 * cb, y + 1.773 * cb], 1)


COLOR_SPACES = {"gray": (rgb_to_gray, gray_to_rgb), "hsv": (rgb_to_hsv, hsv_to_rgb), "hls": (rgb_to_hls, hls_to_rgb),
                "lab": (rgb_to_lab, lab_to_rgb), "ycbcr": (rgb_to_ycbcr, ycbcr_to_rgb), "xyz": (rgb_to_xyz, xyz_to_rgb),
                "bgr": (rgb_to_bgr, rgb_to_bgr), "rgb": (lambda x: x, lambda x: x)}


def convert_color(x: Any, src: str, dst: str) -> Any:
    """Convert between any two of :data:`COLOR_SPACES` through RGB.

    Example:
        >>> import torch
        >>> convert_color(torch.rand(1, 3, 4, 4), "rgb", "lab").shape
        torch.Size([1, 3, 4, 4])
    """
    for name in (src, dst):
        if name not in COLOR_SPACES:
            raise ConfigError(f"convert_color: expected one of {', '.join(COLOR_SPACES)}, got {name!r}"
                              f"{did_you_mean(name, COLOR_SPACES)}")
    return COLOR_SPACES[dst][0](COLOR_SPACES[src][1](x)) if src != dst else x


# (hue degrees lo, hi), (sat lo, hi), (val lo, hi); hue lo > hi wraps through 0 (red).
COLOR_PRESETS: dict[str, list[tuple[tuple[float, float], tuple[float, float], tuple[float, float]]]] = {
    "red": [((340, 15), (0.35, 1), (0.2, 1))],
    "orange": [((15, 40), (0.35, 1), (0.2, 1))],
    "yellow": [((40, 70), (0.35, 1), (0.2, 1))],
    "green": [((70, 165), (0.25, 1), (0.15, 1))],
    "cyan": [((165, 200), (0.25, 1), (0.2, 1))],
    "blue": [((200, 260), (0.3, 1), (0.15, 1))],
    "purple": [((260, 300), (0.25, 1), (0.15, 1))],
    "pink": [((300, 340), (0.25, 1), (0.3, 1))],
    "white": [((0, 360), (0, 0.15), (0.8, 1))],
    "gray": [((0, 360), (0, 0.15), (0.2, 0.8))],
    "black": [((0, 360), (0, 1), (0, 0.2))],
}


@image_op("hsv_range_mask", out="mask")
def hsv_range_mask(x: torch.Tensor, hue: tuple[float, float] = (0, 360), sat: tuple[float, float] = (0, 1),
                   val: tuple[float, float] = (0, 1)) -> torch.Tensor:
    """Mask ``(B, 1, H, W)`` of 1.0 where the RGB pixel's HSV lies in the ranges (``cv2.inRange`` on HSV).

    Args:
        x: RGB image ``(B, 3, H, W)``.
        hue: ``(lo, hi)`` in degrees (0..360); ``lo > hi`` wraps through 0, e.g. ``(340, 15)`` for red.
        sat: ``(lo, hi)`` saturation in [0, 1], inclusive.
        val: ``(lo, hi)`` value in [0, 1], inclusive.

    Example:
        >>> import torch
        >>> hsv_range_mask(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1), hue=(350, 10)).item()
        1.0
    """
    check_channels(x, "hsv_range_mask", 3)
    hsv = rgb_to_hsv(x.detach())
    h, s, v = hsv[:, 0:1] * 360.0, hsv[:, 1:2], hsv[:, 2:3]
    lo, hi = hue
    hmask = (h >= lo) & (h <= hi) if lo <= hi else (h >= lo) | (h <= hi)
    m = hmask & (s >= sat[0]) & (s <= sat[1]) & (v >= val[0]) & (v <= val[1])
    return m.to(x.dtype)


@image_op("color_mask", out="mask")
def color_mask(x: torch.Tensor, name: str) -> torch.Tensor:
    """Mask ``(B, 1, H, W)`` of pixels of a named colour (:data:`COLOR_PRESETS`: red, green, blue, ...).

    Example:
        >>> import torch
        >>> color_mask(torch.tensor([0.0, 0.8, 0.1]).view(1, 3, 1, 1), "green").item()
        1.0
    """
    if name not in COLOR_PRESETS:
        raise ConfigError(f"color_mask: expected one of {', '.join(COLOR_PRESETS)}, got {name!r}"
                          f"{did_you_mean(name, COLOR_PRESETS)}")
    m = torch.zeros_like(x[:, :1])
    for hue, sat, val in COLOR_PRESETS[name]:
        m = torch.maximum(m, hsv_range_mask(x, hue, sat, val))
    return m


def _kmeans(p: torch.Tensor, k: int, iters: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ then Lloyd on points ``(N, C)``; returns centres ``(k, C)``."""
    n = p.shape[0]
    centers = p[torch.randint(n, (1,), generator=gen)]
    for _ in range(1, k):
        d = torch.cdist(p, centers).min(1).values ** 2
        probs = d / d.sum() if float(d.sum()) > 0 else torch.full_like(d, 1.0 / n)
        centers = torch.cat([centers, p[torch.multinomial(probs, 1, generator=gen)]])
    for _ in range(iters):
        assign = torch.cdist(p, centers).argmin(1)
        new = torch.zeros_like(centers).index_add_(0, assign, p)
        cnt = torch.bincount(assign, minlength=k).to(p).unsqueeze(1)
        new = torch.where(cnt > 0, new / cnt.clamp(min=1), centers)
        if torch.allclose(new, centers, atol=1e-6):
            break
        centers = new
    return centers


def dominant_colors(x: Any, k: int = 5, iters: int = 30, sample: int = 20000, seed: int = 0) -> tuple[Any, Any]:
    """The ``k`` dominant colours of each image by k-means (k-means++ seeding, deterministic with ``seed``).

    Returns:
        ``(colors, fractions)``: ``(B, k, C)`` centres and ``(B, k)`` share of pixels, sorted by share,
        largest first (numpy arrays for numpy / PIL input, without the batch dim).

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 3, 4, 4); x[:, 0, :, :1] = 1.0
        >>> colors, frac = dominant_colors(x, k=2)
        >>> frac.tolist(), colors[0, 0].tolist()
        ([[0.75, 0.25]], [0.0, 0.0, 0.0])
    """
    t, kind = to_bchw(x, "dominant_colors")
    if k < 1:
        raise ConfigError(f"dominant_colors: expected k >= 1, got {k}")
    gen = torch.Generator().manual_seed(seed)
    b, c = t.shape[:2]
    cols, fracs = [], []
    for img in t.detach().float().cpu():
        p = img.reshape(c, -1).T
        sub = p[torch.randperm(p.shape[0], generator=gen)[:sample]] if p.shape[0] > sample else p
        centers = _kmeans(sub, min(k, sub.shape[0]), iters, gen)
        share = torch.bincount(torch.cdist(p, centers).argmin(1), minlength=centers.shape[0]).float() / p.shape[0]
        order = share.argsort(descending=True, stable=True)
        cols.append(centers[order]), fracs.append(share[order])
    colors, fractions = torch.stack(cols).to(t.dtype), torch.stack(fracs)
    if kind.kind != "tensor":
        return colors[0].numpy(), fractions[0].numpy()
    return (colors[0], fractions[0]) if kind.squeeze else (colors, fractions)


RgbToGray = op_module("RgbToGray", rgb_to_gray)
RgbToHsv = op_module("RgbToHsv", rgb_to_hsv)
HsvToRgb = op_module("HsvToRgb", hsv_to_rgb)
RgbToHls = op_module("RgbToHls", rgb_to_hls)
HlsToRgb = op_module("HlsToRgb", hls_to_rgb)
RgbToLab = op_module("RgbToLab", rgb_to_lab)
LabToRgb = op_module("LabToRgb", lab_to_rgb, "Takes ``clip=``.")
RgbToYcbcr = op_module("RgbToYcbcr", rgb_to_ycbcr)
YcbcrToRgb = op_module("YcbcrToRgb", ycbcr_to_rgb)
RgbToXyz = op_module("RgbToXyz", rgb_to_xyz)
XyzToRgb = op_module("XyzToRgb", xyz_to_rgb)
HsvRangeMask = op_module("HsvRangeMask", hsv_range_mask, "Takes ``hue=``, ``sat=``, ``val=``.")
ColorMask = op_module("ColorMask", color_mask, "Takes ``name=``.")
