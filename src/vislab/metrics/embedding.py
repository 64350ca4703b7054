"""Metrics for embeddings: retrieval (Precision@1, Recall@k, MAP@R), pair verification (LFW 10-fold accuracy,
ROC AUC, EER, TAR@FAR) and clustering (NMI, ARI).

Retrieval follows pytorch-metric-learning's ``AccuracyCalculator`` (the tests check parity): when no reference set
is given, every query is searched against the others, and a query whose label has no other reference item is left
out of every number (counted in ``n_skipped``). Neighbours are found chunk by chunk with ``topk``, so the full
query x reference distance matrix is never held; ties are broken by the lower reference index.

Distances: ``"cosine"`` is ``1 - cosine similarity``, ``"euclidean"`` the L2 distance. A pair is predicted "same"
when its distance is at most the threshold.

Example:
    >>> emb = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]])
    >>> labels = torch.tensor([0, 0, 1, 1, 2])
    >>> out = retrieval_metrics(emb, labels, ks=(1,))
    >>> out["p_at_1"], out["map_at_r"], out["n_queries"], out["n_skipped"]
    (1.0, 1.0, 4, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import metrics as skm

from vislab.core.dist import all_gather_list
from vislab.core.errors import ConfigError, DataError, did_you_mean

DISTANCES = ("cosine", "euclidean")
ArrayLike = torch.Tensor | np.ndarray | Sequence[float]


def _check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise ConfigError(f"distance: expected one of {', '.join(map(repr, DISTANCES))}, got {distance!r}"
                          f"{did_you_mean(str(distance), DISTANCES)}")
    return distance


def _embeddings(x: Any, where: str) -> torch.Tensor:
    """``x`` as a floating (N, D) tensor with finite values (float32 at least)."""
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise DataError(f"{where}: expected a (N, D) tensor, got shape {tuple(t.shape)}")
    t = t.to(torch.promote_types(t.dtype, torch.float32) if t.is_floating_point() else torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise DataError(f"{where}: expected finite values, got NaN or inf")
    return t


def _labels(y: Any, n: int | None, where: str) -> torch.Tensor:
    """``y`` as an int64 ``(n,)`` tensor (any length when ``n`` is None)."""
    t = torch.as_tensor(y)
    if t.ndim != 1 or (n is not None and len(t) != n):
        raise DataError(f"{where}: expected a ({'N' if n is None else n},) tensor of labels, got shape {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise DataError(f"{where}: expected integer labels, got {t.dtype}")
    return t.long()


def _numpy(x: ArrayLike, dtype: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype).reshape(-1)


def _distance_matrix(a: torch.Tensor, b: torch.Tensor, distance: str) -> torch.Tensor:
    """(len(a), len(b)) distances; for ``"cosine"`` ``a`` and ``b`` are already L2-normalised."""
    if distance == "cosine":
        return (a @ b.T).neg_().add_(1.0)
    return torch.cdist(a, b)


def pairwise_distance(a: torch.Tensor, b: torch.Tensor, distance: str = "cosine") -> torch.Tensor:
    """Distances between every row of ``a (N, D)`` and every row of ``b (M, D)``: a ``(N, M)`` tensor.

    Example:
        >>> pairwise_distance(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        tensor([[0., 1.]])
        >>> pairwise_distance(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]), "euclidean")
        tensor([[5.]])
    """
    _check_distance(distance)
    a, b = _embeddings(a, "pairwise_distance a"), _embeddings(b, "pairwise_distance b")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"pairwise_distance: expected a and b of the same width, got {a.shape[1]} and {b.shape[1]}")
    if distance == "cosine":
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    return _distance_matrix(a, b, distance)


def pair_distance(a: torch.Tensor, b: torch.Tensor, distance: str = "cosine") -> torch.Tensor:
    """Distance between row ``i`` of ``a`` and row ``i`` of ``b`` (both ``(N, D)``): a ``(N,)`` tensor.

    Example:
        >>> pair_distance(torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 1.0], [3.0, 4.0]]), "euclidean")
        tensor([1.4142, 5.0000])
    """
    _check_distance(distance)
    a, b = _embeddings(a, "pair_distance a"), _embeddings(b, "pair_distance b")
    if a.shape != b.shape:
        raise DataError(f"pair_distance: expected a and b of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if distance == "cosine":
        return 1.0 - (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1)
    return (a - b).norm(dim=1)


def _smallest_k(d: torch.Tensor, k: int) -> torch.Tensor:
    """Column indices of the ``k`` smallest entries of each row of ``d``, ordered by (value, index).

    ``topk`` alone is neither stable nor deterministic on ties; rows whose k-th value is tied with an entry left
    out (the (k+1)-th smallest equals the k-th) are redone with a stable sort, and every row's k picks are put in
    (value, index) order.
    """
    vals, idx = d.topk(min(k + 1, d.shape[1]), dim=1, largest=False, sorted=True)
    tied = (vals[:, k] == vals[:, k - 1]).nonzero().squeeze(1) if vals.shape[1] > k else idx[:0, 0]
    vals, idx = vals[:, :k], idx[:, :k]
    if len(tied):
        sv, si = d[tied].sort(dim=1, stable=True)
        vals[tied], idx[tied] = sv[:, :k], si[:, :k]
    order = idx.argsort(dim=1)
    idx, vals = idx.gather(1, order), vals.gather(1, order)
    order = vals.argsort(dim=1, stable=True)
    return idx.gather(1, order)


def retrieval_metrics(query: torch.Tensor, query_labels: torch.Tensor, ref: torch.Tensor | None = None,
                      ref_labels: torch.Tensor | None = None, ks: Sequence[int] = (1, 5, 10), distance: str = "cosine",
                      chunk: int = 4096) -> dict[str, float]:
    """Precision@1, Recall@k and MAP@R of ``query`` searched in ``ref`` (in ``query`` itself, each query left out,
    when ``ref`` is None).

    * ``p_at_1``: the fraction of queries whose nearest reference has the query's label.
    * ``r_at_{k}``: the fraction of queries with at least one same-label reference among the k nearest (Recall@k of
      the metric-learning literature; k is capped at the number of references).
    * ``map_at_r``: mean average precision at R (Musgrave et al. 2020), R the number of references with the query's
      label: ``AP@R = 1/R * sum_{i<=R} P(i) * rel(i)`` (pytorch-metric-learning's ``mean_average_precision_at_r``).
    * ``n_queries`` / ``n_skipped``: queries counted / left out because no other reference has their label.

    The numbers are NaN when every query is skipped. Computed on the device of ``query``, ``chunk`` queries at a time.
    """
    _check_distance(distance)
    query = _embeddings(query, "retrieval_metrics query")
    query_labels = _labels(query_labels, len(query), "retrieval_metrics query_labels").to(query.device)
    same_source = ref is None
    if same_source:
        if ref_labels is not None:
            raise ConfigError("retrieval_metrics ref_labels: expected None when ref is None, got a tensor")
        ref, ref_labels = query, query_labels
    else:
        if ref_labels is None:
            raise ConfigError("retrieval_metrics ref_labels: expected labels when ref is given, got None")
        ref = _embeddings(ref, "retrieval_metrics ref").to(query.device, query.dtype)
        ref_labels = _labels(ref_labels, len(ref), "retrieval_metrics ref_labels").to(query.device)
        if ref.shape[1] != query.shape[1]:
            raise DataError(f"retrieval_metrics ref: expected width {query.shape[1]} like query, got {ref.shape[1]}")
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise ConfigError(f"retrieval_metrics ks: expected positive integers, got {ks}")
    if chunk < 1:
        raise ConfigError(f"retrieval_metrics chunk: expected a positive integer, got {chunk}")
    if distance == "cosine":
        query = F.normalize(query, dim=1)
        ref = query if same_source else F.normalize(ref, dim=1)

    # R per query: references with the query's label, the query itself not counted when searching its own set
    uniq, counts = ref_labels.unique(return_counts=True)
    if len(uniq):
        pos = torch.searchsorted(uniq, query_labels).clamp_max(len(uniq) - 1)
        r_all = torch.where(uniq[pos] == query_labels, counts[pos], 0) - int(same_source)
    else:  # no references at all
        r_all = torch.zeros_like(query_labels)
    keep = (r_all > 0).nonzero().squeeze(1)
    n_avail = len(ref) - int(same_source)
    out: dict[str, float] = {}
    if len(keep) == 0:
        out = {"p_at_1": float("nan"), **{f"r_at_{k}": float("nan") for k in ks}, "map_at_r": float("nan")}
        return {**out, "n_queries": 0, "n_skipped": len(query)}

    kk = (1, *ks)  # Precision@1 = Recall@1, counted first
    hits_at = torch.zeros(len(kk), dtype=torch.float64)
    ap_sum = 0.0
    for s in range(0, len(keep), chunk):
        rows = keep[s : s + chunk]
        q, ql, r = query[rows], query_labels[rows], r_all[rows]
        d = _distance_matrix(q, ref, distance)
        if same_source:
            d[torch.arange(len(rows), device=d.device), rows] = float("inf")  # leave each query out
        k_max = min(max(max(kk), int(r.max())), n_avail)
        hit = ref_labels[_smallest_k(d, k_max)] == ql[:, None]  # (c, k_max)
        del d
        hits_at += torch.stack([hit[:, : min(k, k_max)].any(1).sum() for k in kk]).double().cpu()
        rank = torch.arange(1, k_max + 1, device=hit.device)
        rel = hit & (rank[None] <= r[:, None])
        precision = rel.cumsum(1).double() / rank
        ap_sum += float(((precision * rel).sum(1) / r).sum())
    n = len(keep)
    out["p_at_1"] = float(hits_at[0] / n)
    out.update({f"r_at_{k}": float(h / n) for k, h in zip(kk[1:], hits_at[1:])})
    out["map_at_r"] = ap_sum / n
    return {**out, "n_queries": n, "n_skipped": len(query) - n}


def sample_pairs(labels: torch.Tensor, n_pairs: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded, balanced set of index pairs ``(i, j, issame)`` for verification.

    ``min(n_pairs // 2, matched pairs in the data, mismatched pairs in the data)`` distinct matched pairs
    (same label, ``i != j``) and as many distinct mismatched pairs, each drawn uniformly from all such unordered
    pairs, returned with ``i < j`` and alternating matched / mismatched, so that contiguous folds are balanced.

    Example:
        >>> labels = torch.tensor([0, 0, 1, 1, 2])
        >>> i, j, same = sample_pairs(labels, 4)
        >>> same.tolist(), bool((labels[i] == labels[j]).eq(same).all())
        ([True, False, True, False], True)
    """
    y = _labels(labels, None, "sample_pairs labels").cpu().numpy()
    if n_pairs < 0:
        raise ConfigError(f"sample_pairs n_pairs: expected a non-negative integer, got {n_pairs}")
    order = np.argsort(y, kind="stable")  # items grouped by label
    _, start, size = np.unique(y[order], return_index=True, return_counts=True)
    n = len(y)
    n_pos_all = int((size * (size - 1) // 2).sum())
    if n_pos_all == 0:
        raise DataError("sample_pairs: expected at least one identity with 2 or more images, got none")
    n_neg_all = n * (n - 1) // 2 - n_pos_all
    m = min(n_pairs // 2, n_pos_all, n_neg_all)
    rng = np.random.default_rng(seed)
    group_of = np.repeat(np.arange(len(size)), size)  # group of each sorted position
    rank_in = np.arange(n) - start[group_of]  # position inside its group

    def draw_pos(k: int) -> tuple[np.ndarray, np.ndarray]:
        # first item weighted by how many partners it has (size - 1), partner uniform among the others of the group
        w = (size[group_of] - 1).astype(np.float64)
        a = rng.choice(n, size=k, p=w / w.sum())
        r = rng.integers(0, size[group_of[a]] - 1)
        r = r + (r >= rank_in[a])
        return a, start[group_of[a]] + r

    def draw_neg(k: int) -> tuple[np.ndarray, np.ndarray]:
        # first item weighted by (n - size), partner uniform among the items outside its group
        w = (n - size[group_of]).astype(np.float64)
        a = rng.choice(n, size=k, p=w / w.sum())
        g = group_of[a]
        r = rng.integers(0, n - size[g])
        return a, r + np.where(r >= start[g], size[g], 0)

    def all_pairs(same: bool) -> tuple[np.ndarray, np.ndarray]:
        """Every matched (or mismatched) pair ``a < b``; only used when there are at most 2m of them."""
        end = (start + size)[group_of]
        first = np.arange(n) + 1 if same else end  # a's partners: first, first + 1, ... (end of a's group or n)
        cnt = (end if same else n) - first
        a = np.repeat(np.arange(n), cnt)
        return a, np.repeat(first - np.cumsum(cnt) + cnt, cnt) + np.arange(int(cnt.sum()))

    def distinct(draw: Callable[[int], tuple[np.ndarray, np.ndarray]], total: int, same: bool) -> np.ndarray:
        """(m, 2) sorted positions of m distinct unordered pairs."""
        if total <= 2 * m:
            a, b = all_pairs(same)
            pick = rng.choice(len(a), size=m, replace=False)
            return np.stack([a[pick], b[pick]], 1)
        got = np.empty((0, 2), dtype=np.int64)
        while len(got) < m:  # each draw is new with probability > 1/2
            a, b = draw(2 * (m - len(got)) + 8)
            p = np.stack([np.minimum(a, b), np.maximum(a, b)], 1)
            both = np.concatenate([got, p])
            _, first = np.unique(both, axis=0, return_index=True)
            got = both[np.sort(first)][:m]
        return got

    pos = distinct(draw_pos, n_pos_all, True) if m else np.empty((0, 2), dtype=np.int64)
    neg = distinct(draw_neg, n_neg_all, False) if m else np.empty((0, 2), dtype=np.int64)
    pairs = order[np.stack([pos, neg], 1).reshape(-1, 2)]  # alternate matched / mismatched; back to item indices
    pairs.sort(axis=1)
    issame = np.tile([True, False], m)
    return torch.from_numpy(pairs[:, 0].copy()), torch.from_numpy(pairs[:, 1].copy()), torch.from_numpy(issame)


def _pairs_input(dist: ArrayLike, issame: ArrayLike, where: str) -> tuple[np.ndarray, np.ndarray]:
    d, s = _numpy(dist, np.float64), _numpy(issame, bool)
    if len(d) != len(s):
        raise DataError(f"{where}: expected dist and issame of the same length, got {len(d)} and {len(s)}")
    if len(d) == 0:
        raise DataError(f"{where}: expected at least one pair, got none")
    if not np.isfinite(d).all():
        raise DataError(f"{where}: expected finite distances, got NaN or inf")
    return d, s


def best_threshold(dist: ArrayLike, issame: ArrayLike) -> tuple[float, float]:
    """The distance threshold of highest accuracy (``same = dist <= threshold``) and that accuracy.

    The candidates are the midpoints between consecutive sorted unique distances plus the two extremes: the largest
    float below the smallest distance (all pairs "different") and the largest distance (all "same"). On equal
    accuracy the smallest threshold wins.

    Example:
        >>> t, acc = best_threshold([0.1, 0.2, 0.7, 0.9], [True, True, False, True])
        >>> round(t, 4), acc
        (0.45, 0.75)
    """
    d, s = _pairs_input(dist, issame, "best_threshold")
    u = np.unique(d)
    cand = np.concatenate([[np.nextafter(u[0], -np.inf)], (u[:-1] + u[1:]) / 2, [u[-1]]])
    pos, neg = np.sort(d[s]), np.sort(d[~s])
    correct = np.searchsorted(pos, cand, side="right") + len(neg) - np.searchsorted(neg, cand, side="right")
    best = int(np.argmax(correct))
    return float(cand[best]), float(correct[best] / len(d))


def verification_10fold(dist: ArrayLike, issame: ArrayLike, folds: int = 10) -> dict[str, float]:
    """LFW-protocol verification accuracy: the pairs, in order, split into ``folds`` contiguous folds
    (``np.array_split``); each fold is scored with the :func:`best_threshold` of the other folds.

    Returns ``verif_acc`` (mean over folds), ``verif_acc_std`` (population std, as the LFW / InsightFace code) and
    ``threshold`` (mean of the chosen thresholds).

    Example:
        >>> out = verification_10fold([0.1, 0.9, 0.2, 0.8, 0.3, 0.75, 0.15, 0.85], [1, 0, 1, 0, 1, 0, 1, 0], folds=4)
        >>> out["verif_acc"], round(out["threshold"], 4)
        (1.0, 0.5188)
    """
    d, s = _pairs_input(dist, issame, "verification_10fold")
    if not 2 <= folds <= len(d):
        raise ConfigError(f"verification_10fold folds: expected 2 to {len(d)} (the number of pairs), got {folds}")
    accs, thresholds = [], []
    for test in np.array_split(np.arange(len(d)), folds):
        train = np.ones(len(d), dtype=bool)
        train[test] = False
        t, _ = best_threshold(d[train], s[train])
        accs.append(float(np.mean((d[test] <= t) == s[test])))
        thresholds.append(t)
    return {"verif_acc": float(np.mean(accs)), "verif_acc_std": float(np.std(accs)), "threshold": float(np.mean(thresholds))}


def roc_metrics(dist: ArrayLike, issame: ArrayLike, far: float = 1e-3) -> dict[str, Any]:
    """ROC of the pairs scored by ``-dist`` (scikit-learn's ``roc_curve``).

    Returns ``roc_auc``; ``eer``, the equal error rate (the point of the piecewise-linear ROC where
    ``FPR = 1 - TPR``); ``tar_at_far``, the largest TPR over the thresholds with ``FPR <= far``, and ``far``; and
    ``curve = {"fpr": [...], "tpr": [...]}`` for plotting (collinear points dropped).

    Example:
        >>> out = roc_metrics([0.1, 0.4, 0.35, 0.8], [True, True, False, False], far=0.5)
        >>> out["roc_auc"], out["eer"], out["tar_at_far"]
        (0.75, 0.5, 1.0)
    """
    d, s = _pairs_input(dist, issame, "roc_metrics")
    n_pos = int(s.sum())
    if n_pos == 0 or n_pos == len(s):
        raise DataError(f"roc_metrics: expected both matched and mismatched pairs, got {n_pos} matched and "
                        f"{len(s) - n_pos} mismatched")
    fpr, tpr, _ = skm.roc_curve(s, -d, drop_intermediate=False)
    gap = (1.0 - tpr) - fpr  # non-increasing along the curve: 1 at (0, 0), -1 at (1, 1)
    i = int(np.argmax(gap <= 0))
    frac = gap[i - 1] / (gap[i - 1] - gap[i]) if gap[i] < 0 else 1.0
    eer = float(fpr[i - 1] + frac * (fpr[i] - fpr[i - 1]))
    plot_fpr, plot_tpr, _ = skm.roc_curve(s, -d)
    return {"roc_auc": float(skm.auc(fpr, tpr)), "eer": eer, "tar_at_far": float(tpr[fpr <= far].max()), "far": float(far),
            "curve": {"fpr": plot_fpr.tolist(), "tpr": plot_tpr.tolist()}}


def clustering_metrics(labels_true: ArrayLike, labels_pred: ArrayLike) -> dict[str, float]:
    """Normalised mutual information and adjusted Rand index (scikit-learn).

    Example:
        >>> clustering_metrics([0, 0, 1, 1], [1, 1, 0, 0])
        {'nmi': 1.0, 'ari': 1.0}
    """
    t, p = _numpy(labels_true, np.int64), _numpy(labels_pred, np.int64)
    if len(t) != len(p):
        raise DataError(f"clustering_metrics: expected labels_true and labels_pred of the same length, got {len(t)} and {len(p)}")
    return {"nmi": float(skm.normalized_mutual_info_score(t, p)), "ari": float(skm.adjusted_rand_score(t, p))}


class EmbeddingMetrics:
    """Retrieval and verification metrics of a whole evaluation set, gathered batch by batch.

    :meth:`update` keeps CPU float32 copies; :meth:`sync` gathers every process's items (ordered by ``index`` when
    given, duplicates of an index dropped, so padded distributed samplers give the one-process result);
    :meth:`compute` returns :func:`retrieval_metrics` plus ``verif_acc`` / ``verif_acc_std`` / ``verif_threshold``
    (:func:`verification_10fold`), ``roc_auc`` and ``eer`` on :func:`sample_pairs` (left out when the labels have no
    matched or no mismatched pair), and ``loss`` (mean per item) when ``loss_sum`` was given.

    Example:
        >>> m = EmbeddingMetrics(ks=(1,), n_pairs=8)
        >>> m.update(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), torch.tensor([0, 0, 1, 1]))
        >>> m.sync()
        >>> out = m.compute()
        >>> out["p_at_1"], out["verif_acc"], out["roc_auc"]
        (1.0, 1.0, 1.0)
    """

    def __init__(self, distance: str = "cosine", ks: Sequence[int] = (1, 5, 10), n_pairs: int = 2000, seed: int = 0):
        self.distance = _check_distance(distance)
        self.ks = tuple(ks)
        self.n_pairs = n_pairs
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self._batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []  # (embeddings, labels, index)
        self._losses: list[tuple[float, int]] = []  # (summed loss, items) of the batches that gave one
        self._synced = False

    @torch.no_grad()
    def update(self, emb: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None = None,
               loss_sum: float | torch.Tensor | None = None) -> None:
        """Add a batch: ``emb (B, D)``, ``labels (B,)``, optionally the items' dataset ``index (B,)`` and the batch's
        summed loss."""
        e = _embeddings(emb.detach(), "EmbeddingMetrics.update emb").to("cpu", torch.float32)
        y = _labels(labels, len(e), "EmbeddingMetrics.update labels").cpu()
        i = None if index is None else _labels(index, len(e), "EmbeddingMetrics.update index").cpu()
        if self._batches and (i is None) != (self._batches[0][2] is None):
            raise DataError("EmbeddingMetrics.update index: expected an index for every batch or for none, got a mix")
        if self._batches and e.shape[1] != self._batches[0][0].shape[1]:
            raise DataError(f"EmbeddingMetrics.update emb: expected width {self._batches[0][0].shape[1]}, got {e.shape[1]}")
        self._batches.append((e.clone(), y.clone(), None if i is None else i.clone()))
        if loss_sum is not None:
            self._losses.append((float(loss_sum), len(e)))
        self._synced = False

    def sync(self) -> None:
        """Gather every process's items into each process (call once, before :meth:`compute`); a no-op in a single
        process."""
        if self._synced:
            return
        parts = all_gather_list([(self._batches, self._losses)])  # one entry per process, in rank order
        batches = [b for part, _ in parts for b in part]
        self._losses = [x for _, losses in parts for x in losses]
        if batches:
            if len({b[2] is None for b in batches}) > 1:
                raise DataError("EmbeddingMetrics.sync index: expected an index on every process or on none, got a mix")
            e, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
            i = None
            if batches[0][2] is not None:
                i = torch.cat([b[2] for b in batches if b[2] is not None])
                order = i.argsort(stable=True)
                i, e, y = i[order], e[order], y[order]
                first = torch.ones(len(i), dtype=torch.bool)
                first[1:] = i[1:] != i[:-1]  # an item sent twice (a padded distributed sampler) counts once
                i, e, y = i[first], e[first], y[first]
            batches = [(e, y, i)]
        self._batches = batches
        self._synced = True

    @property
    def embeddings(self) -> torch.Tensor:
        """All items' embeddings, ``(N, D)`` float32 (this process's until :meth:`sync`)."""
        return torch.cat([b[0] for b in self._batches]) if self._batches else torch.empty(0, 0)

    @property
    def labels(self) -> torch.Tensor:
        """All items' labels, ``(N,)`` int64 (this process's until :meth:`sync`)."""
        return torch.cat([b[1] for b in self._batches]) if self._batches else torch.empty(0, dtype=torch.long)

    def compute(self) -> dict[str, float]:
        """Scalar metrics (see the class docstring)."""
        if not self._batches:
            raise DataError("EmbeddingMetrics.compute: expected at least one update, got none")
        emb, y = self.embeddings, self.labels
        out: dict[str, float] = dict(retrieval_metrics(emb, y, ks=self.ks, distance=self.distance))
        if bool((y.unique(return_counts=True)[1] > 1).any()):
            i, j, same = sample_pairs(y, self.n_pairs, self.seed)
            if len(same) >= 2:  # there are matched and mismatched pairs
                d = pair_distance(emb[i], emb[j], self.distance)
                v = verification_10fold(d, same, folds=min(10, len(same)))
                roc = roc_metrics(d, same)
                out.update(verif_acc=v["verif_acc"], verif_acc_std=v["verif_acc_std"], verif_threshold=v["threshold"],
                           roc_auc=roc["roc_auc"], eer=roc["eer"])
        if self._losses:
            out["loss"] = sum(v for v, _ in self._losses) / max(sum(n for _, n in self._losses), 1)
        return out
