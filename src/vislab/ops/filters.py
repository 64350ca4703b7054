"""Local operations: 2-D convolution with any kernel, smoothing (box, Gaussian, median, bilateral).

All functions take ``(B, C, H, W)`` float tensors (or ``(C, H, W)``, numpy HWC, PIL) and return the
same kind and shape. CPU float32 tensors that need no gradient run on OpenCV, plane by plane;
everything else runs the torch implementation (CUDA, autograd). Kernels are applied as correlation
(like ``cv2.filter2D`` and kornia), anchored at ``(kH // 2, kW // 2)``. Border modes: see
:mod:`vislab.ops._border` (``reflect`` is OpenCV's default ``BORDER_REFLECT_101``).

Example:
    >>> import torch
    >>> x = torch.rand(2, 3, 17, 11)
    >>> gaussian_blur(x, 5).shape
    torch.Size([2, 3, 17, 11])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ConfigError, ShapeError
from vislab.ops._border import check_border, cv_border, pad2d
from vislab.ops._convert import image_op
from vislab.ops._dispatch import map_images, map_planes, use_opencv
from vislab.ops.kernels import default_ksize, gaussian_kernel1d, get_kernel

__all__ = [
    "filter2d", "filter2d_separable", "apply_kernel", "box_blur", "gaussian_blur", "median_blur", "bilateral_filter",
    "Filter2d", "ApplyKernel", "BoxBlur", "GaussianBlur", "MedianBlur", "BilateralFilter",
]


def _as_kernel(kernel: Any, where: str, ndim: int = 2) -> torch.Tensor:
    k = kernel if isinstance(kernel, torch.Tensor) else torch.as_tensor(np.asarray(kernel, dtype=np.float64))
    if k.ndim != ndim or 0 in k.shape:
        raise ShapeError(where, "a kernel (kH, kW)" if ndim == 2 else "a 1-D kernel (k,)", tuple(k.shape))
    return k


def _odd(k: int | tuple[int, int], where: str) -> tuple[int, int]:
    kh, kw = (k, k) if isinstance(k, int) else tuple(k)
    if kh < 1 or kw < 1 or kh % 2 == 0 or kw % 2 == 0:
        raise ConfigError(f"{where}: expected odd positive kernel size, got {k}")
    return int(kh), int(kw)


def _conv_torch(x: torch.Tensor, k: torch.Tensor, border: str) -> torch.Tensor:
    """Correlate each plane of ``x`` with the ``(kH, kW)`` kernel ``k`` (pure torch)."""
    b, c, h, w = x.shape
    kh, kw = k.shape
    xp = pad2d(x.reshape(b * c, 1, h, w), (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2), border)
    return F.conv2d(xp, k.to(x)[None, None]).reshape(b, c, h, w)


def _sep_torch(x: torch.Tensor, kx: torch.Tensor, ky: torch.Tensor, border: str) -> torch.Tensor:
    b, c, h, w = x.shape
    nx, ny = kx.numel(), ky.numel()
    xp = pad2d(x.reshape(b * c, 1, h, w), (nx // 2, nx - 1 - nx // 2, ny // 2, ny - 1 - ny // 2), border)
    y = F.conv2d(xp, kx.to(x).view(1, 1, 1, nx))
    y = F.conv2d(y, ky.to(x).view(1, 1, ny, 1))
    return y.reshape(b, c, h, w)


def _sep_cv(x: torch.Tensor, kx: np.ndarray, ky: np.ndarray, border: str) -> torch.Tensor:
    import cv2

    kx32, ky32, flag = np.float32(kx).reshape(-1, 1), np.float32(ky).reshape(-1, 1), cv_border(border)
    return map_planes(lambda s, d: cv2.sepFilter2D(s, -1, kx32, ky32, dst=d, borderType=flag), x)


def _cv_ok(x: torch.Tensor, border: str, *more: Any) -> bool:
    return border != "circular" and use_opencv(x, *[m for m in more if isinstance(m, torch.Tensor)])


@image_op("filter2d")
def filter2d(x: torch.Tensor, kernel: Any, border: str = "reflect", normalized: bool = False) -> torch.Tensor:
    """Correlate every channel of ``x`` with one 2-D kernel (``cv2.filter2D``).

    Args:
        x: image ``(B, C, H, W)``.
        kernel: ``(kH, kW)`` tensor, array or nested list; differentiable when it is a tensor.
        border: ``reflect`` | ``replicate`` | ``constant`` | ``circular``.
        normalized: divide the kernel by its sum first (when the sum is not 0).

    Returns:
        ``(B, C, H, W)``, same dtype.

    Example:
        >>> import torch
        >>> filter2d(torch.ones(1, 1, 3, 3), [[0, 0, 0], [0, 2, 0], [0, 0, 0]])[0, 0, 1, 1].item()
        2.0
    """
    check_border(border, "filter2d")
    k = _as_kernel(kernel, "filter2d")
    if normalized and float(k.sum()) != 0:
        k = k / k.sum()
    if _cv_ok(x, border, k) and not k.requires_grad:
        import cv2

        k32, flag = np.float32(k.detach().cpu().numpy()), cv_border(border)
        return map_planes(lambda s, d: cv2.filter2D(s, -1, k32, dst=d, borderType=flag), x)
    return _conv_torch(x, k, border)


@image_op("filter2d_separable")
def filter2d_separable(x: torch.Tensor, kernel_x: Any, kernel_y: Any, border: str = "reflect") -> torch.Tensor:
    """Filter with the separable kernel ``outer(kernel_y, kernel_x)`` in two 1-D passes (``cv2.sepFilter2D``).

    Example:
        >>> import torch
        >>> filter2d_separable(torch.ones(1, 1, 5, 5), [1, 1, 1], [1, 1, 1])[0, 0, 2, 2].item()
        9.0
    """
    check_border(border, "filter2d_separable")
    kx, ky = _as_kernel(kernel_x, "filter2d_separable", 1), _as_kernel(kernel_y, "filter2d_separable", 1)
    if _cv_ok(x, border, kx, ky) and not (kx.requires_grad or ky.requires_grad):
        return _sep_cv(x, kx.detach().cpu().numpy(), ky.detach().cpu().numpy(), border)
    return _sep_torch(x, kx, ky, border)


def apply_kernel(x: Any, name: str, size: int | None = None, sigma: float | None = None, border: str = "reflect") -> Any:
    """Filter ``x`` with catalogue kernel ``name`` (see :func:`vislab.ops.list_kernels`).

    Example:
        >>> import torch
        >>> apply_kernel(torch.ones(1, 1, 5, 5), "outline").abs().max().item()
        0.0
    """
    return filter2d(x, get_kernel(name, size, sigma), border=border)


@image_op("box_blur")
def box_blur(x: torch.Tensor, ksize: int | tuple[int, int] = 3, border: str = "reflect", normalized: bool = True) -> torch.Tensor:
    """Mean (or sum, ``normalized=False``) over a ``ksize`` window (``cv2.boxFilter``).

    Example:
        >>> import torch
        >>> box_blur(torch.ones(1, 1, 4, 4), 3, normalized=False)[0, 0, 1, 1].item()
        9.0
    """
    check_border(border, "box_blur")
    kh, kw = _odd(ksize, "box_blur")
    kx, ky = np.ones(kw), np.ones(kh) / (kh * kw if normalized else 1)
    if _cv_ok(x, border):
        import cv2

        flag = cv_border(border)
        return map_planes(lambda s, d: cv2.boxFilter(s, -1, (kw, kh), dst=d, normalize=normalized, borderType=flag), x)
    return _sep_torch(x, torch.as_tensor(kx), torch.as_tensor(ky), border)


@image_op("gaussian_blur")
def gaussian_blur(x: torch.Tensor, ksize: int | tuple[int, int] | None = 5, sigma: float | tuple[float, float] | None = None,
                  border: str = "reflect") -> torch.Tensor:
    """Gaussian smoothing (``cv2.GaussianBlur`` with explicit sigma).

    Args:
        x: image ``(B, C, H, W)``.
        ksize: odd window size (or ``(kH, kW)``); None derives it from sigma (OpenCV's rule).
        sigma: standard deviation (or ``(sigma_y, sigma_x)``); None derives it from ksize
            (``0.3*((k-1)/2 - 1) + 0.8``, OpenCV's rule).
        border: border mode.

    Example:
        >>> import torch
        >>> round(gaussian_blur(torch.ones(1, 1, 7, 7), 5, 1.0)[0, 0, 3, 3].item(), 5)
        1.0
    """
    check_border(border, "gaussian_blur")
    sy, sx = (sigma, sigma) if sigma is None or isinstance(sigma, int | float) else sigma
    if ksize is None:
        if sy is None:
            raise ConfigError("gaussian_blur: expected ksize or sigma, got neither")
        ksize = (default_ksize(sy), default_ksize(sx))
    kh, kw = _odd(ksize, "gaussian_blur")
    kx, ky = gaussian_kernel1d(kw, sx), gaussian_kernel1d(kh, sy)
    if _cv_ok(x, border):
        return _sep_cv(x, kx, ky, border)
    return _sep_torch(x, torch.as_tensor(kx), torch.as_tensor(ky), border)


def _median_torch(x: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    b, c, h, w = x.shape
    xp = pad2d(x, (kw // 2, kw // 2, kh // 2, kh // 2), "replicate")
    win = xp.unfold(2, kh, 1).unfold(3, kw, 1)  # (B, C, H, W, kh, kw), a view
    return win.reshape(b, c, h, w, kh * kw).median(dim=-1).values


@image_op("median_blur")
def median_blur(x: torch.Tensor, ksize: int = 5) -> torch.Tensor:
    """Median over a ``ksize x ksize`` window, border ``replicate`` (as ``cv2.medianBlur``).

    OpenCV takes float32 only for ksize 3 and 5; other sizes (and CUDA / autograd) use torch,
    whose gradient flows to the median pixel of each window.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 1, 5, 5); x[0, 0, 2, 2] = 1.0
        >>> median_blur(x, 3).sum().item()
        0.0
    """
    kh, kw = _odd(ksize, "median_blur")
    if kh != kw:
        raise ConfigError(f"median_blur: expected a square window, got {ksize}")
    if kh == 1:
        return x.clone()
    if kh in (3, 5) and use_opencv(x):
        import cv2

        return map_planes(lambda s, d: cv2.medianBlur(s, kh, dst=d), x)
    return _median_torch(x, kh, kw)


def _bilateral_torch(x: torch.Tensor, d: int, sigma_color: float, sigma_space: float, border: str) -> torch.Tensor:
    radius = d // 2 if d > 0 else int(round(sigma_space * 1.5))
    b, c, h, w = x.shape
    xp = pad2d(x, (radius, radius, radius, radius), border)
    num = torch.zeros_like(x)
    den = torch.zeros((b, 1, h, w), dtype=x.dtype, device=x.device)
    cc, cs = -0.5 / (sigma_color**2), -0.5 / (sigma_space**2)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            r2 = dx * dx + dy * dy
            if r2 > radius * radius:
                continue  # OpenCV uses a round window
            nb = xp[:, :, radius + dy:radius + dy + h, radius + dx:radius + dx + w]
            dist = (nb - x).abs().sum(1, keepdim=True)  # L1 over channels, as OpenCV
            wgt = torch.exp(dist * dist * cc + r2 * cs)
            num = num + wgt * nb
            den = den + wgt
    return num / den


@image_op("bilateral_filter")
def bilateral_filter(x: torch.Tensor, d: int = 5, sigma_color: float = 0.1, sigma_space: float = 2.0,
                     border: str = "reflect") -> torch.Tensor:
    """Edge-preserving smoothing (``cv2.bilateralFilter``): weights fall with distance and colour difference.

    The colour difference is the L1 distance over channels (OpenCV's choice); the window is round
    with diameter ``d`` (``d <= 0``: radius ``round(1.5 * sigma_space)``). ``sigma_color`` is in image
    units (0.1 = a tenth of the [0, 1] range).

    Example:
        >>> import torch
        >>> bilateral_filter(torch.ones(1, 3, 7, 5)).allclose(torch.ones(1, 3, 7, 5))
        True
    """
    check_border(border, "bilateral_filter", ("reflect", "replicate", "constant"))
    sigma_color = sigma_color if sigma_color > 0 else 1.0
    sigma_space = sigma_space if sigma_space > 0 else 1.0
    if x.shape[1] in (1, 3) and use_opencv(x):
        import cv2

        flag = cv_border(border)
        return map_images(lambda im: cv2.bilateralFilter(im, d, sigma_color, sigma_space, borderType=flag), x)
    return _bilateral_torch(x, d, float(sigma_color), float(sigma_space), border)


class Filter2d(nn.Module):
    """Module form of :func:`filter2d`; the kernel is a buffer (or a parameter with ``learnable=True``)."""

    def __init__(self, kernel: Any, border: str = "reflect", normalized: bool = False, learnable: bool = False):
        super().__init__()
        k = _as_kernel(kernel, "Filter2d").float()
        self.kernel = nn.Parameter(k) if learnable else None
        if not learnable:
            self.register_buffer("kernel_buf", k)
        self.border, self.normalized = border, normalized

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel if self.kernel is not None else self.kernel_buf
        return filter2d(x, k, self.border, self.normalized)


class ApplyKernel(nn.Module):
    """Module form of :func:`apply_kernel`."""

    def __init__(self, name: str, size: int | None = None, sigma: float | None = None, border: str = "reflect"):
        super().__init__()
        self.name, self.size, self.sigma, self.border = name, size, sigma, border
        get_kernel(name, size, sigma)  # fail early on a bad name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_kernel(x, self.name, self.size, self.sigma, self.border)


class BoxBlur(nn.Module):
    """Module form of :func:`box_blur`."""

    def __init__(self, ksize: int | tuple[int, int] = 3, border: str = "reflect", normalized: bool = True):
        super().__init__()
        self.ksize, self.border, self.normalized = ksize, border, normalized

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return box_blur(x, self.ksize, self.border, self.normalized)


class GaussianBlur(nn.Module):
    """Module form of :func:`gaussian_blur`."""

    def __init__(self, ksize: int | tuple[int, int] | None = 5, sigma: float | tuple[float, float] | None = None,
                 border: str = "reflect"):
        super().__init__()
        self.ksize, self.sigma, self.border = ksize, sigma, border

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(x, self.ksize, self.sigma, self.border)


class MedianBlur(nn.Module):
    """Module form of :func:`median_blur`."""

    def __init__(self, ksize: int = 5):
        super().__init__()
        self.ksize = ksize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return median_blur(x, self.ksize)


class BilateralFilter(nn.Module):
    """Module form of :func:`bilateral_filter`."""

    def __init__(self, d: int = 5, sigma_color: float = 0.1, sigma_space: float = 2.0, border: str = "reflect"):
        super().__init__()
        self.d, self.sigma_color, self.sigma_space, self.border = d, sigma_color, sigma_space, border

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bilateral_filter(x, self.d, self.sigma_color, self.sigma_space, self.border)
