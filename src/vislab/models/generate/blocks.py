"""Building blocks shared by the image generators and critics: the resolution pyramid, normalisation layers by
name, the DCGAN weight init and the checks on class labels and argument values.

Example:
    >>> pyramid(32), pyramid(28), pyramid(64)
    ((3, 4), (2, 7), (4, 4))
    >>> type(norm2d("layer", 8)).__name__
    'GroupNorm'
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from vislab.core.errors import ModelError, ShapeError

NORMS = ("batch", "instance", "layer", "none")


def pyramid(img_size: int, min_size: int = 4) -> tuple[int, int]:
    """``(n, base)``: halve ``img_size`` while it is even and above ``min_size``; ``n`` halvings end at ``base``.

    ``32 -> (3, 4)``, ``28 -> (2, 7)``, ``64 -> (4, 4)``, ``16 -> (2, 4)``. A model built on it has ``n`` stride-2
    stages between ``img_size`` and ``base``; a size that cannot be halved once raises :class:`ModelError`.
    """
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 1:
        raise ModelError(f"pyramid: expected a positive integer image size, got {img_size!r}")
    n, size = 0, img_size
    while size % 2 == 0 and size > min_size:
        n, size = n + 1, size // 2
    if n < 1:
        raise ModelError(f"pyramid: expected an even image size > {min_size} (one that halves at least once), got {img_size}")
    return n, size


def check_size(where: str, img_size: int) -> tuple[int, int]:
    """:func:`pyramid` of ``img_size``, its error message naming ``where`` (the builder)."""
    try:
        return pyramid(img_size)
    except ModelError as e:
        raise ModelError(f"{where}: {str(e).removeprefix('pyramid: ')}") from None


def widths(width: int, n: int, cap: int = 8) -> list[int]:
    """Channels of ``n`` stride-2 stages: ``width, 2 width, 4 width, ...`` capped at ``cap * width``."""
    return [min(width * 2**i, cap * width) for i in range(n)]


def norm2d(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer by name: ``batch``, ``instance`` (affine), ``layer`` (``GroupNorm(1, c)``), ``none``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ModelError(f"norm2d: expected a norm in {', '.join(NORMS)}, got {kind!r}")


def _weight(m: nn.Module) -> torch.Tensor:
    # The raw tensor under a parametrization (spectral norm): init that, not the computed weight.
    return m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight


@torch.no_grad()
def dcgan_init(module: nn.Module) -> nn.Module:
    """DCGAN init (Radford et al., 2016) of every submodule: conv / linear weights ``N(0, 0.02)``, norm weights
    ``N(1, 0.02)``, biases 0. Embeddings keep their own init. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d | nn.Linear):
            nn.init.normal_(_weight(m), 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._NormBase | nn.GroupNorm | nn.LayerNorm):
            if getattr(m, "weight", None) is not None:
                nn.init.normal_(m.weight, 1.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
    return module


def check_ints(where: str, **values: tuple[object, int]) -> None:
    """Raise :class:`ModelError` unless each ``name=(value, minimum)`` is an integer ``>= minimum``."""
    for name, (value, lo) in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ModelError(f"{where}: expected an integer {name} >= {lo}, got {value!r}")


def check_labels(where: str, y: torch.Tensor | None, num_classes: int, batch: int) -> torch.Tensor | None:
    """``y`` checked against the model: class indices ``(B,)`` when ``num_classes > 0``, ``None`` otherwise."""
    if num_classes == 0:
        if y is not None:
            raise ModelError(f"{where}: expected no labels y (the model is unconditional, num_classes=0), got y")
        return None
    if y is None:
        raise ModelError(f"{where}: expected class labels y of shape ({batch},) (the model is conditional, "
                         f"num_classes={num_classes}), got None")
    if not isinstance(y, torch.Tensor) or y.shape != (batch,) or y.dtype.is_floating_point or y.dtype == torch.bool:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ShapeError(where, f"integer class labels y of shape ({batch},)", got)
    return y


def check_images(where: str, x: torch.Tensor, chans: int, size: int) -> None:
    """Raise :class:`ShapeError` unless ``x`` is ``(B, chans, size, size)``."""
    if x.ndim != 4 or x.shape[1] != chans or x.shape[2] != size or x.shape[3] != size:
        raise ShapeError(where, f"images (B, {chans}, {size}, {size})", tuple(x.shape))


def one_hot(y: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B,)`` class indices -> ``(B, num_classes)`` one-hot rows of ``dtype``."""
    return F.one_hot(y.long(), num_classes).to(dtype)
