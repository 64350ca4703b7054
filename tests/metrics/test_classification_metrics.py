"""Parity: vislab's classification metrics equal scikit-learn's and torchmetrics' on the same predictions."""

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from vislab.metrics.classification import ClassificationMetrics


@pytest.fixture
def preds():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(203, 7, generator=g)
    target = torch.randint(0, 7, (203,), generator=g)
    logits[target == 3, 3] += 2.0  # make one class well predicted
    return logits, target


def test_matches_sklearn(preds):
    logits, target = preds
    m = ClassificationMetrics(7)
    for chunk in range(0, 203, 50):  # batched accumulation = one shot
        m.update(logits[chunk : chunk + 50], target[chunk : chunk + 50])
    y, p = target.numpy(), logits.argmax(1).numpy()
    out = m.compute()
    assert out["acc"] == pytest.approx(skm.accuracy_score(y, p), abs=1e-12)
    assert out["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro"), abs=1e-12)
    assert out["balanced_acc"] == pytest.approx(skm.balanced_accuracy_score(y, p), abs=1e-12)
    assert out["top5"] == pytest.approx(skm.top_k_accuracy_score(y, logits.numpy(), k=5, labels=range(7)), abs=1e-12)
    np.testing.assert_array_equal(m.confmat.numpy(), skm.confusion_matrix(y, p, labels=range(7)))
    per = m.per_class()
    np.testing.assert_allclose(per["precision"], skm.precision_score(y, p, average=None, zero_division=0), atol=1e-12)
    np.testing.assert_allclose(per["recall"], skm.recall_score(y, p, average=None, zero_division=0), atol=1e-12)


def test_matches_torchmetrics(preds):
    from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix

    logits, target = preds
    m = ClassificationMetrics(7)
    m.update(logits, target)
    assert m.compute()["acc"] == pytest.approx(float(multiclass_accuracy(logits, target, 7, average="micro")), abs=1e-6)
    assert m.compute()["top5"] == pytest.approx(float(multiclass_accuracy(logits, target, 7, average="micro", top_k=5)), abs=1e-6)
    np.testing.assert_array_equal(m.confmat.numpy(), multiclass_confusion_matrix(logits, target, 7).numpy())


def test_loss_is_mean_over_samples():
    m = ClassificationMetrics(2)
    m.update(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), loss_sum=3.0)
    m.update(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([1, 1]), loss_sum=1.0)
    assert m.compute()["loss"] == pytest.approx(4.0 / 3)
