"""How good and how varied generated images are, measured on feature vectors: Fréchet distance (FID), kernel
distance (KID), improved precision and recall, Inception Score and a class histogram check for mode collapse.

The caller extracts the features (and, for the Inception Score, class probabilities) with whatever network it
likes; this module never sees an image, so it needs no weights and works for any feature extractor. The numbers
follow the reference implementations: FID as pytorch-fid / torchmetrics (unbiased covariances), KID as
Binkowski et al. 2018 in torch-fidelity / torchmetrics (unbiased MMD^2, cubic polynomial kernel, mean and
population std over random subsets), precision / recall as Kynkäänniemi et al. 2019 (k-NN balls around samples).

The state of :class:`GenerativeMetrics` is the features themselves: :meth:`GenerativeMetrics.sync` gathers them
from every process, so the numbers do not depend on how many processes evaluated.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> real = torch.randn(400, 8, generator=g)
    >>> fid(real, real) < 1e-6, fid(real, real + 1.0) > 7.0
    (True, True)
    >>> precision_recall(real, real)
    (1.0, 1.0)
"""

from __future__ import annotations

import torch
from torch import Tensor

from vislab.core.dist import all_gather_list
from vislab.core.errors import DataError


def _check(where: str, real: Tensor, fake: Tensor) -> None:
    """Raise :class:`DataError` unless both sides are ``(N, D)`` with N >= 2 and one D."""
    for side, f in (("real", real), ("fake", fake)):
        if f.ndim != 2 or len(f) < 2:
            raise DataError(f"{where}: expected at least 2 {side} feature vectors (N, D), got shape {tuple(f.shape)}")
    if real.shape[1] != fake.shape[1]:
        raise DataError(f"{where}: expected real and fake features of one dimension, got {real.shape[1]} and {fake.shape[1]}")


