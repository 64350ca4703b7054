"""Single-image super-resolution: every model maps a low-resolution image ``(B, C, h, w)`` to ``(B, C, h s, w s)``
for a scale ``s`` in {2, 3, 4}. Outputs are linear (no tanh): the task clamps them to [-1, 1].

* ``srcnn`` -- SRCNN (Dong et al., 2014/2016, "Image Super-Resolution Using Deep Convolutional Networks"): bicubic
  upsampling inside the model, then ``conv f1 (n1), ReLU, conv f2 (n2), ReLU, conv f3 (C)`` at the high resolution
  with same (zero) padding; the 9-5-5 setting of the paper by default. *Deviation*: a global residual, ``output =
  bicubic + convs(bicubic)`` (as in VDSR, Kim et al., 2016): the convs only learn the missing detail, which trains far
  faster in few steps; with the convs at zero the model is plain bicubic upsampling.
* ``srresnet`` -- SRResNet, SRGAN's generator (Ledig et al., 2017): ``conv 9x9, PReLU`` -> ``n_blocks`` x ``x + [conv3,
  BN, PReLU, conv3, BN](x)`` -> ``conv3, BN`` plus the long skip from the first PReLU -> upsampling stages ``[conv3 to
  r^2 width, PixelShuffle(r), PReLU]`` (x2: one with r=2, x4: two, x3: one with r=3) -> ``conv 9x9`` to C. Convs before
  a batch norm have no bias (it would be cancelled); PReLUs have one slope each, as ``nn.PReLU()``.
* ``edsr`` -- EDSR-baseline (Lim et al., 2017, "Enhanced Deep Residual Networks for Single Image Super-Resolution"):
  ``conv3`` -> ``n_blocks`` x ``x + res_scale [conv3, ReLU, conv3](x)`` (no batch norm) -> ``conv3`` plus the long skip
  -> the pixel-shuffle upsampler (no activation) -> ``conv3`` to C. The mean-shift layers of the reference are left
  out: inputs here are already centred, in [-1, 1]. x2 with the defaults: 1,369,859 parameters (the paper's 1.37M).

``global_skip=True`` (SRResNet, EDSR) adds the bicubic upscale of the input to the output, as VDSR and Real-ESRGAN's
compact network add theirs: the network then starts as bicubic upsampling and learns only the missing detail -- a
short CPU training beats bicubic within minutes, where the papers' exact models (the default, False) first have to
learn to reproduce the image at all. The last conv then starts at zero, so the untrained model *is* bicubic upsampling.

Example:
    >>> import torch
    >>> x = torch.rand(2, 3, 10, 12) * 2 - 1
    >>> [tuple(m(x).shape) for m in (srcnn(scale=3, n1=8, n2=4), srresnet(scale=4, width=8, n_blocks=1),
    ...                               edsr(scale=2, width=8, n_blocks=1))]
    [(2, 3, 30, 36), (2, 3, 40, 48), (2, 3, 20, 24)]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ModelError, ShapeError
from vislab.models.generate.blocks import check_ints, norm2d
from vislab.models.registry import register_model
from vislab.models.translate.pix2pix import check_norm

SCALES = (2, 3, 4)


def bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upscaling by ``scale`` (the global skip of SRCNN, and of SRResNet / EDSR with ``global_skip``)."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


def check_scale(where: str, scale: int) -> None:
    if isinstance(scale, bool) or scale not in SCALES:
        raise ModelError(f"{where}: expected scale in {{2, 3, 4}}, got {scale!r}")


def check_lr(where: str, x: torch.Tensor, chans: int) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != chans:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ShapeError(where, f"low-resolution images (B, {chans}, h, w)", got)


def upsampler(width: int, scale: int, act: bool) -> nn.Sequential:
    """Sub-pixel upsampling (Shi et al., 2016): ``[conv3 to r^2 width, PixelShuffle(r)(, PReLU)]`` stages, x2 = one r=2,
    x4 = two r=2, x3 = one r=3."""
    r, stages = (3, 1) if scale == 3 else (2, {2: 1, 4: 2}[scale])
    layers: list[nn.Module] = []
    for _ in range(stages):
        layers += [nn.Conv2d(width, r * r * width, 3, 1, 1), nn.PixelShuffle(r)]
        if act:
            layers.append(nn.PReLU())
    return nn.Sequential(*layers)


class SRCNN(nn.Module):
    """Bicubic x ``scale``, then three convs (f1-f2-f3, n1-n2-C channels) added to it (global residual)."""

    def __init__(self, in_chans: int = 3, scale: int = 2, n1: int = 64, n2: int = 32, f1: int = 9, f2: int = 5,
                 f3: int = 5):
        super().__init__()
        where = type(self).__name__
        check_ints(where, in_chans=(in_chans, 1), n1=(n1, 1), n2=(n2, 1), f1=(f1, 1), f2=(f2, 1), f3=(f3, 1))
        check_scale(where, scale)
        for name, f in (("f1", f1), ("f2", f2), ("f3", f3)):
            if f % 2 == 0:
                raise ModelError(f"{where}: expected an odd kernel size {name} (same padding), got {f}")
        self.in_chans, self.scale = in_chans, scale
        self.global_skip = False
        self.body = nn.Sequential(nn.Conv2d(in_chans, n1, f1, padding=f1 // 2), nn.ReLU(),
                                  nn.Conv2d(n1, n2, f2, padding=f2 // 2), nn.ReLU(),
                                  nn.Conv2d(n2, in_chans, f3, padding=f3 // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_lr(type(self).__name__, x, self.in_chans)
        up = bicubic(x, self.scale)
        return up + self.body(up)


class SRResBlock(nn.Module):
    def __init__(self, width: int, norm: str):
        super().__init__()
        bias = norm == "none"
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=bias), norm2d(norm, width), nn.PReLU(),
                                  nn.Conv2d(width, width, 3, 1, 1, bias=bias), norm2d(norm, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """SRGAN's generator: ``(B, C, h, w) -> (B, C, h s, w s)``, linear output."""

    def __init__(self, in_chans: int = 3, scale: int = 4, width: int = 64, n_blocks: int = 16, norm: str = "batch", global_skip: bool = False):
        super().__init__()
        where = type(self).__name__
        check_ints(where, in_chans=(in_chans, 1), width=(width, 1), n_blocks=(n_blocks, 0))
        check_scale(where, scale)
        check_norm(where, norm)
        self.in_chans, self.scale, self.global_skip = in_chans, scale, global_skip
        self.head = nn.Sequential(nn.Conv2d(in_chans, width, 9, 1, 4), nn.PReLU())
        self.body = nn.Sequential(*[SRResBlock(width, norm) for _ in range(n_blocks)],
                                  nn.Conv2d(width, width, 3, 1, 1, bias=norm == "none"), norm2d(norm, width))
        self.tail = nn.Sequential(upsampler(width, scale, act=True), nn.Conv2d(width, in_chans, 9, 1, 4))
        if global_skip:  # the last conv starts at zero: the model starts as exactly bicubic upsampling
            nn.init.zeros_(self.tail[-1].weight)
            nn.init.zeros_(self.tail[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_lr(type(self).__name__, x, self.in_chans)
        h = self.head(x)
        out = self.tail(h + self.body(h))
        return out + bicubic(x, self.scale) if self.global_skip else out


class EDSRBlock(nn.Module):
    def __init__(self, width: int, res_scale: float):
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(), nn.Conv2d(width, width, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


class EDSR(nn.Module):
    """EDSR(-baseline): ``(B, C, h, w) -> (B, C, h s, w s)``, linear output."""

    def __init__(self, in_chans: int = 3, scale: int = 2, width: int = 64, n_blocks: int = 16, res_scale: float = 1.0, global_skip: bool = False):
        super().__init__()
        where = type(self).__name__
        check_ints(where, in_chans=(in_chans, 1), width=(width, 1), n_blocks=(n_blocks, 0))
        check_scale(where, scale)
        if isinstance(res_scale, bool) or not isinstance(res_scale, int | float) or not res_scale > 0:
            raise ModelError(f"{where}: expected a positive res_scale, got {res_scale!r}")
        self.in_chans, self.scale, self.global_skip = in_chans, scale, global_skip
        self.head = nn.Conv2d(in_chans, width, 3, 1, 1)
        self.body = nn.Sequential(*[EDSRBlock(width, float(res_scale)) for _ in range(n_blocks)],
                                  nn.Conv2d(width, width, 3, 1, 1))
        self.tail = nn.Sequential(upsampler(width, scale, act=False), nn.Conv2d(width, in_chans, 3, 1, 1))
        if global_skip:  # the last conv starts at zero: the model starts as exactly bicubic upsampling
            nn.init.zeros_(self.tail[-1].weight)
            nn.init.zeros_(self.tail[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_lr(type(self).__name__, x, self.in_chans)
        h = self.head(x)
        out = self.tail(h + self.body(h))
        return out + bicubic(x, self.scale) if self.global_skip else out


@register_model(task="translate", family="sr")
def srcnn(in_chans: int = 3, scale: int = 2, n1: int = 64, n2: int = 32, f1: int = 9, f2: int = 5, f3: int = 5) -> nn.Module:
    """SRCNN 9-5-5 on bicubic upsampling, with a global residual."""
    return SRCNN(in_chans, scale, n1, n2, f1, f2, f3)


@register_model(task="translate", family="sr")
def srresnet(in_chans: int = 3, scale: int = 4, width: int = 64, n_blocks: int = 16, norm: str = "batch", global_skip: bool = False) -> nn.Module:
    """SRResNet (SRGAN's generator), pixel-shuffle upsampling."""
    return SRResNet(in_chans, scale, width, n_blocks, norm, global_skip)


@register_model(task="translate", family="sr")
def edsr(in_chans: int = 3, scale: int = 2, width: int = 64, n_blocks: int = 16, res_scale: float = 1.0, global_skip: bool = False) -> nn.Module:
    """EDSR-baseline (16 blocks of 64; the full EDSR is 32 of 256 with ``res_scale=0.1``)."""
    return EDSR(in_chans, scale, width, n_blocks, res_scale, global_skip)
