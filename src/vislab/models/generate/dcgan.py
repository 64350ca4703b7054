"""DCGAN (Radford et al., 2016) at any size :func:`~vislab.models.generate.blocks.pyramid` accepts (16, 28, 32, 64 px
...), optionally class-conditional and spectrally normalised (SNGAN, Miyato et al., 2018).

Generator: ``z (B, z_dim)`` [+ a learned class embedding of ``z_dim``] -> linear -> ``(C0, base, base)`` -> ``n`` x
``[ConvTranspose k4 s2, norm, ReLU]`` halving the channels down to ``width`` -> ``conv 3x3`` -> ``tanh``, with
``C0 = width * 2^(n-1)`` capped at ``8 width``. Critic: ``n`` x ``[conv k4 s2, norm (none on the first), LeakyReLU(0.2)]``
doubling the channels -> flatten to ``h`` -> linear to a raw score ``(B,)`` (a logit: no sigmoid); conditional critics
add the projection ``<embed(y), h>`` (Miyato & Koyama, 2018). Both come in one ``nn.ModuleDict({"G", "D"})``.

Example:
    >>> import torch
    >>> gan = dcgan(z_dim=8, in_chans=3, img_size=32, width=8, num_classes=10, spectral_norm=True)
    >>> x = gan["G"](torch.randn(4, 8), torch.tensor([0, 1, 2, 3]))
    >>> x.shape, bool(x.abs().max() <= 1), gan["D"](x, torch.tensor([0, 1, 2, 3])).shape
    (torch.Size([4, 3, 32, 32]), True, torch.Size([4]))
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from vislab.core.errors import ModelError, ShapeError
from vislab.models.generate.blocks import (NORMS, check_images, check_ints, check_labels, check_size, dcgan_init,
                                           norm2d, widths)
from vislab.models.registry import register_model


class DCGANGenerator(nn.Module):
    """``z (B, z_dim)`` [, ``y (B,)``] -> images ``(B, in_chans, img_size, img_size)`` in ``[-1, 1]``."""

    def __init__(self, z_dim: int = 64, in_chans: int = 1, img_size: int = 32, width: int = 64, num_classes: int = 0,
                 norm: str = "batch"):
        super().__init__()
        where = type(self).__name__
        check_ints(where, z_dim=(z_dim, 1), in_chans=(in_chans, 1), width=(width, 1), num_classes=(num_classes, 0))
        n, base = check_size(where, img_size)
        norm2d(norm, 1)  # unknown names raise here
        self.z_dim, self.num_classes, self.in_chans, self.img_size = z_dim, num_classes, in_chans, img_size
        ch = widths(width, n)
        bias = norm == "none"  # a bias before a normalisation is cancelled by it (and gets no gradient)
        self.embed = nn.Embedding(num_classes, z_dim) if num_classes else None
        self.fc = nn.Sequential(nn.Linear(z_dim * (2 if num_classes else 1), ch[-1] * base * base, bias=bias),
                                nn.Unflatten(1, (ch[-1], base, base)), norm2d(norm, ch[-1]), nn.ReLU())
        up = ch[::-1]
        blocks: list[nn.Module] = []
        for cin, cout in zip(up, [*up[1:], ch[0]]):
            blocks += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=bias), norm2d(norm, cout), nn.ReLU()]
        self.net = nn.Sequential(*blocks, nn.Conv2d(ch[0], in_chans, 3, 1, 1), nn.Tanh())
        dcgan_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        where = type(self).__name__
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ShapeError(where, f"noise z (B, {self.z_dim})", tuple(z.shape))
        y = check_labels(where, y, self.num_classes, z.shape[0])
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        return self.net(self.fc(z))


class DCGANCritic(nn.Module):
    """Images ``(B, in_chans, img_size, img_size)`` [, ``y (B,)``] -> raw scores ``(B,)`` (logits; no sigmoid)."""

    def __init__(self, in_chans: int = 1, img_size: int = 32, width: int = 64, num_classes: int = 0, norm: str = "batch",
                 spectral_norm: bool = False):
        super().__init__()
        where = type(self).__name__
        check_ints(where, in_chans=(in_chans, 1), width=(width, 1), num_classes=(num_classes, 0))
        n, base = check_size(where, img_size)
        norm2d(norm, 1)
        self.in_chans, self.img_size, self.num_classes = in_chans, img_size, num_classes
        self.spectral_norm = bool(spectral_norm)
        ch = widths(width, n)
        blocks: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip([in_chans, *ch[:-1]], ch)):
            kind = "none" if i == 0 else norm  # DCGAN: no normalisation on the critic's input layer
            blocks += [nn.Conv2d(cin, cout, 4, 2, 1, bias=kind == "none"), norm2d(kind, cout), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*blocks, nn.Flatten())
        feat = ch[-1] * base * base
        self.head = nn.Linear(feat, 1)
        self.embed = nn.Embedding(num_classes, feat) if num_classes else None
        dcgan_init(self)
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, 0.0, 0.02)
        if spectral_norm:
            for m in list(self.modules()):
                if isinstance(m, nn.Conv2d | nn.Linear | nn.Embedding):
                    _sn(m)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        where = type(self).__name__
        check_images(where, x, self.in_chans, self.img_size)
        y = check_labels(where, y, self.num_classes, x.shape[0])
        h = self.features(x)
        score = self.head(h).squeeze(1)
        if self.embed is not None:
            score = score + (self.embed(y) * h).sum(dim=1)
        return score


@register_model(task="generate", family="gan")
def dcgan(z_dim: int = 64, in_chans: int = 1, img_size: int = 32, width: int = 64, num_classes: int = 0,
          g_norm: str = "batch", d_norm: str = "batch", spectral_norm: bool = False) -> nn.ModuleDict:
    """DCGAN: convolutional generator ``G`` and critic ``D`` (conditional with ``num_classes > 0``, SN with ``spectral_norm``)."""
    check_ints("dcgan", z_dim=(z_dim, 1), in_chans=(in_chans, 1), width=(width, 1), num_classes=(num_classes, 0))
    check_size("dcgan", img_size)
    for name, kind in (("g_norm", g_norm), ("d_norm", d_norm)):
        if kind not in NORMS:
            raise ModelError(f"dcgan: expected {name} in {', '.join(NORMS)}, got {kind!r}")
    return nn.ModuleDict({"G": DCGANGenerator(z_dim, in_chans, img_size, width, num_classes, g_norm),
                          "D": DCGANCritic(in_chans, img_size, width, num_classes, d_norm, spectral_norm)})