def feature_stats(f: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` (divided by N - 1) of features ``(N, D)``, in float64."""
    f = f.double()
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / (len(f) - 1)


def _psd_sqrt(s: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues below 0 are rounding: clamped)."""
    w, v = torch.linalg.eigh((s + s.T) / 2)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(s1) + Tr(s2) - 2 Tr(sqrt(s1 s2)), the Fréchet distance of two Gaussians."""
    mu1, sigma1, mu2, sigma2 = (t.double() for t in (mu1, sigma1, mu2, sigma2))
    # Tr sqrt(s1 s2) = Tr sqrt(r s2 r) with r = sqrt(s1): s1 s2 is not symmetric (its eig is ill-conditioned and
    # can turn complex), r s2 r is symmetric PSD, so eigvalsh is stable and its clamped roots stay finite even
    # for singular covariances (N < D), where scipy's sqrtm needs pytorch-fid's eps * I fallback.
    r = _psd_sqrt(sigma1)
    tr_covmean = torch.linalg.eigvalsh(r @ sigma2 @ r).clamp_min(0).sqrt().sum()
    diff = mu1 - mu2
    return float(diff @ diff + sigma1.trace() + sigma2.trace() - 2 * tr_covmean)


def fid(real_feats: Tensor, fake_feats: Tensor) -> float:
    """Fréchet distance between the Gaussians fitted to real and fake features ``(N, D)`` / ``(M, D)``."""
    _check("fid", real_feats, fake_feats)
    return frechet_distance(*feature_stats(real_feats), *feature_stats(fake_feats))


def _poly_mmd(x: Tensor, y: Tensor, degree: int, gamma: float, coef0: float) -> Tensor:
    """Unbiased MMD^2 of equal-size samples with the kernel (gamma x.y + coef0)^degree."""
    def k(a: Tensor, b: Tensor) -> Tensor:
        return (gamma * a @ b.T + coef0) ** degree

    m = len(x)
    kxx, kyy = k(x, x), k(y, y)
    off_diag = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return off_diag - 2 * k(x, y).mean()


def kid(real_feats: Tensor, fake_feats: Tensor, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
        gamma: float | None = None, coef0: float = 1.0, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: mean and (population) std of the unbiased polynomial MMD^2 over ``subsets``
    random subsets of min(subset_size, N, M) samples per side, drawn without replacement (seeded)."""
    _check("kid", real_feats, fake_feats)
    x, y = real_feats.double(), fake_feats.double()
    m = min(subset_size, len(x), len(y))
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    g = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        ix, iy = torch.randperm(len(x), generator=g)[:m], torch.randperm(len(y), generator=g)[:m]
        scores.append(_poly_mmd(x[ix.to(x.device)], y[iy.to(y.device)], degree, gamma, coef0))
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(unbiased=False))


def _knn_radii(f: Tensor, k: int, batch: int) -> Tensor:
    """Distance of every row of ``f`` to its k-th nearest other row (itself, at distance 0, is skipped)."""
    return torch.cat([torch.cdist(f[i:i + batch], f).topk(k + 1, largest=False).values[:, k] for i in range(0, len(f), batch)])


def _inside(queries: Tensor, centres: Tensor, radii: Tensor, batch: int) -> Tensor:
    """Whether each query lies in at least one ball (centre, radius)."""
    return torch.cat([(torch.cdist(queries[i:i + batch], centres) <= radii).any(1) for i in range(0, len(queries), batch)])


def precision_recall(real_feats: Tensor, fake_feats: Tensor, k: int = 3, batch: int = 4096) -> tuple[float, float]:
    """Improved precision (share of fake samples inside the real k-NN manifold) and recall (share of real samples
    inside the fake one) of Kynkäänniemi et al. 2019; distances in row batches of ``batch``."""
    _check("precision_recall", real_feats, fake_feats)
    real, fake = real_feats.double(), fake_feats.double()
    k_real, k_fake = min(k, len(real) - 1), min(k, len(fake) - 1)
    precision = _inside(fake, real, _knn_radii(real, k_real, batch), batch)
    recall = _inside(real, fake, _knn_radii(fake, k_fake, batch), batch)
    return float(precision.double().mean()), float(recall.double().mean())


def inception_score(probs: Tensor, splits: int = 1) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) of class probabilities ``(N, K)``: mean and population std over ``splits``
    near-equal consecutive parts (p(y) is each part's mean)."""
    scores = []
    for p in torch.tensor_split(probs.double(), splits):
        kl = torch.special.xlogy(p, p) - torch.special.xlogy(p, p.mean(0, keepdim=True))
        scores.append(kl.sum(1).mean().exp())
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(unbiased=False))


def class_stats(probs: Tensor, min_share: float = 0.01) -> dict[str, float]:
    """Mode-collapse check on class probabilities ``(N, K)``: mean max probability, entropy of the histogram of
    predicted classes over log K (1: uniform, 0: one class), share of classes predicted for at least
    max(1, min_share * N) samples."""
    n, n_cls = probs.shape
    conf, pred = probs.double().max(1)
    hist = torch.bincount(pred, minlength=n_cls).double()
    share = hist / n
    entropy = -torch.special.xlogy(share, share).sum() / torch.log(torch.tensor(float(n_cls))) if n_cls > 1 else torch.tensor(0.0)
    coverage = (hist >= max(1.0, min_share * n)).double().mean()
    return {"mean_confidence": float(conf.mean()), "class_entropy": float(entropy), "class_coverage": float(coverage)}


class GenerativeMetrics:
    """Real and fake features (and optionally the classifier's probabilities of the fakes), gathered over
    processes; :meth:`compute` gives FID, KID, precision / recall and, with probabilities, IS and class stats."""

    def __init__(self, kid_subsets: int = 100, kid_subset_size: int = 1000, k: int = 3):
        self.kid_subsets, self.kid_subset_size, self.k = kid_subsets, kid_subset_size, k
        self.real: list[Tensor] = []
        self.fake: list[Tensor] = []
        self.probs: list[Tensor] = []

    def update_real(self, feats: Tensor) -> None:
        self.real.append(feats.detach().float().cpu())

    def update_fake(self, feats: Tensor, probs: Tensor | None = None) -> None:
        self.fake.append(feats.detach().float().cpu())
        if probs is not None:
            self.probs.append(probs.detach().float().cpu())

    def sync(self) -> None:
        self.real, self.fake, self.probs = all_gather_list(self.real), all_gather_list(self.fake), all_gather_list(self.probs)

    def compute(self) -> dict[str, float]:
        real = torch.cat(self.real) if self.real else torch.empty(0, 0)
        fake = torch.cat(self.fake) if self.fake else torch.empty(0, 0)
        _check("GenerativeMetrics", real, fake)
        k_mean, k_std = kid(real, fake, self.kid_subsets, self.kid_subset_size)
        precision, recall = precision_recall(real, fake, self.k)
        out = {"fid": fid(real, fake), "kid": k_mean, "kid_std": k_std, "precision": precision, "recall": recall,
               "n_real": float(len(real)), "n_fake": float(len(fake))}
        if self.probs:
            probs = torch.cat(self.probs)
            if len(probs) != len(fake):
                raise DataError(f"GenerativeMetrics: expected class probabilities for all {len(fake)} fake samples, got {len(probs)}")
            out["is"], out["is_std"] = inception_score(probs)
            out.update(class_stats(probs))
        return out
