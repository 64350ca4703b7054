"""The named kernel catalogue: the 2-D convolution kernels every image-processing course shows.

Each kernel is a ``(kH, kW)`` float tensor for :func:`vislab.ops.filter2d` (correlation, as in
OpenCV's ``filter2D``). Derivative kernels follow ``cv2.getDerivKernels`` (x grows right, y grows
down), so ``get_kernel("sobel_x")`` is the kernel of ``cv2.Sobel(img, -1, 1, 0)``.

Example:
    >>> get_kernel("sharpen").tolist()
    [[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]
    >>> "gaussian" in list_kernels()
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from vislab.core.errors import ConfigError, did_you_mean

__all__ = ["KERNELS", "KernelSpec", "get_kernel", "list_kernels", "gaussian_kernel1d", "deriv_kernels",
           "default_sigma", "default_ksize"]


def default_sigma(ksize: int) -> float:
    """OpenCV's sigma for a Gaussian of size ``ksize`` when none is given: ``0.3*((k-1)/2 - 1) + 0.8``."""
    return 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8


def default_ksize(sigma: float) -> int:
    """OpenCV's Gaussian size for float images when only sigma is given: ``round(8*sigma + 1) | 1``."""
    return int(round(sigma * 8 + 1)) | 1


def gaussian_kernel1d(ksize: int, sigma: float | None = None) -> np.ndarray:
    """A normalised 1-D Gaussian of odd length ``ksize`` (float64), as ``cv2.getGaussianKernel`` with sigma > 0."""
    if ksize < 1 or ksize % 2 == 0:
        raise ConfigError(f"gaussian kernel: expected an odd positive size, got {ksize}")
    s = default_sigma(ksize) if sigma is None or sigma <= 0 else float(sigma)
    r = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2
    g = np.exp(-(r**2) / (2 * s * s))
    return g / g.sum()


def _binomial(n: int) -> np.ndarray:
    k = np.array([1.0])
    for _ in range(n - 1):
        k = np.convolve(k, [1.0, 1.0])
    return k


