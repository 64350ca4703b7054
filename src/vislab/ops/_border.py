"""Border modes, named as in OpenCV / kornia, and a torch padding that accepts any pad width.

=============  ==========================  ====================  ==================
vislab         OpenCV                      torch ``F.pad``       example ``abc|``
=============  ==========================  ====================  ==================
``reflect``    ``BORDER_REFLECT_101``      ``reflect``           ``abc|ba``
``replicate``  ``BORDER_REPLICATE``        ``replicate``         ``abc|cc``
``constant``   ``BORDER_CONSTANT`` (0)     ``constant``          ``abc|00``
``circular``   ``BORDER_WRAP``             ``circular``          ``abc|ab``
=============  ==========================  ====================  ==================

Unlike ``F.pad``, :func:`pad2d` pads by any width (it reflects or wraps again as OpenCV does).

Example:
    >>> import torch
    >>> pad2d(torch.arange(3.).view(1, 1, 1, 3), (2, 2, 0, 0), "reflect").tolist()
    [[[[2.0, 1.0, 0.0, 1.0, 2.0, 1.0, 0.0]]]]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vislab.core.errors import ConfigError, did_you_mean

BORDERS = ("reflect", "replicate", "constant", "circular")


def check_border(border: str, where: str, allowed: tuple[str, ...] = BORDERS) -> str:
    if border not in allowed:
        raise ConfigError(f"{where}: expected border in {allowed}, got {border!r}{did_you_mean(str(border), allowed)}")
    return border


def cv_border(border: str) -> int | None:
    """The OpenCV flag for ``border``; None where the OpenCV filters do not support it (circular)."""
    import cv2

    return {"reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE,
            "constant": cv2.BORDER_CONSTANT}.get(border)


def _index(n: int, before: int, after: int, border: str, device: torch.device) -> torch.Tensor:
    i = torch.arange(-before, n + after, device=device)
    if border == "replicate" or n == 1:
        return i.clamp(0, n - 1)
    if border == "circular":
        return i.remainder(n)
    period = 2 * n - 2  # reflect-101
    i = i.abs().remainder(period)
    return torch.where(i >= n, period - i, i)


def pad2d(x: torch.Tensor, pad: tuple[int, int, int, int], border: str = "reflect", value: float = 0.0) -> torch.Tensor:
    """Pad the last two dims of ``x`` by ``(left, right, top, bottom)`` with ``border``; differentiable."""
    left, right, top, bottom = pad
    if not any(pad):
        return x
    if border == "constant":
        return F.pad(x, (left, right, top, bottom), mode="constant", value=value)
    h, w = x.shape[-2:]
    if left <= w - 1 and right <= w - 1 and top <= h - 1 and bottom <= h - 1 and h > 1 and w > 1 and x.ndim == 4:
        return F.pad(x, (left, right, top, bottom), mode=border)  # fast path, same indices
    if left or right:
        x = x.index_select(-1, _index(w, left, right, border, x.device))
    if top or bottom:
        x = x.index_select(-2, _index(h, top, bottom, border, x.device))
    return x
