"""Convolutional autoencoders: the plain autoencoder, the VAE (Kingma & Welling, 2014) and the conditional VAE
(Sohn et al., 2015), one class for the three.

The encoder halves the image ``n`` times (:func:`~vislab.models.generate.blocks.pyramid`: 32 px -> 4 x 4 in 3 stages,
28 px -> 7 x 7 in 2) with ``conv k4 s2 + BatchNorm + LeakyReLU(0.2)`` stages of ``width, 2 width, ...`` channels
(capped at ``8 width``), flattens and maps linearly to the code ``mu`` (and ``logvar`` for the VAE). The decoder
mirrors it with transposed convolutions and ends in ``tanh``: images live in ``[-1, 1]``. Conditional models see the
one-hot class as extra constant input channels of the encoder and next to ``z`` at the decoder's input.

Example:
    >>> import torch
    >>> ae = vae(in_chans=1, img_size=28, z_dim=4, width=8, num_classes=10)
    >>> recon, mu, logvar = ae(torch.rand(2, 1, 28, 28) * 2 - 1, torch.tensor([3, 7]))
    >>> recon.shape, mu.shape, logvar.shape
    (torch.Size([2, 1, 28, 28]), torch.Size([2, 4]), torch.Size([2, 4]))
    >>> ae.decode(torch.randn(5, 4), torch.arange(5)).shape
    torch.Size([5, 1, 28, 28])
"""

from __future__ import annotations

import torch
from torch import nn

from vislab.core.errors import ShapeError
from vislab.models.generate.blocks import check_images, check_ints, check_labels, check_size, one_hot, widths
from vislab.models.registry import register_model


class ConvAutoencoder(nn.Module):
    """``x (B, C, H, W) -> (recon, mu, logvar)``; ``encode`` and ``decode`` separately; ``logvar`` is ``None`` unless
    ``variational``. ``y (B,)`` class indices are required when ``num_classes > 0`` and refused otherwise."""

    def __init__(self, in_chans: int = 1, img_size: int = 32, z_dim: int = 16, width: int = 32, num_classes: int = 0,
                 variational: bool = False):
        super().__init__()
        check_ints(type(self).__name__, in_chans=(in_chans, 1), z_dim=(z_dim, 1), width=(width, 1),
                   num_classes=(num_classes, 0))
        self.in_chans, self.img_size, self.z_dim = in_chans, img_size, z_dim
        self.num_classes, self.variational = num_classes, bool(variational)
        n, base = check_size(type(self).__name__, img_size)
        ch = widths(width, n)
        self.base, self.top = base, ch[-1]

        enc: list[nn.Module] = []
        for cin, cout in zip([in_chans + num_classes, *ch[:-1]], ch):
            enc += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        feat = ch[-1] * base * base
        self.mu = nn.Linear(feat, z_dim)
        self.logvar = nn.Linear(feat, z_dim) if variational else None

        self.fc = nn.Sequential(nn.Linear(z_dim + num_classes, feat, bias=False), nn.Unflatten(1, (ch[-1], base, base)),
                                nn.BatchNorm2d(ch[-1]), nn.ReLU())
        dec: list[nn.Module] = []
        up = ch[::-1]  # top ... width, then one more stage at width back to img_size
        for cin, cout in zip(up, [*up[1:], ch[0]]):
            dec += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        self.decoder = nn.Sequential(*dec, nn.Conv2d(ch[0], in_chans, 3, 1, 1), nn.Tanh())

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(mu, logvar)`` of ``x``; ``logvar`` is ``None`` for a plain autoencoder."""
        name = type(self).__name__
        check_images(f"{name}.encode", x, self.in_chans, self.img_size)
        y = check_labels(f"{name}.encode", y, self.num_classes, x.shape[0])
        if y is not None:
            planes = one_hot(y, self.num_classes, x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, planes], dim=1)
        h = self.encoder(x)
        return self.mu(h), (self.logvar(h) if self.logvar is not None else None)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``(B, C, H, W)`` in ``[-1, 1]`` from codes ``z (B, z_dim)``."""
        name = type(self).__name__
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ShapeError(f"{name}.decode", f"codes z (B, {self.z_dim})", tuple(z.shape))
        y = check_labels(f"{name}.decode", y, self.num_classes, z.shape[0])
        if y is not None:
            z = torch.cat([z, one_hot(y, self.num_classes, z.dtype)], dim=1)
        return self.decoder(self.fc(z))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, eps: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(recon, mu, logvar)``. The VAE decodes ``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)`` unless given
        (a given ``eps`` makes it deterministic; zeros decode the mean); the plain autoencoder decodes ``z = mu``."""
        mu, logvar = self.encode(x, y)
        z = mu
        if logvar is not None:
            z = mu + torch.exp(0.5 * logvar) * (torch.randn_like(mu) if eps is None else eps)
        return self.decode(z, y), mu, logvar


@register_model(task="generate", family="autoencoder")
def conv_ae(in_chans: int = 1, img_size: int = 32, z_dim: int = 16, width: int = 32) -> ConvAutoencoder:
    """Convolutional autoencoder: ``x -> z (z_dim) -> x``, tanh output in ``[-1, 1]``."""
    check_ints("conv_ae", in_chans=(in_chans, 1), img_size=(img_size, 1), z_dim=(z_dim, 1), width=(width, 1))
    check_size("conv_ae", img_size)
    return ConvAutoencoder(in_chans, img_size, z_dim, width, num_classes=0, variational=False)


@register_model(task="generate", family="autoencoder")
def vae(in_chans: int = 1, img_size: int = 32, z_dim: int = 16, width: int = 32, num_classes: int = 0) -> ConvAutoencoder:
    """Convolutional VAE (conditional on the class when ``num_classes > 0``): ``x -> (mu, logvar) -> z -> x``."""
    check_ints("vae", in_chans=(in_chans, 1), img_size=(img_size, 1), z_dim=(z_dim, 1), width=(width, 1),
               num_classes=(num_classes, 0))
    check_size("vae", img_size)
    return ConvAutoencoder(in_chans, img_size, z_dim, width, num_classes=num_classes, variational=True)
