"""Semantic-segmentation metrics from a pixel confusion matrix.

The state (a ``(K, K)`` confusion matrix of pixels, rows = true class, and a loss sum) adds up over
batches and processes, so the numbers are exact for any number of processes. Pixels whose target is
``ignore_index`` are not counted. IoU of class c is ``TP / (TP + FP + FN)``; a class with no pixel in
either target or prediction has no IoU (NaN) and is left out of the mean -- the convention of
torchmetrics' ``MulticlassJaccardIndex`` (checked in ``tests/segment/test_seg_metrics.py``).

Example:
    >>> m = SegmentationMetrics(2)
    >>> m.update(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 1], [0, 1]]))
    >>> {k: round(v, 4) for k, v in m.compute().items() if k in ("pixel_acc", "miou")}
    {'miou': 0.5833, 'pixel_acc': 0.75}
"""

from __future__ import annotations

import torch

from vislab.core.dist import all_reduce_sum


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = 255) -> torch.Tensor:
    """Pixel confusion matrix ``(K, K)`` int64 (rows: true, cols: predicted) of ``pred``, ``target`` ``(*, H, W)``."""
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    keep = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    idx = target[keep] * num_classes + pred[keep].clamp(0, num_classes - 1)
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def scores_from_confmat(cm: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-class ``iou``, ``dice`` (= F1), ``precision``, ``recall``, ``support`` from a confusion matrix (NaN where undefined)."""
    cm = cm.double()
    tp = cm.diag()
    fn, fp = cm.sum(1) - tp, cm.sum(0) - tp
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=cm.device)
    union = tp + fp + fn
    return {
        "iou": torch.where(union > 0, tp / union.clamp_min(1), nan),
        "dice": torch.where(union > 0, 2 * tp / (2 * tp + fp + fn).clamp_min(1), nan),
        "precision": torch.where(tp + fp > 0, tp / (tp + fp).clamp_min(1), nan),
        "recall": torch.where(tp + fn > 0, tp / (tp + fn).clamp_min(1), nan),
        "support": cm.sum(1),
    }


class SegmentationMetrics:
    """mIoU, per-class IoU, mean Dice, pixel accuracy, mean class accuracy, loss; the confusion matrix.

    Args:
        num_classes: K.
        ignore_index: target value of pixels left out.
        device: where the state lives.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255, device: torch.device | str = "cpu"):
        self.k = num_classes
        self.ignore_index = ignore_index
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        self.confmat = torch.zeros(self.k, self.k, dtype=torch.float64, device=self.device)
        self.stats = torch.zeros(2, dtype=torch.float64, device=self.device)  # [images, loss sum]

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor, loss_sum: float | torch.Tensor = 0.0) -> None:
        """Add a batch: ``pred`` ``(B, H, W)`` class indices or ``(B, K, H, W)`` scores, ``target`` ``(B, H, W)``."""
        if pred.ndim == target.ndim + 1:
            pred = pred.argmax(1)
        cm = confusion_matrix(pred.to(self.device), target.to(self.device), self.k, self.ignore_index)
        self.confmat += cm.to(self.confmat.dtype)
        self.stats += torch.tensor([float(target.shape[0]), float(loss_sum)], dtype=torch.float64, device=self.device)

    def sync(self) -> None:
        """Sum the state over processes (call once, before :meth:`compute`)."""
        all_reduce_sum(self.confmat)
        all_reduce_sum(self.stats)

    def per_class(self) -> dict[str, list[float]]:
        return {k: v.tolist() for k, v in scores_from_confmat(self.confmat).items()}

    def compute(self) -> dict[str, float]:
        """Scalars: ``miou``, ``dice`` (mean over classes), ``pixel_acc``, ``mean_acc``, ``fg_miou`` (classes 1..K-1), ``loss`` (per image)."""
        s = scores_from_confmat(self.confmat)
        cm = self.confmat
        n, loss = self.stats.tolist()
        total = float(cm.sum())
        return {
            "miou": float(s["iou"].nanmean()) if total else 0.0,
            "fg_miou": float(s["iou"][1:].nanmean()) if total and self.k > 1 else 0.0,
            "dice": float(s["dice"].nanmean()) if total else 0.0,
            "pixel_acc": float(cm.diag().sum() / total) if total else 0.0,
            "mean_acc": float(s["recall"].nanmean()) if total else 0.0,
            "loss": loss / max(n, 1),
        }
