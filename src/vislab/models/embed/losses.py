"""Metric-learning losses: pytorch-metric-learning's where it has them, center loss written here (PML has none).

:func:`build_metric_loss` gives one :class:`MetricLoss` module per ``--loss``; ``loss(z, labels)`` is the mean
over the batch. Losses with parameters of their own (softmax / ArcFace / CosFace / SphereFace class weights,
center-loss centres) keep them in the module, so they train with the model's optimizer and are saved in its
checkpoint.

=================  ========================================================================  ==============
``--loss``          what                                                                      miner (auto)
=================  ========================================================================  ==============
softmax            cross-entropy of a linear classifier on the embedding (the baseline)      --
center             softmax + ``--center-weight`` x center loss (Wen et al. 2016)              --
arcface            additive angular margin (Deng et al. 2019), PML ``ArcFaceLoss``, scale 16  --
cosface            additive cosine margin (Wang et al. 2018), PML ``CosFaceLoss``, scale 16   --
sphereface         multiplicative angular margin (Liu et al. 2017), PML ``SphereFaceLoss``   --
contrastive        the Siamese pair loss (Hadsell et al. 2006), PML ``ContrastiveLoss``       all pairs
triplet            triplet margin loss (Schroff et al. 2015), PML ``TripletMarginLoss``       semihard
npair              N-pair loss (Sohn 2016), PML ``NPairsLoss``                                --
ntxent             InfoNCE / NT-Xent with labels (supervised contrastive), PML ``NTXentLoss``  --
multisimilarity    multi-similarity loss (Wang et al. 2019), PML ``MultiSimilarityLoss``      multi-similarity
=================  ========================================================================  ==============

Example:
    >>> import torch
    >>> loss = build_metric_loss("center", dim=8, num_classes=3)
    >>> z, y = torch.randn(6, 8), torch.tensor([0, 0, 1, 1, 2, 2])
    >>> out = loss(z, y)
    >>> out.shape, sorted(n for n, _ in loss.named_parameters())
    (torch.Size([]), ['classifier.bias', 'classifier.weight'])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ConfigError, did_you_mean

LOSSES = ("softmax", "center", "arcface", "cosface", "sphereface", "contrastive", "triplet", "npair", "ntxent", "multisimilarity")
CLASS_LOSSES = ("softmax", "center", "arcface", "cosface", "sphereface")  # with per-class parameters: need the class count
MINERS = ("auto", "none", "all", "hard", "semihard", "easy", "multisimilarity")
DEFAULT_SCALE = 16.0  # logit scale of arcface / cosface: small data and small embeddings learn far better than at 64


class CenterLoss(nn.Module):
    """``0.5 * ||z - c_y||^2`` averaged over the batch, with a centre ``c_k`` per class (Wen et al. 2016).

    The centres are not learnt by the optimizer but moved as the paper does: after each training batch,
    ``c_j -= alpha * sum_i (c_j - z_i) / (1 + n_j)`` over the batch's ``n_j`` samples of class ``j`` (``alpha`` 0.5). They
    are a buffer, saved in the checkpoint; in eval mode (or without gradients) they stay put.

    Example:
        >>> import torch
        >>> c = CenterLoss(2, 3)
        >>> float(c(torch.tensor([[0.0, 0, 2], [1, 1, 1]]), torch.tensor([0, 1])))  # centres start at 0: (0.5*4 + 0.5*3) / 2
        1.75
        >>> c.centres.tolist()  # c -= 0.5 * (c - z) / (1 + 1)
        [[0.0, 0.0, 0.5], [0.25, 0.25, 0.25]]
    """

    def __init__(self, num_classes: int, dim: int, alpha: float = 0.5):
        super().__init__()
        self.alpha = alpha
        self.register_buffer("centres", torch.zeros(num_classes, dim))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z = z.float()
        loss = 0.5 * (z - self.centres[labels]).pow(2).sum(1).mean()
        if self.training and torch.is_grad_enabled():
            with torch.no_grad():
                cls, inv, counts = labels.unique(return_inverse=True, return_counts=True)
                diff = torch.zeros(len(cls), z.shape[1], device=z.device).index_add_(0, inv, self.centres[labels] - z.detach())
                self.centres[cls] -= self.alpha * diff / (1 + counts[:, None].float())
        return loss


class MetricLoss(nn.Module):
    """One ``--loss``: ``forward(z, labels) -> mean loss``; ``logits(z)`` for the losses with class weights (their
    training accuracy), else None."""

    def __init__(self, name: str, dim: int, num_classes: int = 0, margin: float = 0.0, scale: float = 0.0, miner: str = "auto",
                 center_weight: float = 0.01, distance: str = "cosine"):
        super().__init__()
        from pytorch_metric_learning import distances, losses, miners

        # the pair losses measure what evaluation will: L2 of normalised embeddings (the cosine ranking) or raw L2
        lp = distances.LpDistance(normalize_embeddings=distance == "cosine")

        if name not in LOSSES:
            raise ConfigError(f"--loss: expected one of {', '.join(LOSSES)}, got '{name}'{did_you_mean(name, LOSSES)}")
        if miner not in MINERS:
            raise ConfigError(f"--miner: expected one of {', '.join(MINERS)}, got '{miner}'{did_you_mean(miner, MINERS)}")
        if name in CLASS_LOSSES and num_classes < 2:
            raise ConfigError(f"--loss {name}: expected at least 2 training identities, got {num_classes}")
        self.name, self.center_weight = name, center_weight
        self.classifier: nn.Module | None = None
        self.center: CenterLoss | None = None
        self.pml: nn.Module | None = None
        kw: dict[str, Any] = {}
        if name in ("softmax", "center"):
            self.classifier = nn.Linear(dim, num_classes)
            if name == "center":
                self.center = CenterLoss(num_classes, dim)
        elif name in ("arcface", "cosface", "sphereface"):
            kw = {"margin": margin} if margin else {}
            if scale or name != "sphereface":
                kw["scale"] = scale or DEFAULT_SCALE  # PML's (and the papers') 64 trained ArcFace to P@1 0.70 where 16 gave 1.00
            cls = {"arcface": losses.ArcFaceLoss, "cosface": losses.CosFaceLoss, "sphereface": losses.SphereFaceLoss}[name]
            self.pml = cls(num_classes=num_classes, embedding_size=dim, **kw)
        elif name == "contrastive":
            self.pml = losses.ContrastiveLoss(pos_margin=0.0, neg_margin=margin or 1.0, distance=lp)
        elif name == "triplet":
            self.pml = losses.TripletMarginLoss(margin=margin or 0.2, distance=lp)
        elif name == "npair":
            self.pml = losses.NPairsLoss()
        elif name == "ntxent":
            self.pml = losses.NTXentLoss(temperature=scale or 0.07)
        else:
            self.pml = losses.MultiSimilarityLoss(alpha=2, beta=50, base=margin or 0.5)
        chosen = {"triplet": "semihard", "multisimilarity": "multisimilarity"}.get(name, "none") if miner == "auto" else miner
        if chosen != "none" and name in CLASS_LOSSES:
            raise ConfigError(f"--miner: expected none or auto with --loss {name} (it compares embeddings with class weights, not pairs), got '{miner}'")
        self.miner_name = chosen
        if chosen == "multisimilarity":
            self.miner = miners.MultiSimilarityMiner(epsilon=0.1)
        elif chosen in ("all", "hard", "semihard", "easy"):
            self.miner = miners.TripletMarginMiner(margin=margin or 0.2, type_of_triplets=chosen, distance=lp)
        else:
            self.miner = None

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z = z.float()
        if self.classifier is not None:
            loss = F.cross_entropy(self.classifier(z), labels)
            if self.center is not None:
                loss = loss + self.center_weight * self.center(z, labels)
            return loss
        assert self.pml is not None
        pairs = self.miner(z, labels) if self.miner is not None else None
        return self.pml(z, labels, pairs) if pairs is not None else self.pml(z, labels)

    @torch.no_grad()
    def logits(self, z: torch.Tensor) -> torch.Tensor | None:
        if self.classifier is not None:
            return self.classifier(z.float())
        if self.pml is not None and hasattr(self.pml, "get_logits"):
            return self.pml.get_logits(z.float())
        return None


def build_metric_loss(name: str, dim: int, num_classes: int = 0, margin: float = 0.0, scale: float = 0.0, miner: str = "auto",
                      center_weight: float = 0.01, distance: str = "cosine") -> MetricLoss:
    """The :class:`MetricLoss` of ``--loss name`` (``margin`` / ``scale`` 0: the loss's own default; ``distance``: what
    the contrastive and triplet losses and the triplet miners measure, as evaluation will)."""
    return MetricLoss(name, dim, num_classes, margin, scale, miner, center_weight, distance)
