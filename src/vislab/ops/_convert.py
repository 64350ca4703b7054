"""Input kinds: every op takes ``(B, C, H, W)`` / ``(C, H, W)`` tensors, numpy HWC arrays or PIL images.

The op itself is written once for ``(B, C, H, W)`` float tensors; :func:`image_op` wraps it so that a
``(C, H, W)`` tensor, an ``(H, W[, C])`` numpy array (uint8 in [0, 255] or float in [0, 1]) or a PIL
image comes back as the same kind: uint8 stays uint8 (rounded and clipped), HW stays HW, PIL stays PIL.

Example:
    >>> import numpy as np
    >>> from vislab.ops import negative
    >>> negative(np.zeros((2, 3), np.uint8)).tolist()
    [[255, 255, 255], [255, 255, 255]]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from vislab.core.errors import ShapeError

__all__ = ["image_op", "to_bchw", "from_bchw", "check_channels", "check_image", "op_module"]


class _Kind:
    """How an input came in, so that an output can go back the same way."""

    __slots__ = ("kind", "squeeze", "uint8", "dtype", "pil_mode", "hw", "device")

    def __init__(self, kind: str, squeeze: bool = False, uint8: bool = False, dtype: Any = None,
                 pil_mode: str | None = None, hw: bool = False):
        self.kind, self.squeeze, self.uint8, self.dtype = kind, squeeze, uint8, dtype
        self.pil_mode, self.hw = pil_mode, hw


def _is_pil(x: Any) -> bool:
    return type(x).__module__.startswith("PIL.") and hasattr(x, "mode") and hasattr(x, "size")


def to_bchw(x: Any, where: str) -> tuple[torch.Tensor, _Kind]:
    """Turn any supported image into a float ``(B, C, H, W)`` tensor and remember its kind."""
    if isinstance(x, torch.Tensor):
        if x.ndim not in (3, 4):
            raise ShapeError(where, "(B, C, H, W) or (C, H, W)", tuple(x.shape))
        kind = _Kind("tensor", squeeze=x.ndim == 3, uint8=x.dtype == torch.uint8, dtype=x.dtype)
        t = x.unsqueeze(0) if x.ndim == 3 else x
        if kind.uint8:
            t = t.float() / 255.0
        elif not t.is_floating_point():
            raise ShapeError(where, "a float or uint8 tensor", str(x.dtype))
        return t, kind
    if _is_pil(x):
        mode = x.mode if x.mode in ("L", "RGB") else "RGB"
        from vislab.core.io import pil_to_array

        a = pil_to_array(x, mode)
        t, _ = to_bchw(a, where)
        return t, _Kind("pil", pil_mode=mode, uint8=True)
    if isinstance(x, np.ndarray):
        if x.ndim not in (2, 3):
            raise ShapeError(where, "a numpy image (H, W) or (H, W, C)", x.shape)
        hw = x.ndim == 2
        a = x[:, :, None] if hw else x
        a = np.ascontiguousarray(a) if a.flags.writeable else a.copy()  # torch wants writable memory
        if a.dtype == np.uint8:
            t = torch.from_numpy(a).permute(2, 0, 1)[None].float().div_(255.0)
        elif a.dtype in (np.float32, np.float64, np.float16):
            t = torch.from_numpy(a).permute(2, 0, 1)[None]
            if a.dtype == np.float16:
                t = t.float()
        else:
            raise ShapeError(where, "a uint8 or float numpy image", str(x.dtype))
        return t.contiguous(), _Kind("numpy", uint8=x.dtype == np.uint8, dtype=x.dtype, hw=hw)
    raise ShapeError(where, "a torch tensor, numpy array or PIL image", type(x).__name__)


def from_bchw(t: torch.Tensor, kind: _Kind, out: str = "image") -> Any:
    """Return ``t`` (``(B, C, H, W)``) as the kind the input came in.

    ``out="image"`` converts values back (uint8 inputs get uint8 outputs); ``out="mask"`` does too
    (a 0/1 mask becomes 0/255 uint8, as ``cv2.inRange``) and drops a single channel for numpy / PIL;
    ``out="labels"`` keeps integer values (label maps) and only changes the container.
    """
    if out == "raw":  # not an image: drop the batch dim that was added, numpy for numpy / PIL
        if kind.kind == "tensor":
            return t[0] if kind.squeeze else t
        return t[0].detach().cpu().numpy()
    if kind.kind == "tensor":
        if out in ("image", "mask") and kind.uint8:
            t = t.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
        return t[0] if kind.squeeze else t
    a = t[0].detach().cpu().permute(1, 2, 0)
    if out in ("image", "mask"):
        if kind.uint8:
            a = a.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
        elif kind.dtype is not None and a.is_floating_point():
            a = a.to(torch.from_numpy(np.zeros(0, kind.dtype)).dtype)
    a = a.numpy()
    if kind.kind == "pil" and out in ("image", "mask"):
        from PIL import Image

        return Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
    if kind.hw or (a.shape[2] == 1 and out in ("labels", "mask")):
        a = a[:, :, 0]
    return np.ascontiguousarray(a)


def image_op(where: str, out: str = "image") -> Callable[[Callable], Callable]:
    """Decorate an op written for float ``(B, C, H, W)`` tensors so that it takes every input kind."""

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(x: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(x, torch.Tensor) and x.ndim == 4 and x.is_floating_point():
                return fn(x, *args, **kwargs)
            t, kind = to_bchw(x, where)
            return from_bchw(fn(t, *args, **kwargs), kind, out)

        return wrapper

    return deco


def check_channels(x: torch.Tensor, where: str, channels: int | tuple[int, ...]) -> None:
    """Raise :class:`ShapeError` unless ``x`` is ``(B, C, H, W)`` with C in ``channels``."""
    cs = (channels,) if isinstance(channels, int) else channels
    if x.ndim != 4 or x.shape[1] not in cs:
        want = " or ".join(str(c) for c in cs)
        raise ShapeError(where, f"(*, {want}, H, W)", tuple(x.shape))


def check_image(x: Any, where: str) -> None:
    """Raise :class:`ShapeError` unless ``x`` is a 4-D float tensor."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ShapeError(where, "a float tensor (B, C, H, W)", got)


def op_module(name: str, fn: Callable, doc: str = "") -> type:
    """Make the ``nn.Module`` twin of op ``fn``: it stores the arguments after ``x`` and calls ``fn``."""
    from torch import nn

    class _M(nn.Module):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__()
            self.args, self.kwargs = args, kwargs

        def forward(self, x: Any) -> Any:
            return fn(x, *self.args, **self.kwargs)

        def extra_repr(self) -> str:
            return ", ".join([repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()])

    _M.__doc__ = f"Module form of :func:`{fn.__name__}`; takes its arguments after ``x``. {doc}".strip()
    _M.__name__ = _M.__qualname__ = name
    _M.__module__ = fn.__module__
    return _M
