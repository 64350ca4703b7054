"""Fast feed-forward style transfer: the image transformation network of Johnson et al. (2016, "Perceptual Losses for
Real-Time Style Transfer and Super-Resolution") with its two standard fixes -- instance instead of batch norm
(Ulyanov et al., 2016) and upsample-then-conv instead of transposed convs, against checkerboard artifacts (Odena et
al., 2016) -- and, with ``num_styles > 1``, conditional instance norm for many styles in one network (Dumoulin et al.,
2017, "A Learned Representation for Artistic Style"; the multi-style idea of MSG-Net, Zhang & Dana, 2017).

Layers (reflection padding everywhere, instance norm + ReLU after every conv but the last): ``conv 9x9 s1 (w)`` ->
``conv 3x3 s2 (2w)`` -> ``conv 3x3 s2 (4w)`` -> ``n_blocks`` x ``x + [conv3, IN, ReLU, conv3, IN](x)`` (4w) ->
``[upsample x2, conv 3x3] (2w)`` -> ``[upsample x2, conv 3x3] (w)`` -> ``conv 9x9`` to C -> ``tanh``. Convs before a norm
have no bias (its shift replaces it). Every norm is a :class:`CondInstanceNorm`: per-style scales and shifts
``gamma, beta`` of shape ``(num_styles, C)`` (with one style, an ordinary affine instance norm).

``forward(x, style=None)``: ``style`` is ``None`` (one-style networks only), an int or a LongTensor ``(B,)`` of style
indices, or a float tensor ``(B, num_styles)`` of mixing weights -- each norm then uses the weighted sums of the
styles' ``gamma`` and ``beta`` (style interpolation; one-hot weights are the index form). ``H, W`` divisible by 4.

Example:
    >>> import torch
    >>> net = transformer_net(width=4, n_blocks=1, num_styles=3)
    >>> x = torch.rand(2, 3, 16, 20) * 2 - 1
    >>> y = net(x, torch.tensor([0, 2]))
    >>> net.num_styles, y.shape, bool(y.abs().max() <= 1), net(x, torch.tensor([[0.5, 0.5, 0.0]] * 2)).shape
    (3, torch.Size([2, 3, 16, 20]), True, torch.Size([2, 3, 16, 20]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ModelError, ShapeError
from vislab.models.generate.blocks import check_ints
from vislab.models.registry import register_model
from vislab.models.translate.pix2pix import check_input

UPSAMPLE = ("nearest", "bilinear")


class CondInstanceNorm(nn.Module):
    """Instance norm whose scale and shift are mixed from per-style rows: ``gamma = w @ weight``, ``beta = w @ bias``
    for mixing weights ``w (B, num_styles)``."""

    def __init__(self, channels: int, num_styles: int = 1, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_styles, channels))
        self.bias = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        gamma, beta = w @ self.weight, w @ self.bias
        return F.instance_norm(x, eps=self.eps) * gamma[:, :, None, None] + beta[:, :, None, None]


class ConvLayer(nn.Module):
    """``[upsample x2], reflection pad, conv k (stride), [CondInstanceNorm, ReLU]``."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, num_styles: int = 1, norm: bool = True,
                 upsample: str | None = None):
        super().__init__()
        self.upsample = upsample
        self.pad = nn.ReflectionPad2d(k // 2)
        self.conv = nn.Conv2d(cin, cout, k, stride, bias=not norm)
        self.norm = CondInstanceNorm(cout, num_styles) if norm else None

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.upsample is not None:
            x = F.interpolate(x, scale_factor=2, mode=self.upsample)
        x = self.conv(self.pad(x))
        return x if self.norm is None else F.relu(self.norm(x, w))


class StyleResBlock(nn.Module):
    """``x + [pad, conv3, CIN, ReLU, pad, conv3, CIN](x)``."""

    def __init__(self, channels: int, num_styles: int):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, num_styles=num_styles)
        self.pad = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(channels, channels, 3, bias=False)
        self.norm2 = CondInstanceNorm(channels, num_styles)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x + self.norm2(self.conv2(self.pad(self.conv1(x, w))), w)


class TransformerNet(nn.Module):
    """``(B, C, H, W)`` [, style] -> stylised ``(B, C, H, W)`` in ``[-1, 1]``; ``H, W`` divisible by 4 (and >= 8)."""

    def __init__(self, in_chans: int = 3, width: int = 32, n_blocks: int = 5, num_styles: int = 1,
                 upsample: str = "nearest"):
        super().__init__()
        where = type(self).__name__
        check_ints(where, in_chans=(in_chans, 1), width=(width, 1), n_blocks=(n_blocks, 0), num_styles=(num_styles, 1))
        if upsample not in UPSAMPLE:
            raise ModelError(f"{where}: expected upsample in {', '.join(UPSAMPLE)}, got {upsample!r}")
        self.in_chans, self.num_styles = in_chans, num_styles
        w, s = width, num_styles
        self.layers = nn.ModuleList([
            ConvLayer(in_chans, w, 9, 1, s), ConvLayer(w, 2 * w, 3, 2, s), ConvLayer(2 * w, 4 * w, 3, 2, s),
            *[StyleResBlock(4 * w, s) for _ in range(n_blocks)],
            ConvLayer(4 * w, 2 * w, 3, 1, s, upsample=upsample), ConvLayer(2 * w, w, 3, 1, s, upsample=upsample),
            ConvLayer(w, in_chans, 9, 1, s, norm=False),
        ])

    def style_weights(self, style: torch.Tensor | int | None, batch: int, like: torch.Tensor) -> torch.Tensor:
        """``style`` as mixing weights ``(B, num_styles)`` of ``like``'s dtype and device."""
        where, s = type(self).__name__, self.num_styles
        if style is None:
            if s != 1:
                raise ModelError(f"{where}: expected a style (indices (B,) or mixing weights (B, {s})) for a "
                                 f"{s}-style network, got None")
            return like.new_ones(batch, 1)
        if isinstance(style, int) and not isinstance(style, bool):
            style = torch.full((batch,), style, dtype=torch.long, device=like.device)
        if not isinstance(style, torch.Tensor) or style.dtype == torch.bool:
            raise ModelError(f"{where}: expected style indices (B,) or mixing weights (B, {s}), got {type(style).__name__}")
        if style.dtype.is_floating_point:
            if style.shape != (batch, s):
                raise ShapeError(where, f"mixing weights of shape ({batch}, {s})", tuple(style.shape))
            return style.to(like.dtype)
        if style.shape != (batch,):
            raise ShapeError(where, f"style indices of shape ({batch},)", tuple(style.shape))
        if style.numel() and (int(style.min()) < 0 or int(style.max()) >= s):
            raise ModelError(f"{where}: expected style indices in [0, {s}), got {style.tolist()}")
        return F.one_hot(style.long(), s).to(like.dtype)

    def forward(self, x: torch.Tensor, style: torch.Tensor | int | None = None) -> torch.Tensor:
        check_input(type(self).__name__, x, self.in_chans, 4, 8)
        w = self.style_weights(style, x.shape[0], x)
        for layer in self.layers:
            x = layer(x, w)
        return torch.tanh(x)


@register_model(task="translate", family="style")
def transformer_net(in_chans: int = 3, width: int = 32, n_blocks: int = 5, num_styles: int = 1,
                    upsample: str = "nearest") -> nn.Module:
    """Johnson et al.'s fast style transfer network (instance norm, upsample-conv); conditional with ``num_styles > 1``."""
    return TransformerNet(in_chans, width, n_blocks, num_styles, upsample)
