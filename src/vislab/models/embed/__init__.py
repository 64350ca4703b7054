"""Embedding models: any registry classifier's features -> a small head -> a ``dim``-vector per image.

``embedder(backbone=..., dim=128, loss=...)`` builds :class:`EmbeddingNet`: the backbone without its classifier
(``forward_features`` + pooling), a linear layer to ``dim``, batch norm (``bn``) and dropout; and, as the submodule
``criterion``, the training loss with its own parameters (class weights, centres: see
:mod:`vislab.models.embed.losses`), so one checkpoint holds everything the run trained. ``model(x)`` is the raw
embedding; :meth:`EmbeddingNet.embed` is the one to compare -- L2-normalised for cosine distance.

Example:
    >>> import torch
    >>> m = embedder(backbone="small_cnn", backbone_args={"in_chans": 3, "width": 8}, dim=16, loss="arcface", num_classes=5)
    >>> m.embed(torch.zeros(2, 3, 32, 32)).shape, m.distance
    (torch.Size([2, 16]), 'cosine')
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vislab.models.embed.losses import build_metric_loss
from vislab.models.registry import MODELS, register_model


class EmbeddingNet(nn.Module):
    """Backbone features -> linear -> (BN) -> (dropout): ``(B, C, H, W) -> (B, dim)``."""

    def __init__(self, backbone: nn.Module, dim: int, bn: bool = True, dropout: float = 0.0, criterion: nn.Module | None = None,
                 distance: str = "cosine"):
        super().__init__()
        self.backbone = backbone
        self.dim, self.distance = dim, distance
        layers: list[nn.Module] = [nn.Linear(backbone.num_features, dim)]
        if bn:
            layers.append(nn.BatchNorm1d(dim))
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.neck = nn.Sequential(*layers)
        self.criterion = criterion if criterion is not None else nn.Identity()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's pooled features ``(B, num_features)``."""
        return self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.features(x))

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding to compare: ``forward(x)``, L2-normalised when the distance is cosine."""
        z = self.forward(x).float()
        return F.normalize(z, dim=1) if self.distance == "cosine" else z


@register_model(task="embed", family="embed", input_size=(3, 32, 32))
def embedder(backbone: str = "small_cnn", backbone_args: dict[str, Any] | None = None, dim: int = 128, bn: bool = True, dropout: float = 0.0,
             loss: str = "arcface", loss_args: dict[str, Any] | None = None, num_classes: int = 0, distance: str = "cosine") -> EmbeddingNet:
    """An :class:`EmbeddingNet` on registry model ``backbone`` (built with ``backbone_args`` and no classifier),
    trained with ``loss`` (:func:`vislab.models.embed.losses.build_metric_loss` with ``loss_args``) over ``num_classes``
    training identities."""
    net = MODELS.build(backbone, **{**(backbone_args or {}), "num_classes": 0})
    if not hasattr(net, "num_features") or not hasattr(net, "forward_features"):
        from vislab.core.errors import ModelError

        raise ModelError(f"--model: expected a classifier backbone with features (`vislab models list --task classify`), got '{backbone}'")
    criterion = build_metric_loss(loss, dim, num_classes, **(loss_args or {}))
    return EmbeddingNet(net, dim, bn, dropout, criterion, distance)