def deriv_kernels(dx: int, dy: int, ksize: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Separable Sobel kernels ``(kx, ky)`` as ``cv2.getDerivKernels(dx, dy, ksize)``; ``ksize=-1`` is Scharr."""
    def one(order: int, k: int) -> np.ndarray:
        if k == -1:
            return np.array([[3.0, 10.0, 3.0], [-1.0, 0.0, 1.0]][order]) if order < 2 else _bad()
        if order == 0:
            return _binomial(k)
        if order >= k:
            raise ConfigError(f"sobel: expected derivative order < ksize, got order {order} with ksize {k}")
        base = _binomial(k - order)
        for _ in range(order):
            base = np.convolve(base, [-1.0, 1.0])
        return base

    def _bad() -> np.ndarray:
        raise ConfigError("scharr: expected derivative order 0 or 1")

    if ksize == 1:  # OpenCV: no smoothing, a 3-tap derivative
        table = {0: [1.0], 1: [-1.0, 0.0, 1.0], 2: [1.0, -2.0, 1.0]}
        if dx > 2 or dy > 2:
            raise ConfigError(f"sobel: expected derivative order <= 2 with ksize 1, got ({dx}, {dy})")
        return np.array(table[dx]), np.array(table[dy])
    if ksize != -1 and (ksize < 1 or ksize % 2 == 0 or ksize > 31):
        raise ConfigError(f"sobel: expected ksize -1 (Scharr) or odd 1..31, got {ksize}")
    return one(dx, ksize), one(dy, ksize)


def _identity(size: int, sigma: float | None) -> np.ndarray:
    k = np.zeros((size, size))
    k[size // 2, size // 2] = 1.0
    return k


def _gaussian(size: int, sigma: float | None) -> np.ndarray:
    g = gaussian_kernel1d(size, sigma)
    return np.outer(g, g)


def _log(size: int, sigma: float | None) -> np.ndarray:
    s = default_sigma(size) if sigma is None or sigma <= 0 else sigma
    r = np.arange(size) - (size - 1) / 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    q = (xx**2 + yy**2) / (2 * s * s)
    k = -(1.0 / (math.pi * s**4)) * (1 - q) * np.exp(-q)
    return k - k.mean()  # zero sum: flat regions give 0


def _laplacian(size: int, sigma: float | None) -> np.ndarray:
    if size <= 3:
        return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    kx2, ky0 = deriv_kernels(2, 0, size)
    kx0, ky2 = deriv_kernels(0, 2, size)
    return np.outer(ky0, kx2) + np.outer(ky2, kx0)


def _sep(dx: int, dy: int, ksize: int) -> np.ndarray:
    kx, ky = deriv_kernels(dx, dy, ksize)
    return np.outer(ky, kx)


def _fixed(rows: list[list[float]]) -> Callable[[int, float | None], np.ndarray]:
    return lambda size, sigma: np.array(rows, dtype=np.float64)


@dataclass(frozen=True)
class KernelSpec:
    """One catalogue entry: how to build it and what it does."""

    build: Callable[[int, float | None], np.ndarray]
    description: str
    sized: bool = False  # whether ``size`` changes the kernel


KERNELS: dict[str, KernelSpec] = {
    "identity": KernelSpec(_identity, "leaves the image unchanged", True),
    "box": KernelSpec(lambda s, _: np.full((s, s), 1.0 / (s * s)), "mean of the window: blur", True),
    "gaussian": KernelSpec(_gaussian, "Gaussian-weighted mean: smooth blur", True),
    "sharpen": KernelSpec(_fixed([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]), "centre minus 4-neighbours: sharpen"),
    "emboss": KernelSpec(_fixed([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]), "diagonal difference: relief look"),
    "outline": KernelSpec(_fixed([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]), "centre minus 8-neighbours: edges"),
    "sobel_x": KernelSpec(lambda s, _: _sep(1, 0, s), "horizontal gradient d/dx (vertical edges)", True),
    "sobel_y": KernelSpec(lambda s, _: _sep(0, 1, s), "vertical gradient d/dy (horizontal edges)", True),
    "scharr_x": KernelSpec(lambda s, _: _sep(1, 0, -1), "rotation-accurate d/dx"),
    "scharr_y": KernelSpec(lambda s, _: _sep(0, 1, -1), "rotation-accurate d/dy"),
    "prewitt_x": KernelSpec(_fixed([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]), "box-smoothed d/dx"),
    "prewitt_y": KernelSpec(_fixed([[-1, -1, -1], [0, 0, 0], [1, 1, 1]]), "box-smoothed d/dy"),
    "laplacian": KernelSpec(_laplacian, "second derivative: edges in every direction", True),
    "log": KernelSpec(_log, "Laplacian of Gaussian: blob and edge detector", True),
    "unsharp": KernelSpec(lambda s, sg: 2 * _identity(s, sg) - _gaussian(s, sg), "image + (image - blur)", True),
}

_DEFAULT_SIZE = {"gaussian": 5, "log": 5, "unsharp": 5}


def list_kernels() -> list[str]:
    """Names in the catalogue, in teaching order."""
    return list(KERNELS)


def get_kernel(name: str, size: int | None = None, sigma: float | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Build catalogue kernel ``name`` as a ``(kH, kW)`` tensor.

    Args:
        name: one of :func:`list_kernels`.
        size: odd window size for the sized kernels (box, gaussian, sobel, laplacian, log, unsharp);
            3 by default (5 for gaussian, log and unsharp).
        sigma: Gaussian sigma (gaussian, log, unsharp); OpenCV's rule from ``size`` when None.
        dtype: tensor dtype.

    Example:
        >>> get_kernel("sobel_x").tolist()[0]
        [-1.0, 0.0, 1.0]
    """
    if name not in KERNELS:
        raise ConfigError(f"kernel: expected one of {', '.join(KERNELS)}, got {name!r}{did_you_mean(name, KERNELS)}")
    size = size if size is not None else _DEFAULT_SIZE.get(name, 3)
    if size < 1 or size % 2 == 0:
        raise ConfigError(f"kernel {name}: expected an odd positive size, got {size}")
    return torch.as_tensor(KERNELS[name].build(size, sigma), dtype=dtype)
