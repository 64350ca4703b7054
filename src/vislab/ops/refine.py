"""Refining per-pixel class probabilities ``(K, H, W)`` with the image: a dense CRF (mean-field, in torch) and
superpixel voting (SLIC) -- the classic post-processing of semantic segmentation.

Example:
    >>> import numpy as np
    >>> img = np.zeros((12, 10, 3), np.uint8); img[:, 5:] = 255
    >>> p = np.full((2, 12, 10), 0.5, np.float32); p[0, :, :5] += 0.1; p[1, :, :5] -= 0.1  # weak left/right evidence
    >>> q = crf_refine(img, p / p.sum(0))
    >>> q.shape, bool((q.argmax(0)[:, :5] == 0).all())
    ((2, 12, 10), True)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["crf_refine", "slic_refine"]


def crf_refine(image: np.ndarray, probs: np.ndarray, iters: int = 5, theta_alpha: float = 6.0, theta_beta: float = 20.0,
               theta_gamma: float = 2.0, w_bilateral: float = 4.0, w_gaussian: float = 2.0, radius: int = 4) -> np.ndarray:
    """Mean-field inference of a dense CRF (Krähenbühl & Koltun, 2011), with the pairwise kernels cut at ``radius``.

    Unary: ``-log probs``; pairwise: Potts compatibility with an appearance kernel
    ``w_b exp(-|p_i-p_j|²/2θα² - |I_i-I_j|²/2θβ²)`` and a smoothness kernel ``w_g exp(-|p_i-p_j|²/2θγ²)``.
    Message passing is done exactly inside a ``(2r+1)²`` window (unfold), which keeps it in plain torch.

    Args:
        image: ``(H, W, 3)`` uint8.
        probs: ``(K, H, W)`` class probabilities.

    Returns:
        ``(K, H, W)`` refined probabilities.
    """
    img = torch.from_numpy(np.array(image, dtype=np.float32)).float().permute(2, 0, 1)[None]  # (1, 3, H, W)
    q = torch.from_numpy(np.array(probs, dtype=np.float32))[None]  # (1, K, H, W)
    unary = -q.clamp_min(1e-8).log()
    k, h, w = probs.shape
    d = 2 * radius + 1
    dy, dx = torch.meshgrid(torch.arange(-radius, radius + 1.0), torch.arange(-radius, radius + 1.0), indexing="ij")
    pos2 = (dy ** 2 + dx ** 2).reshape(1, d * d, 1)  # (1, D, 1)
    col = F.unfold(F.pad(img, [radius] * 4, mode="replicate"), d).view(1, 3, d * d, h * w)  # (1, 3, D, HW)
    diff2 = ((col - img.view(1, 3, 1, h * w)) ** 2).sum(1)  # (1, D, HW)
    kern = w_bilateral * torch.exp(-pos2 / (2 * theta_alpha**2) - diff2 / (2 * theta_beta**2)) + w_gaussian * torch.exp(-pos2 / (2 * theta_gamma**2))
    kern[:, d * d // 2] = 0  # no message to itself
    valid = F.unfold(F.pad(torch.ones(1, 1, h, w), [radius] * 4), d).view(1, d * d, h * w)
    kern = kern * valid
    for _ in range(iters):
        nb = F.unfold(F.pad(q, [radius] * 4), d).view(1, k, d * d, h * w)  # (1, K, D, HW)
        msg = (nb * kern[:, None]).sum(2).view(1, k, h, w)  # sum_j k(i, j) Q_j(l)
        pair = msg.sum(1, keepdim=True) - msg  # Potts: penalty from neighbours with another label
        q = (-unary - pair).softmax(1)
    return q[0].numpy()


def slic_refine(image: np.ndarray, probs: np.ndarray, n_segments: int = 0, compactness: float = 10.0) -> np.ndarray:
    """Superpixel voting: every SLIC superpixel takes the class of its mean probability.

    Args:
        image: ``(H, W, 3)`` uint8.
        probs: ``(K, H, W)``.
        n_segments: superpixels (0: one per ~30 pixels).

    Returns:
        ``(K, H, W)`` probabilities, constant inside each superpixel.
    """
    from skimage.segmentation import slic

    k, h, w = probs.shape
    seg = slic(image, n_segments=n_segments or max(4, h * w // 30), compactness=compactness, start_label=0)
    flat = seg.reshape(-1)
    n = int(flat.max()) + 1
    sums = np.zeros((n, k))
    np.add.at(sums, flat, probs.reshape(k, -1).T)
    mean = sums / np.maximum(np.bincount(flat, minlength=n), 1)[:, None]
    return mean[flat].T.reshape(k, h, w)
