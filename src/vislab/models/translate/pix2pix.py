"""pix2pix (Isola et al., 2017, "Image-to-Image Translation with Conditional Adversarial Networks"): the U-Net
generator and the PatchGAN discriminator, layer for layer as in the authors' PyTorch code (``UnetGenerator`` and
``NLayerDiscriminator`` of junyanz/pytorch-CycleGAN-and-pix2pix), so the parameter counts match it.

U-Net (``pix2pix_unet``): an encoder of ``depth`` x ``[LeakyReLU(0.2), conv k4 s2 p1, norm]`` (no activation before the
first conv, no norm on the first and on the innermost conv) with ``width * min(2^i, 8)`` channels -- at 256 px and
``depth=8`` the paper's C64-C128-C256-C512-C512-C512-C512-C512 down to 1x1 -- and a mirrored decoder of
``[ReLU, ConvTranspose k4 s2 p1, norm, Dropout]`` whose every block but the innermost takes its input concatenated
with the encoder's output at that resolution (the skips; skip first). Dropout (0.5) sits in the three innermost decoder
blocks (the paper's CD512-CD1024-CD1024; the authors' code shifts it one block outwards, which changes no parameter).
The outermost block ends in ``ConvTranspose`` (with bias) and ``tanh``. As in the reference, a conv followed by a
batch norm has no bias, and so have the first and the innermost down convs (no norm follows them there, but the
reference builds every down conv with the norm's bias rule). ``norm="instance"`` is the reference's
``InstanceNorm2d(affine=False)`` with biases on every conv. ``depth=0`` picks it from ``img_size``: as many halvings
as the size allows, at most 8 (256 -> 8, 32 -> 5, 16 -> 4, 96 -> 5); any ``H, W`` divisible by ``2^depth`` go through.

PatchGAN (``patchgan``): ``[conv k4 s2 p1, LeakyReLU(0.2)]`` (no norm) with ``width`` channels, ``n_layers - 1`` x
``[conv k4 s2 p1, norm, LeakyReLU]`` doubling the channels (capped at 8 width), one more at stride 1, and a stride-1
conv k4 to one channel: raw logits ``(B, 1, h, w)``, one per overlapping patch. With ``n_layers=3`` each logit sees a
70x70 input window (the "70x70 PatchGAN"). For pix2pix the input is the source and the target image concatenated
(``in_chans = 6``); CycleGAN uses it on single images (``in_chans=3, norm="instance"``).

Weights start as in the reference (``init_type="normal"``): conv weights N(0, 0.02), norm scales N(1, 0.02), biases 0.

Example:
    >>> import torch
    >>> g = pix2pix_unet(in_chans=1, out_chans=2, img_size=32, width=8)
    >>> d = patchgan(in_chans=3, width=8)
    >>> y = g(torch.rand(2, 1, 32, 32) * 2 - 1)
    >>> g.depth, y.shape, bool(y.abs().max() <= 1), d(torch.rand(2, 3, 64, 64)).shape
    (5, torch.Size([2, 2, 32, 32]), True, torch.Size([2, 1, 6, 6]))
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from vislab.core.errors import ModelError, ShapeError
from vislab.models.generate.blocks import NORMS, check_ints, dcgan_init, norm2d
from vislab.models.registry import register_model

MAX_DEPTH = 8  # pix2pix: 256 px down to 1x1


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The pix2pix / CycleGAN norms: ``instance`` is ``InstanceNorm2d(affine=False)`` as in their code; the others are
    :func:`~vislab.models.generate.blocks.norm2d`'s."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    return norm2d(kind, channels)


def conv_bias(kind: str) -> bool:
    """Whether a conv before a ``kind`` norm has a bias: not before an affine norm, which would cancel it (the
    reference's rule: a bias only with instance norm, which has no affine shift there, or with none)."""
    return kind in ("instance", "none")


def check_norm(where: str, norm: str) -> None:
    if norm not in NORMS:
        raise ModelError(f"{where}: expected a norm in {', '.join(NORMS)}, got {norm!r}")


def auto_depth(img_size: int, cap: int = MAX_DEPTH) -> int:
    """How many times ``img_size`` halves to an integer, at most ``cap`` (256 -> 8, 32 -> 5, 96 -> 5, 7 -> 0)."""
    n = 0
    while img_size % 2 == 0 and img_size > 1 and n < cap:
        img_size, n = img_size // 2, n + 1
    return n


def check_input(where: str, x: torch.Tensor, chans: int, factor: int, min_size: int = 1) -> None:
    """Raise :class:`ShapeError` unless ``x`` is ``(B, chans, H, W)`` with ``H, W`` multiples of ``factor`` and ``>= min_size``."""
    if (not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != chans or x.shape[2] % factor or x.shape[3] % factor
            or x.shape[2] < min_size or x.shape[3] < min_size):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        least = f" and >= {min_size}" if min_size > factor else ""
        raise ShapeError(where, f"images (B, {chans}, H, W) with H and W divisible by {factor}{least}", got)


class UNetGenerator(nn.Module):
    """pix2pix U-Net: ``(B, in_chans, H, W) -> (B, out_chans, H, W)`` in ``[-1, 1]``, ``H, W`` divisible by ``2^depth``."""

    def __init__(self, in_chans: int = 3, out_chans: int = 3, depth: int = 8, width: int = 64, norm: str = "batch",
                 dropout: float = 0.5):
        super().__init__()
        where = type(self).__name__
        check_ints(where, in_chans=(in_chans, 1), out_chans=(out_chans, 1), depth=(depth, 1), width=(width, 1))
        check_norm(where, norm)
        if not 0.0 <= float(dropout) < 1.0:
            raise ModelError(f"{where}: expected dropout in [0, 1), got {dropout!r}")
        self.in_chans, self.out_chans, self.depth, self.factor = in_chans, out_chans, depth, 2**depth
        ch = [width * min(2**i, 8) for i in range(depth)]
        bias = conv_bias(norm)
        downs: list[nn.Module] = []
        for i in range(depth):
            cin = in_chans if i == 0 else ch[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(cin, ch[i], 4, 2, 1, bias=bias))
            if 0 < i < depth - 1:
                layers.append(norm_layer(norm, ch[i]))
            downs.append(nn.Sequential(*layers))
        ups: list[nn.Module] = []
        for i in range(depth):  # ups[i] maps resolution level i+1 back to level i (ups[0] makes the image)
            cin = ch[i] if i == depth - 1 else 2 * ch[i]
            if i == 0:
                layers = [nn.ReLU(), nn.ConvTranspose2d(cin, out_chans, 4, 2, 1), nn.Tanh()]
            else:
                layers = [nn.ReLU(), nn.ConvTranspose2d(cin, ch[i - 1], 4, 2, 1, bias=bias), norm_layer(norm, ch[i - 1])]
                if dropout > 0 and i >= depth - 3:
                    layers.append(nn.Dropout(dropout))
            ups.append(nn.Sequential(*layers))
        self.downs, self.ups = nn.ModuleList(downs), nn.ModuleList(ups)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(type(self).__name__, x, self.in_chans, self.factor)
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        for i in reversed(range(self.depth)):
            if i < self.depth - 1:
                x = torch.cat([skips[i], x], dim=1)
            x = self.ups[i](x)
        return x


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``(B, in_chans, H, W) -> (B, 1, h, w)`` raw logits, one per patch (70x70 with ``n_layers=3``)."""

    def __init__(self, in_chans: int = 6, width: int = 64, n_layers: int = 3, norm: str = "batch",
                 spectral_norm: bool = False):
        super().__init__()
        where = type(self).__name__
        check_ints(where, in_chans=(in_chans, 1), width=(width, 1), n_layers=(n_layers, 1))
        check_norm(where, norm)
        self.in_chans, self.n_layers, self.spectral_norm = in_chans, n_layers, bool(spectral_norm)
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_chans, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        cin = width
        for n in range(1, n_layers + 1):
            cout = width * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(cin, cout, 4, stride, 1, bias=bias), norm_layer(norm, cout), nn.LeakyReLU(0.2)]
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)
        if spectral_norm:
            for m in list(self.modules()):
                if isinstance(m, nn.Conv2d):
                    _sn(m)

    @property
    def receptive_field(self) -> int:
        """Input pixels per side that one output logit sees: 70 for ``n_layers=3`` (34 for 2, 142 for 4)."""
        rf = 4  # the last conv (k4 s1), going backwards: rf <- (rf - 1) * stride + 4
        for n in range(self.n_layers, -1, -1):
            rf = (rf - 1) * (2 if n < self.n_layers else 1) + 4
        return rf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != self.in_chans:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ShapeError(type(self).__name__, f"images (B, {self.in_chans}, H, W)", got)
        return self.net(x)


@register_model(task="translate", family="pix2pix")
def pix2pix_unet(in_chans: int = 3, out_chans: int = 3, img_size: int = 256, width: int = 64, depth: int = 0,
                 norm: str = "batch", dropout: float = 0.5) -> nn.Module:
    """pix2pix U-Net generator; ``depth=0``: as many levels as ``img_size`` halves, at most 8 (256 px: 8)."""
    check_ints("pix2pix_unet", img_size=(img_size, 1), depth=(depth, 0))
    if depth == 0:
        depth = auto_depth(img_size)
        if depth == 0:
            raise ModelError(f"pix2pix_unet: expected an even img_size (one that halves at least once), got {img_size}")
    elif img_size % 2**depth:
        raise ModelError(f"pix2pix_unet: expected img_size divisible by 2^depth = {2**depth}, got {img_size}")
    return UNetGenerator(in_chans, out_chans, depth, width, norm, dropout)


@register_model(task="translate", family="pix2pix")
def patchgan(in_chans: int = 6, width: int = 64, n_layers: int = 3, norm: str = "batch",
             spectral_norm: bool = False) -> nn.Module:
    """PatchGAN discriminator (70x70 with ``n_layers=3``): raw logits ``(B, 1, h, w)``."""
    return PatchDiscriminator(in_chans, width, n_layers, norm, spectral_norm)
