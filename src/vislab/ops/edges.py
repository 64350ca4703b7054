"""Edges: Sobel / Scharr derivatives, gradient magnitude and direction, Laplacian, Canny.

Derivatives use OpenCV's kernels (``cv2.getDerivKernels``): x grows right, y grows down, values are
not normalised (a unit step gives 4 with the 3x3 Sobel). Part of :mod:`vislab.ops.filters`' domain,
kept in its own file.

Example:
    >>> import torch
    >>> x = torch.zeros(1, 1, 5, 5); x[..., 3:] = 1.0
    >>> sobel(x, 1, 0)[0, 0, 2].tolist()
    [0.0, 0.0, 4.0, 4.0, 0.0]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vislab.core.errors import ConfigError
from vislab.ops._border import check_border, cv_border
from vislab.ops._convert import image_op
from vislab.ops._dispatch import map_images, map_planes, use_opencv
from vislab.ops.filters import _conv_torch, _sep_cv, _sep_torch
from vislab.ops.kernels import deriv_kernels, get_kernel

__all__ = ["sobel", "sobel_magnitude", "sobel_direction", "laplacian", "canny",
           "Sobel", "SobelMagnitude", "SobelDirection", "Laplacian", "Canny"]

_EPS = 1e-12  # inside the square root, so that the gradient of |g| is finite where g = 0


@image_op("sobel")
def sobel(x: torch.Tensor, dx: int = 1, dy: int = 0, ksize: int = 3, border: str = "reflect") -> torch.Tensor:
    """Image derivative of order ``(dx, dy)`` (``cv2.Sobel``; ``ksize=-1`` is Scharr).

    Example:
        >>> import torch
        >>> sobel(torch.rand(2, 3, 17, 11), 0, 1).shape
        torch.Size([2, 3, 17, 11])
    """
    check_border(border, "sobel")
    kx, ky = deriv_kernels(dx, dy, ksize)
    if border != "circular" and use_opencv(x):
        return _sep_cv(x, kx, ky, border)
    return _sep_torch(x, torch.as_tensor(kx), torch.as_tensor(ky), border)


def _gradients(x: torch.Tensor, ksize: int, border: str) -> tuple[torch.Tensor, torch.Tensor]:
    kx1, ky1 = deriv_kernels(1, 0, ksize)
    kx2, ky2 = deriv_kernels(0, 1, ksize)
    return (_sep_torch(x, torch.as_tensor(kx1), torch.as_tensor(ky1), border),
            _sep_torch(x, torch.as_tensor(kx2), torch.as_tensor(ky2), border))


@image_op("sobel_magnitude")
def sobel_magnitude(x: torch.Tensor, ksize: int = 3, border: str = "reflect") -> torch.Tensor:
    """Gradient magnitude ``sqrt(gx^2 + gy^2)`` per channel (``cv2.Sobel`` twice + ``cv2.magnitude``).

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 1, 5, 5); x[..., 3:] = 1.0
        >>> sobel_magnitude(x)[0, 0, 2, 2].item()
        4.0
    """
    check_border(border, "sobel_magnitude")
    if border != "circular" and use_opencv(x):
        import cv2

        kx1, ky1 = (np.float32(k).reshape(-1, 1) for k in deriv_kernels(1, 0, ksize))
        kx2, ky2 = (np.float32(k).reshape(-1, 1) for k in deriv_kernels(0, 1, ksize))
        flag = cv_border(border)

        def one(s: np.ndarray, d: np.ndarray) -> None:
            gx = cv2.sepFilter2D(s, -1, kx1, ky1, borderType=flag)
            gy = cv2.sepFilter2D(s, -1, kx2, ky2, borderType=flag)
            cv2.magnitude(gx, gy, magnitude=d)

        return map_planes(one, x)
    gx, gy = _gradients(x, ksize, border)
    return torch.sqrt(gx * gx + gy * gy + _EPS)


@image_op("sobel_direction")
def sobel_direction(x: torch.Tensor, ksize: int = 3, border: str = "reflect") -> torch.Tensor:
    """Gradient direction ``atan2(gy, gx)`` in radians, in ``(-pi, pi]`` (y grows down).

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 1, 5, 5); x[..., 3:] = 1.0
        >>> sobel_direction(x)[0, 0, 2, 2].item()
        0.0
    """
    check_border(border, "sobel_direction")
    if border != "circular" and use_opencv(x):
        gx, gy = sobel(x, 1, 0, ksize, border), sobel(x, 0, 1, ksize, border)
    else:
        gx, gy = _gradients(x, ksize, border)
    return torch.atan2(gy, gx)


@image_op("laplacian")
def laplacian(x: torch.Tensor, ksize: int = 1, border: str = "reflect") -> torch.Tensor:
    """Laplacian ``d2/dx2 + d2/dy2`` (``cv2.Laplacian``; ksize 1 is the 4-neighbour 3x3 kernel).

    Example:
        >>> import torch
        >>> laplacian(torch.ones(1, 1, 5, 5)).abs().max().item()
        0.0
    """
    check_border(border, "laplacian")
    if ksize < 1 or ksize % 2 == 0:
        raise ConfigError(f"laplacian: expected an odd positive ksize, got {ksize}")
    k = get_kernel("laplacian", 3 if ksize == 1 else ksize)
    if ksize == 3:  # OpenCV's ksize 3 is the 8-neighbour-weighted kernel
        k = torch.tensor([[2.0, 0.0, 2.0], [0.0, -8.0, 0.0], [2.0, 0.0, 2.0]])
    if border != "circular" and use_opencv(x):
        import cv2

        flag = cv_border(border)
        return map_planes(lambda s, d: cv2.Laplacian(s, -1, dst=d, ksize=ksize, borderType=flag), x)
    return _conv_torch(x, k, border)


@image_op("canny", out="mask")
def canny(x: torch.Tensor, low: float = 0.1, high: float = 0.2, ksize: int = 3, l2: bool = True) -> torch.Tensor:
    """Canny edges (``cv2.Canny``) as a ``(B, 1, H, W)`` mask of 0.0 / 1.0; not differentiable.

    The image is quantised to uint8 (values in [0, 1]); ``low`` / ``high`` are hysteresis
    thresholds on the Sobel gradient magnitude of the [0, 1] image, i.e. OpenCV's thresholds / 255.
    Colour images use OpenCV's rule: per pixel, the channel with the largest gradient. CUDA inputs
    make a round trip to the CPU.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 1, 9, 9); x[..., 4:] = 1.0
        >>> canny(x)[0, 0, 4].tolist()
        [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    import cv2

    if x.shape[1] not in (1, 3):
        raise ConfigError(f"canny: expected 1 or 3 channels, got {x.shape[1]}")
    if not 0 <= low <= high:
        raise ConfigError(f"canny: expected 0 <= low <= high, got low={low}, high={high}")
    u8 = x.detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    out = map_images(lambda im: cv2.Canny(im, low * 255, high * 255, apertureSize=ksize, L2gradient=l2), u8)
    return (out > 0).to(x.dtype).to(x.device)


class Sobel(nn.Module):
    """Module form of :func:`sobel`."""

    def __init__(self, dx: int = 1, dy: int = 0, ksize: int = 3, border: str = "reflect"):
        super().__init__()
        self.dx, self.dy, self.ksize, self.border = dx, dy, ksize, border

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sobel(x, self.dx, self.dy, self.ksize, self.border)


class SobelMagnitude(nn.Module):
    """Module form of :func:`sobel_magnitude`."""

    def __init__(self, ksize: int = 3, border: str = "reflect"):
        super().__init__()
        self.ksize, self.border = ksize, border

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sobel_magnitude(x, self.ksize, self.border)


class SobelDirection(SobelMagnitude):
    """Module form of :func:`sobel_direction`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sobel_direction(x, self.ksize, self.border)


class Laplacian(nn.Module):
    """Module form of :func:`laplacian`."""

    def __init__(self, ksize: int = 1, border: str = "reflect"):
        super().__init__()
        self.ksize, self.border = ksize, border

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return laplacian(x, self.ksize, self.border)


class Canny(nn.Module):
    """Module form of :func:`canny`."""

    def __init__(self, low: float = 0.1, high: float = 0.2, ksize: int = 3, l2: bool = True):
        super().__init__()
        self.low, self.high, self.ksize, self.l2 = low, high, ksize, l2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return canny(x, self.low, self.high, self.ksize, self.l2)
