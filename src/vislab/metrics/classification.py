"""Classification metrics from a confusion matrix and a top-k hit count.

The state is a handful of tensors that add up across batches and processes, so the numbers are
exact for any number of processes (no averaging of averages). The formulas are checked against
torchmetrics and scikit-learn in the tests.

Example:
    >>> m = ClassificationMetrics(3)
    >>> m.update(torch.tensor([[2., 1, 0], [0, 3, 1], [0, 1, 2]]), torch.tensor([0, 1, 1]))
    >>> round(m.compute()["acc"], 4)
    0.6667
"""

from __future__ import annotations

import torch

from vislab.core.dist import all_reduce_sum


class ClassificationMetrics:
    """Accuracy, top-k accuracy, loss, per-class precision / recall / F1, confusion matrix."""

    def __init__(self, num_classes: int, topk: int = 5, device: torch.device | str = "cpu"):
        self.k = num_classes
        self.topk = min(topk, num_classes)
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        self.confmat = torch.zeros(self.k, self.k, dtype=torch.float64, device=self.device)  # rows: true, cols: predicted
        self.stats = torch.zeros(3, dtype=torch.float64, device=self.device)  # [n, topk hits, loss sum]

    @torch.no_grad()
    def update(self, logits: torch.Tensor, target: torch.Tensor, loss_sum: float | torch.Tensor = 0.0) -> None:
        """Add a batch: ``logits (B, K)``, ``target (B,)``, the batch's summed loss."""
        logits = logits.float()
        pred = logits.argmax(1)
        idx = target.to(self.device) * self.k + pred.to(self.device)
        self.confmat += torch.bincount(idx, minlength=self.k * self.k).view(self.k, self.k).to(self.confmat.dtype)
        top = logits.topk(self.topk, dim=1).indices
        hits = (top == target[:, None]).any(1).sum()
        self.stats += torch.stack([torch.tensor(float(len(target)), device=self.device), hits.to(self.device, torch.float64),
                                   torch.as_tensor(loss_sum, dtype=torch.float64, device=self.device)])

    def sync(self) -> None:
        """Sum the state over processes (call once, before :meth:`compute`)."""
        all_reduce_sum(self.confmat)
        all_reduce_sum(self.stats)

    def compute(self) -> dict[str, float]:
        """Scalar metrics: ``acc``, ``top{k}``, ``loss``, ``macro_f1``, ``balanced_acc``."""
        n, hits, loss = self.stats.tolist()
        cm = self.confmat
        tp = cm.diag()
        recall = tp / cm.sum(1).clamp_min(1)
        precision = tp / cm.sum(0).clamp_min(1)
        f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
        present = cm.sum(1) > 0
        out = {
            "acc": float(tp.sum() / max(n, 1)),
            f"top{self.topk}": hits / max(n, 1),
            "loss": loss / max(n, 1),
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "balanced_acc": float(recall[present].mean()) if present.any() else 0.0,
        }
        return out

    def per_class(self) -> dict[str, list[float]]:
        """Per-class precision, recall, F1 and support (lists indexed by class)."""
        cm = self.confmat
        tp = cm.diag()
        recall = tp / cm.sum(1).clamp_min(1)
        precision = tp / cm.sum(0).clamp_min(1)
        f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
        return {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(), "support": cm.sum(1).tolist()}
