"""Segmentation losses: cross-entropy, Dice, focal, Tversky, Lovász-softmax, and weighted sums.

Every loss takes logits ``(B, K, H, W)`` and targets ``(B, H, W)`` (``ignore_index`` pixels left out)
and returns the *per-image* losses ``(B,)``: the trainer needs the sum over the process's images
(``loss.sum()``), which makes the loss of a global batch independent of how it is split over processes.

Example:
    >>> logits = torch.zeros(2, 3, 5, 4); target = torch.randint(0, 3, (2, 5, 4))
    >>> [round(float(v), 4) for v in cross_entropy(logits, target)]
    [1.0986, 1.0986]
    >>> build_loss("ce+dice")(logits, target).shape
    torch.Size([2])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from vislab.core.errors import ConfigError, did_you_mean

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _valid(target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    return target != ignore_index  # (B, H, W) bool


def _probs_onehot(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax ``(B, K, H, W)``, one-hot target ``(B, K, H, W)``, valid mask ``(B, 1, H, W)`` (float)."""
    k = logits.shape[1]
    valid = _valid(target, ignore_index)
    p = logits.float().softmax(1)
    t = F.one_hot(torch.where(valid, target, 0).long(), k).permute(0, 3, 1, 2).float()
    v = valid[:, None].float()
    return p * v, t * v, v


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, ignore_index: int = 255,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-image mean pixel cross-entropy ``(B,)`` (class ``weight`` and label smoothing as in ``F.cross_entropy``)."""
    px = F.cross_entropy(logits.float(), target.long(), weight=weight, ignore_index=ignore_index, reduction="none",
                         label_smoothing=label_smoothing)  # (B, H, W), 0 at ignored pixels
    valid = _valid(target, ignore_index).float()
    if weight is not None:  # weighted mean, like F.cross_entropy(reduction="mean"), per image
        w = weight.to(px.device)[torch.where(valid.bool(), target, 0).long()] * valid
        return px.flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1e-12)
    return px.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss ``1 - mean_c (2|P∩T| + s) / (|P| + |T| + s)`` per image ``(B,)`` (Milletari et al., 2016)."""
    p, t, _ = _probs_onehot(logits, target, ignore_index)
    inter, total = (p * t).sum((2, 3)), (p + t).sum((2, 3))  # (B, K)
    return 1 - ((2 * inter + smooth) / (total + smooth)).mean(1)


def tversky_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.3, beta: float = 0.7, ignore_index: int = 255,
                 smooth: float = 1.0) -> torch.Tensor:
    """Tversky loss per image ``(B,)``: FP weighted ``alpha``, FN ``beta`` (Salehi et al., 2017); alpha = beta = 0.5 is Dice."""
    p, t, _ = _probs_onehot(logits, target, ignore_index)
    tp, fp, fn = (p * t).sum((2, 3)), (p * (1 - t)).sum((2, 3)), ((1 - p) * t).sum((2, 3))
    return 1 - ((tp + smooth) / (tp + alpha * fp + beta * fn + smooth)).mean(1)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, weight: torch.Tensor | None = None,
               ignore_index: int = 255) -> torch.Tensor:
    """Focal loss ``-(1 - p_t)^gamma log p_t``, mean over valid pixels, per image ``(B,)`` (Lin et al., 2017)."""
    valid = _valid(target, ignore_index)
    t = torch.where(valid, target, 0).long()
    logp = logits.float().log_softmax(1).gather(1, t[:, None])[:, 0]  # (B, H, W)
    px = -((1 - logp.exp()) ** gamma) * logp
    if weight is not None:
        px = px * weight.to(px.device)[t]
    px = px * valid
    return px.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1)


def _lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss w.r.t. sorted errors (Berman et al., 2018)."""
    gts = gt_sorted.sum()
    inter = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jac = 1 - inter / union
    if len(gt_sorted) > 1:
        jac[1:] = jac[1:] - jac[:-1]
    return jac


def lovasz_softmax(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Lovász-softmax loss per image ``(B,)``: a convex surrogate of 1 - IoU, averaged over classes present."""
    probs = logits.float().softmax(1)
    out = []
    for p, y in zip(probs, target, strict=True):  # per image
        valid = y != ignore_index
        p, y = p[:, valid], y[valid]  # (K, n), (n,)
        losses = []
        for c in range(p.shape[0]):
            fg = (y == c).float()
            if fg.sum() == 0:
                continue
            err = (fg - p[c]).abs()
            err_s, perm = err.sort(descending=True)
            losses.append(torch.dot(err_s, _lovasz_grad(fg[perm])))
        out.append(torch.stack(losses).mean() if losses else logits.sum() * 0.0)
    return torch.stack(out)


LOSSES = ("ce", "dice", "focal", "tversky", "lovasz")


def build_loss(spec: str, weight: Sequence[float] | torch.Tensor | None = None, ignore_index: int = 255,
               label_smoothing: float = 0.0, focal_gamma: float = 2.0, tversky: tuple[float, float] = (0.3, 0.7)) -> LossFn:
    """A weighted sum of losses from a spec like ``ce``, ``ce+dice`` or ``0.5*ce+1*lovasz``.

    Args:
        spec: ``+``-separated terms ``[w*]name`` with names out of :data:`LOSSES`.
        weight: class weights ``(K,)`` for ``ce`` and ``focal``.
        ignore_index: target value left out.
        label_smoothing: for ``ce``.
        focal_gamma: focusing parameter of ``focal``.
        tversky: ``(alpha, beta)`` of ``tversky``.

    Returns:
        ``fn(logits (B, K, H, W), target (B, H, W)) -> (B,)`` per-image losses.
    """
    w = torch.as_tensor(weight, dtype=torch.float32) if weight is not None and len(weight) else None
    fns: dict[str, LossFn] = {
        "ce": lambda x, y: cross_entropy(x, y, w, ignore_index, label_smoothing),
        "dice": lambda x, y: dice_loss(x, y, ignore_index),
        "focal": lambda x, y: focal_loss(x, y, focal_gamma, w, ignore_index),
        "tversky": lambda x, y: tversky_loss(x, y, tversky[0], tversky[1], ignore_index),
        "lovasz": lambda x, y: lovasz_softmax(x, y, ignore_index),
    }
    terms: list[tuple[float, LossFn]] = []
    for term in spec.replace(" ", "").split("+"):
        coef, _, name = term.rpartition("*")
        if name not in fns:
            raise ConfigError(f"--loss: expected terms out of {', '.join(LOSSES)} (e.g. ce+dice, 0.5*ce+lovasz), got '{name}'{did_you_mean(name, fns)}")
        try:
            c = float(coef) if coef else 1.0
        except ValueError:
            raise ConfigError(f"--loss: expected a number before '*', got '{coef}'") from None
        terms.append((c, fns[name]))

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(c * f(logits, target) for c, f in terms)  # type: ignore[return-value]

    return loss
