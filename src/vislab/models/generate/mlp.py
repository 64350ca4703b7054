"""The fully connected GAN (Goodfellow et al., 2014) at toy scale: an MLP generator ``z -> x`` and an MLP critic
``x -> score``, built together as ``nn.ModuleDict({"G": ..., "D": ...})`` so one registry entry rebuilds both
from a checkpoint (``model.G.*``, ``model.D.*``).

Example:
    >>> import torch
    >>> gan = mlp_gan(z_dim=3, hidden=16, depth=2)
    >>> gan["G"](torch.randn(5, 3)).shape, gan["D"](torch.randn(5, 2)).shape
    (torch.Size([5, 2]), torch.Size([5]))
"""

from __future__ import annotations

import torch
from torch import nn

from vislab.core.errors import ModelError
from vislab.models.registry import register_model


def mlp(cin: int, cout: int, hidden: int, depth: int, act: type[nn.Module]) -> nn.Sequential:
    """``depth`` hidden layers of ``hidden`` units with ``act``, then a linear layer to ``cout``."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(cin if i == 0 else hidden, hidden), act()]
    layers.append(nn.Linear(hidden if depth else cin, cout))
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """``z (B, z_dim) -> x (B, dim)``: an MLP with ReLU."""

    def __init__(self, z_dim: int = 2, dim: int = 2, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.z_dim, self.dim = z_dim, dim
        self.net = mlp(z_dim, dim, hidden, depth, nn.ReLU)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Critic(nn.Module):
    """``x (B, dim) -> score (B,)``: an MLP with LeakyReLU(0.2); a logit (GAN, hinge) or an unbounded score (WGAN)."""

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.net = mlp(dim, 1, hidden, depth, lambda: nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


@register_model(task="gan2d", family="mlp")
def mlp_gan(z_dim: int = 2, dim: int = 2, hidden: int = 128, depth: int = 3) -> nn.ModuleDict:
    """Fully connected GAN: generator ``G`` and critic ``D`` (MLPs of ``depth`` hidden layers of ``hidden`` units)."""
    if min(z_dim, dim, hidden) < 1 or depth < 0:
        raise ModelError(f"mlp_gan: expected z_dim, dim, hidden >= 1 and depth >= 0, got {z_dim}, {dim}, {hidden}, {depth}")
    return nn.ModuleDict({"G": Generator(z_dim, dim, hidden, depth), "D": Critic(dim, hidden, depth)})
