"""The fully connected GAN of Goodfellow et al. (2014) on images (MNIST-sized): an MLP generator ``z -> tanh -> image``
and an MLP critic ``flatten(image) -> score``; conditional (Mirza & Osindero, 2014) with the one-hot class concatenated
to the inputs of both. ``nn.ModuleDict({"G", "D"})`` as for :func:`~vislab.models.generate.dcgan.dcgan`.

Example:
    >>> import torch
    >>> gan = gan_mlp(z_dim=8, in_chans=1, img_size=28, hidden=32, num_classes=10)
    >>> x = gan["G"](torch.randn(3, 8), torch.tensor([1, 2, 3]))
    >>> x.shape, gan["D"](x, torch.tensor([1, 2, 3])).shape
    (torch.Size([3, 1, 28, 28]), torch.Size([3]))
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from vislab.core.errors import ShapeError
from vislab.models.generate.blocks import check_images, check_ints, check_labels, one_hot
from vislab.models.generate.mlp import mlp
from vislab.models.registry import register_model


def _leaky() -> nn.Module:
    return nn.LeakyReLU(0.2)


class MLPImageGenerator(nn.Module):
    """``z (B, z_dim)`` [, ``y (B,)``] -> images ``(B, in_chans, img_size, img_size)`` in ``[-1, 1]``."""

    def __init__(self, z_dim: int = 64, in_chans: int = 1, img_size: int = 32, hidden: int = 256, depth: int = 2,
                 num_classes: int = 0):
        super().__init__()
        check_ints(type(self).__name__, z_dim=(z_dim, 1), in_chans=(in_chans, 1), img_size=(img_size, 1),
                   hidden=(hidden, 1), depth=(depth, 0), num_classes=(num_classes, 0))
        self.z_dim, self.num_classes, self.in_chans, self.img_size = z_dim, num_classes, in_chans, img_size
        self.net = nn.Sequential(mlp(z_dim + num_classes, in_chans * img_size * img_size, hidden, depth, nn.ReLU),
                                 nn.Tanh(), nn.Unflatten(1, (in_chans, img_size, img_size)))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        where = type(self).__name__
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ShapeError(where, f"noise z (B, {self.z_dim})", tuple(z.shape))
        y = check_labels(where, y, self.num_classes, z.shape[0])
        if y is not None:
            z = torch.cat([z, one_hot(y, self.num_classes, z.dtype)], dim=1)
        return self.net(z)


class MLPImageCritic(nn.Module):
    """Images ``(B, in_chans, img_size, img_size)`` [, ``y (B,)``] -> raw scores ``(B,)``: an MLP with LeakyReLU(0.2)."""

    def __init__(self, in_chans: int = 1, img_size: int = 32, hidden: int = 256, depth: int = 2, num_classes: int = 0,
                 spectral_norm: bool = False):
        super().__init__()
        check_ints(type(self).__name__, in_chans=(in_chans, 1), img_size=(img_size, 1), hidden=(hidden, 1),
                   depth=(depth, 0), num_classes=(num_classes, 0))
        self.in_chans, self.img_size, self.num_classes = in_chans, img_size, num_classes
        self.spectral_norm = bool(spectral_norm)
        self.net = mlp(in_chans * img_size * img_size + num_classes, 1, hidden, depth, _leaky)
        if spectral_norm:
            for m in list(self.net):
                if isinstance(m, nn.Linear):
                    _sn(m)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        where = type(self).__name__
        check_images(where, x, self.in_chans, self.img_size)
        y = check_labels(where, y, self.num_classes, x.shape[0])
        h = x.flatten(1)
        if y is not None:
            h = torch.cat([h, one_hot(y, self.num_classes, h.dtype)], dim=1)
        return self.net(h).squeeze(1)


@register_model(task="generate", family="gan")
def gan_mlp(z_dim: int = 64, in_chans: int = 1, img_size: int = 32, hidden: int = 256, depth: int = 2, num_classes: int = 0,
            spectral_norm: bool = False) -> nn.ModuleDict:
    """Fully connected image GAN: MLP generator ``G`` and critic ``D`` of ``depth`` hidden layers of ``hidden`` units."""
    check_ints("gan_mlp", z_dim=(z_dim, 1), in_chans=(in_chans, 1), img_size=(img_size, 1), hidden=(hidden, 1),
               depth=(depth, 0), num_classes=(num_classes, 0))
    return nn.ModuleDict({"G": MLPImageGenerator(z_dim, in_chans, img_size, hidden, depth, num_classes),
                          "D": MLPImageCritic(in_chans, img_size, hidden, depth, num_classes, spectral_norm)})
