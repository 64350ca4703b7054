"""Generative metrics on feature vectors: FID equals pytorch-fid's scipy formula, KID equals a numpy unbiased MMD and
torchmetrics' KernelInceptionDistance, precision / recall equal a brute-force k-NN computation and behave on known
cases, IS and class stats give the known answers, and GenerativeMetrics equals the functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from vislab.core.errors import DataError
from vislab.metrics.generative import (GenerativeMetrics, class_stats, feature_stats, fid, frechet_distance,
                                       inception_score, kid, precision_recall)


def gaussian(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """n samples of N(shift + m, A A^T) with m, A drawn from ``seed`` (so two seeds: two distributions)."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(d, generator=g) * 0.5 + shift
    a = torch.randn(d, d, generator=g) / d ** 0.5 + torch.eye(d)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ a.double().T + mean.double()


def fid_scipy(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-6) -> float:
    """pytorch-fid's calculate_frechet_distance, written out (scipy sqrtm, eps * I when the product is singular)."""
    x, y = x.double().numpy(), y.double().numpy()
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def mmd_numpy(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> float:
    """Unbiased MMD^2 with the polynomial kernel, double loops over the definition."""
    gamma = 1.0 / x.shape[1]
    k = lambda a, b: (gamma * a @ b + coef0) ** degree  # noqa: E731
    m = len(x)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (sxx + syy) / (m * (m - 1)) - 2 * sxy / m ** 2


def pr_bruteforce(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Improved precision / recall from the definition: sorted full distance rows, element k skips the self-distance."""
    def covered(queries, centres):
        d_cc = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1))
        radii = np.sort(d_cc, axis=1)[:, k]
        d_qc = np.sqrt(((queries[:, None] - centres[None]) ** 2).sum(-1))
        return float(np.mean([(d_qc[i] <= radii).any() for i in range(len(queries))]))
    return covered(fake, real), covered(real, fake)


# ---------------------------------------------------------------- FID

def test_fid_equals_pytorch_fid_formula():
    x, y = gaussian(600, 32, seed=1), gaussian(600, 32, seed=2)
    ours, ref = fid(x, y), fid_scipy(x, y)
    assert ref > 1.0
    assert ours == pytest.approx(ref, abs=1e-4)
    assert frechet_distance(*feature_stats(x), *feature_stats(y)) == ours


def test_feature_stats_unbiased_covariance():
    x = gaussian(50, 5, seed=3)
    mu, sigma = feature_stats(x.float())
    assert mu.dtype == sigma.dtype == torch.float64
    np.testing.assert_allclose(sigma.numpy(), np.cov(x.float().double().numpy(), rowvar=False), atol=1e-12)


def test_fid_singular_covariance_is_finite_and_agrees():
    # N < D: both covariances have rank <= 39 of 64; scipy's sqrtm of the singular product is less exact (and
    # pytorch-fid's eps * I fallback may kick in on other data), so only 1e-5 relative is asked (seen: ~1e-8).
    x, y = gaussian(40, 64, seed=4), gaussian(40, 64, seed=5)
    ours, ref = fid(x, y), fid_scipy(x, y)
    assert np.isfinite(ours) and np.isfinite(ref)
    assert ours == pytest.approx(ref, rel=1e-5)


def test_fid_identical_sets_is_zero():
    x = gaussian(600, 32, seed=6)
    assert abs(fid(x, x)) < 1e-6
    assert abs(fid(x[:30], x[:30])) < 1e-6  # singular covariance too


def test_fid_grows_with_mean_shift_and_is_symmetric():
    x, y = gaussian(500, 16, seed=7), gaussian(500, 16, seed=8)
    values = [fid(x, y + s) for s in (0.0, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert fid(x, y) == pytest.approx(fid(y, x), abs=1e-8)


# ---------------------------------------------------------------- KID

def test_kid_equals_numpy_unbiased_mmd():
    x, y = gaussian(40, 6, seed=9), gaussian(40, 6, seed=10, shift=0.3)
    mean, std = kid(x, y, subsets=1, subset_size=40)
    assert mean == pytest.approx(mmd_numpy(x.numpy(), y.numpy()), abs=1e-10)
    assert std == 0.0


def test_kid_near_zero_for_one_distribution_and_positive_for_shifted():
    x, y = gaussian(400, 16, seed=11), gaussian(400, 16, seed=11 + 1000)
    same = torch.cat([x, y])[torch.randperm(800, generator=torch.Generator().manual_seed(0))]
    k_same, _ = kid(same[:400], same[400:], subsets=20, subset_size=200)
    k_shift, std_shift = kid(x, x + 1.0, subsets=20, subset_size=200)
    assert abs(k_same) < 0.05
    assert k_shift > 1.0 and k_shift > 10 * std_shift


def test_kid_seeded_and_subset_size_capped():
    x, y = gaussian(100, 8, seed=12), gaussian(80, 8, seed=13)
    assert kid(x, y, subsets=5, subset_size=50, seed=3) == kid(x, y, subsets=5, subset_size=50, seed=3)
    assert kid(x, y, subsets=5, subset_size=50, seed=3) != kid(x, y, subsets=5, subset_size=50, seed=4)
    assert np.isfinite(kid(x, y, subsets=2, subset_size=10_000)[0])  # capped at min(N, M) = 80


def test_kid_equals_torchmetrics():
    tm_kid = pytest.importorskip("torchmetrics.image.kid")
    x, y = gaussian(120, 10, seed=14), gaussian(120, 10, seed=15, shift=0.2)
    # a custom feature module skips Inception and `normalize`; with subset_size = N every subset is a permutation
    # of all samples, so torchmetrics' unseeded randperm cannot change the number.
    with pytest.warns(UserWarning):
        metric = tm_kid.KernelInceptionDistance(feature=torch.nn.Identity(), subsets=3, subset_size=120)
    metric.update(x, real=True)
    metric.update(y, real=False)
    ref_mean, ref_std = metric.compute()
    mean, std = kid(x, y, subsets=3, subset_size=120)
    assert mean == pytest.approx(float(ref_mean), abs=1e-5)
    assert std == pytest.approx(float(ref_std), abs=1e-5)


# ---------------------------------------------------------------- precision / recall

def test_precision_recall_identical_and_far():
    x = gaussian(300, 8, seed=16)
    assert precision_recall(x, x) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)


def test_precision_recall_half_the_modes():
    # real: two far clusters in 2-D; fake: fresh samples of the first only. A fresh sample of the same
    # distribution misses every k-NN ball now and then (tails), hence 0.95 rather than 1; recall counts only the
    # covered cluster's real points (half), less its own tail misses.
    g = torch.Generator().manual_seed(17)
    centres = torch.tensor([[-10.0, -10.0], [10.0, 10.0]])
    real = centres[torch.arange(1000) % 2] + torch.randn(1000, 2, generator=g)
    fake = centres[0] + torch.randn(500, 2, generator=g)
    precision, recall = precision_recall(real, fake, k=3)
    assert precision >= 0.95
    assert 0.45 <= recall <= 0.5


def test_precision_recall_equals_bruteforce():
    x, y = gaussian(70, 5, seed=18), gaussian(50, 5, seed=19, shift=0.5)
    for k in (1, 3, 5):
        expected = pr_bruteforce(x.numpy(), y.numpy(), k)
        assert precision_recall(x, y, k=k, batch=16) == expected
        assert precision_recall(x, y, k=k) == expected  # batch size changes nothing


# ---------------------------------------------------------------- IS / class stats

def test_inception_score_known_values():
    k = 10
    confident = torch.eye(k).repeat(20, 1) * 0.99 + 0.01 / k  # rows sum to 1, p(y) uniform
    mean, std = inception_score(confident)
    assert mean == pytest.approx(k, rel=0.1) and std == 0.0
    assert inception_score(torch.eye(k).repeat(20, 1), splits=4)[0] == pytest.approx(k, abs=1e-9)
    one_class = torch.zeros(200, k)
    one_class[:, 3] = 1.0
    assert inception_score(one_class, splits=2) == pytest.approx((1.0, 0.0), abs=1e-9)


def test_class_stats_known_answers():
    probs = torch.tensor([[0.9, 0.1, 0.0, 0.0], [0.6, 0.4, 0.0, 0.0], [0.2, 0.8, 0.0, 0.0], [0.1, 0.7, 0.2, 0.0]])
    s = class_stats(probs, min_share=0.3)  # predicted 0, 0, 1, 1: classes 0 and 1 twice (>= 1.2 samples)
    assert s["mean_confidence"] == pytest.approx((0.9 + 0.6 + 0.8 + 0.7) / 4)
    assert s["class_entropy"] == pytest.approx(np.log(2) / np.log(4))
    assert s["class_coverage"] == 0.5
    assert class_stats(torch.eye(5))["class_entropy"] == pytest.approx(1.0)
    assert class_stats(torch.eye(5))["class_coverage"] == 1.0
    collapsed = class_stats(torch.eye(5)[[2] * 7])
    assert collapsed["class_entropy"] == 0.0 and collapsed["class_coverage"] == 0.2


# ---------------------------------------------------------------- GenerativeMetrics

def test_generative_metrics_equals_functions():
    real, fake = gaussian(150, 12, seed=20).float(), gaussian(120, 12, seed=21).float()
    probs = torch.softmax(gaussian(120, 6, seed=22).float() * 3, 1)
    m = GenerativeMetrics(kid_subsets=10, kid_subset_size=50, k=3)
    for i in range(0, 150, 40):
        m.update_real(real[i:i + 40])
    for i in range(0, 120, 50):
        m.update_fake(fake[i:i + 50], probs[i:i + 50])
    m.sync()  # identity in one process
    r = m.compute()
    assert r["fid"] == fid(real, fake)
    assert (r["kid"], r["kid_std"]) == kid(real, fake, subsets=10, subset_size=50)
    assert (r["precision"], r["recall"]) == precision_recall(real, fake, k=3)
    assert (r["is"], r["is_std"]) == inception_score(probs)
    assert {k: r[k] for k in ("mean_confidence", "class_entropy", "class_coverage")} == class_stats(probs)
    assert (r["n_real"], r["n_fake"]) == (150, 120)
    m2 = GenerativeMetrics(kid_subsets=10, kid_subset_size=50)
    m2.update_real(real)
    m2.update_fake(fake)
    assert set(m2.compute()) == {"fid", "kid", "kid_std", "precision", "recall", "n_real", "n_fake"}


def test_generative_metrics_errors():
    m = GenerativeMetrics()
    m.update_real(torch.randn(10, 8))
    m.update_fake(torch.randn(1, 8))
    with pytest.raises(DataError, match=r"expected at least 2 fake feature vectors \(N, D\), got shape \(1, 8\)"):
        m.compute()
    with pytest.raises(DataError, match="expected at least 2 real"):
        GenerativeMetrics().compute()
    m = GenerativeMetrics()
    m.update_real(torch.randn(10, 8))
    m.update_fake(torch.randn(10, 4))
    with pytest.raises(DataError, match="expected real and fake features of one dimension, got 8 and 4"):
        m.compute()
    with pytest.raises(DataError, match="fid: expected real and fake features of one dimension"):
        fid(torch.randn(10, 8), torch.randn(10, 4))
    m = GenerativeMetrics()
    m.update_real(torch.randn(10, 8))
    m.update_fake(torch.randn(5, 8), torch.full((5, 3), 1 / 3))
    m.update_fake(torch.randn(5, 8))
    with pytest.raises(DataError, match="class probabilities for all 10 fake samples, got 5"):
        m.compute()
