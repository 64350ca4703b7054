"""Embedding metrics: retrieval equals pytorch-metric-learning's AccuracyCalculator, verification / ROC / clustering
equal scikit-learn and brute-force numpy computations, and EmbeddingMetrics gathers like one process."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

import vislab.metrics.embedding as E
from vislab.core.errors import ConfigError, DataError
from vislab.metrics.embedding import (EmbeddingMetrics, best_threshold, clustering_metrics, pair_distance, pairwise_distance,
                                      retrieval_metrics, roc_metrics, sample_pairs, verification_10fold)


def clustered(n_classes: int = 25, dim: int = 16, seed: int = 0, spread: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian clusters of 1 to 14 items (some singletons), shuffled."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(n_classes, dim, generator=g) * 1.5
    sizes = torch.randint(1, 15, (n_classes,), generator=g)
    sizes[:3] = 1  # lone labels
    y = torch.repeat_interleave(torch.arange(n_classes), sizes)
    x = centers[y] + spread * torch.randn(len(y), dim, generator=g)
    perm = torch.randperm(len(y), generator=g)
    return x[perm], y[perm]


def bruteforce_retrieval(q, ql, r, rl, ks, distance, same_source):
    """Full distance matrix in float64, stable argsort: Recall@k and MAP@R straight from the definitions."""
    q, r, ql, rl = q.double().numpy(), r.double().numpy(), ql.numpy(), rl.numpy()
    if distance == "cosine":
        d = skm.pairwise.cosine_distances(q, r)
    else:
        d = skm.pairwise.euclidean_distances(q, r)
    if same_source:
        np.fill_diagonal(d, np.inf)
    out = {k: [] for k in ks}
    aps = []
    for a in range(len(q)):
        rel = rl[np.argsort(d[a], kind="stable")] == ql[a]
        if same_source:
            rel = rel[:-1]  # the query itself, sorted last
        R = int(rel.sum())
        if R == 0:
            continue
        for k in ks:
            out[k].append(rel[:k].any())
        top = rel[:R]
        aps.append(np.sum(np.cumsum(top) / np.arange(1, R + 1) * top) / R)
    return {k: float(np.mean(v)) for k, v in out.items()}, float(np.mean(aps)), len(aps)


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
@pytest.mark.parametrize("same_source", [True, False])
def test_retrieval_matches_pml(distance, same_source):
    from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    x, y = clustered(seed=1 if same_source else 2, spread=2.0)
    if same_source:
        q, ql, r, rl = x, y, None, None
    else:  # separate query / reference sets; some query labels have no reference (left out)
        q, ql, r, rl = x[:90], y[:90], x[90:], y[90:]
        assert len(set(ql.tolist()) - set(rl.tolist())) > 0
    pml_dist = CosineSimilarity() if distance == "cosine" else LpDistance(normalize_embeddings=False)
    calc = AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r"), k="max_bin_count",
                              knn_func=CustomKNN(pml_dist), device=torch.device("cpu"))
    pml = calc.get_accuracy(q, ql) if same_source else calc.get_accuracy(q, ql, r, rl)
    ours = retrieval_metrics(q, ql, r, rl, ks=(1, 5, 10), distance=distance)
    assert abs(ours["p_at_1"] - pml["precision_at_1"]) < 1e-9
    assert abs(ours["r_at_1"] - pml["precision_at_1"]) < 1e-9
    assert abs(ours["map_at_r"] - pml["mean_average_precision_at_r"]) < 1e-9
    assert 0.1 < ours["map_at_r"] < 0.5 and ours["p_at_1"] < 0.6  # a hard case, where the order of neighbours matters

    recall, map_r, n = bruteforce_retrieval(q, ql, x if same_source else r, y if same_source else rl, (1, 5, 10), distance,
                                            same_source)
    assert ours["n_queries"] == n and ours["n_queries"] + ours["n_skipped"] == len(q) and ours["n_skipped"] > 0
    for k in (1, 5, 10):
        assert ours[f"r_at_{k}"] == pytest.approx(recall[k], abs=1e-12)
    assert ours["map_at_r"] == pytest.approx(map_r, abs=1e-9)
    assert ours["r_at_1"] < ours["r_at_5"] < ours["r_at_10"]


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_chunked_equals_unchunked(distance):
    x, y = clustered(seed=3)
    one = retrieval_metrics(x, y, ks=(1, 3, 200), distance=distance, chunk=100_000)
    for chunk in (7, 64):
        assert retrieval_metrics(x, y, ks=(1, 3, 200), distance=distance, chunk=chunk) == pytest.approx(one, abs=1e-12)
    sep = retrieval_metrics(x[:50], y[:50], x[50:], y[50:], distance=distance, chunk=100_000)
    assert retrieval_metrics(x[:50], y[:50], x[50:], y[50:], distance=distance, chunk=9) == pytest.approx(sep, abs=1e-12)


def test_ties_break_by_lower_index():
    v = torch.tensor([1.0, 0.0])
    ref = torch.stack([v, v, v, v, v, torch.tensor([0.0, 1.0])])
    ref_labels = torch.tensor([1, 1, 1, 0, 0, 0])
    out = retrieval_metrics(v[None], torch.tensor([0]), ref, ref_labels, ks=(1, 3, 4))
    assert (out["r_at_1"], out["r_at_3"], out["r_at_4"]) == (0.0, 0.0, 1.0)
    # R = 3: the first three (indices 0, 1, 2) are misses, so AP@R = 0
    assert out["map_at_r"] == 0.0
    flipped = retrieval_metrics(v[None], torch.tensor([1]), ref, ref_labels, ks=(1, 3))
    assert (flipped["r_at_1"], flipped["map_at_r"]) == (1.0, 1.0)


def test_all_lone_queries_are_nan():
    out = retrieval_metrics(torch.randn(4, 3), torch.arange(4), ks=(1,))
    assert out["n_queries"] == 0 and out["n_skipped"] == 4 and np.isnan(out["p_at_1"]) and np.isnan(out["map_at_r"])


def test_distances_match_sklearn():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(9, 5, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(pairwise_distance(a, b).numpy(), skm.pairwise.cosine_distances(a.numpy(), b.numpy()), atol=1e-12)
    np.testing.assert_allclose(pairwise_distance(a, b, "euclidean").numpy(), skm.pairwise.euclidean_distances(a.numpy(), b.numpy()),
                               atol=1e-9)
    for distance in ("cosine", "euclidean"):
        np.testing.assert_allclose(pair_distance(a, b[:7], distance).numpy(), pairwise_distance(a, b[:7], distance).diagonal().numpy(),
                                   atol=1e-9)


def test_unknown_distance_suggests():
    with pytest.raises(ConfigError) as err:
        pairwise_distance(torch.ones(1, 2), torch.ones(1, 2), "cosin")
    assert str(err.value) == "distance: expected one of 'cosine', 'euclidean', got 'cosin' (did you mean 'cosine'?)"
    with pytest.raises(ConfigError):
        EmbeddingMetrics(distance="l2")


def test_sample_pairs_deterministic_balanced_valid():
    _, y = clustered(seed=4)
    i, j, same = sample_pairs(y, 300, seed=5)
    i2, j2, same2 = sample_pairs(y, 300, seed=5)
    assert torch.equal(i, i2) and torch.equal(j, j2) and torch.equal(same, same2)
    i3, _, _ = sample_pairs(y, 300, seed=6)
    assert not torch.equal(i, i3)
    assert len(i) == 300 and int(same.sum()) == 150
    assert torch.equal(same, y[i] == y[j]) and bool((i < j).all())
    assert len({(a, b) for a, b in zip(i.tolist(), j.tolist())}) == 300  # distinct pairs
    assert same[0::2].all() and not same[1::2].any()  # alternating: every contiguous fold is balanced


def test_sample_pairs_fewer_positives_and_singletons():
    y = torch.tensor([0, 0, 1, 1, 1, 2, 3, 4])  # 1 + 3 = 4 matched pairs in all
    i, j, same = sample_pairs(y, 100)
    assert int(same.sum()) == 4 and int((~same).sum()) == 4
    assert {(a, b) for a, b, s in zip(i.tolist(), j.tolist(), same.tolist()) if s} == {(0, 1), (2, 3), (2, 4), (3, 4)}
    y = torch.arange(100_000)
    y[1], y[3] = 0, 2  # 2 matched pairs among 100k items: enumerated per identity, not over all n^2 / 2 pairs
    i, j, same = sample_pairs(y, 10)
    assert {(a, b) for a, b, s in zip(i.tolist(), j.tolist(), same.tolist()) if s} == {(0, 1), (2, 3)} and len(same) == 4
    few = torch.tensor([0, 0, 0, 1])  # 3 matched, 3 mismatched pairs: all of them
    i, j, same = sample_pairs(few, 100)
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert torch.equal(same, few[i] == few[j])
    with pytest.raises(DataError) as err:
        sample_pairs(torch.arange(5), 10)
    assert str(err.value) == "sample_pairs: expected at least one identity with 2 or more images, got none"


def test_sample_pairs_uniform_over_pairs():
    y = torch.tensor([0] * 6 + [1] * 2 + [2] * 3)  # 15 + 1 + 3 = 19 matched pairs
    counts: dict[tuple[int, int], int] = {}
    for seed in range(400):
        i, j, same = sample_pairs(y, 2, seed=seed)
        counts[(int(i[0]), int(j[0]))] = counts.get((int(i[0]), int(j[0])), 0) + 1
    assert len(counts) == 19
    assert max(counts.values()) < 3 * min(counts.values())  # expected 21 each; drawing the label uniformly would give 133 to (6, 7)


def bruteforce_10fold(d, s, folds):
    accs, ths = [], []
    for test in np.array_split(np.arange(len(d)), folds):
        train = np.setdiff1d(np.arange(len(d)), test)
        u = np.unique(d[train])
        cands = [np.nextafter(u[0], -np.inf)] + [(u[k] + u[k + 1]) / 2 for k in range(len(u) - 1)] + [u[-1]]
        best_acc, best_t = -1.0, None
        for t in cands:
            acc = np.mean((d[train] <= t) == s[train])
            if acc > best_acc:
                best_acc, best_t = acc, t
        accs.append(np.mean((d[test] <= best_t) == s[test]))
        ths.append(best_t)
    return np.mean(accs), np.std(accs), np.mean(ths)


def fixed_pairs(n=403, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.random(n) < 0.5
    d = np.round(np.where(s, rng.normal(0.6, 0.25, n), rng.normal(1.0, 0.25, n)), 2)  # rounded: many ties
    return d, s


def test_verification_10fold_equals_bruteforce():
    d, s = fixed_pairs()
    out = verification_10fold(torch.from_numpy(d), torch.from_numpy(s))
    acc, std, th = bruteforce_10fold(d, s, 10)
    assert out["verif_acc"] == pytest.approx(acc, abs=1e-12)
    assert out["verif_acc_std"] == pytest.approx(std, abs=1e-12)
    assert out["threshold"] == pytest.approx(th, abs=1e-12)
    assert 0.7 < out["verif_acc"] < 0.9
    assert verification_10fold(d, s, folds=3)["verif_acc"] == pytest.approx(bruteforce_10fold(d, s, 3)[0], abs=1e-12)
    t, a = best_threshold(d, s)
    assert a == pytest.approx(max(np.mean((d <= c) == s) for c in np.unique(d)), abs=1e-12)
    assert np.mean((d <= t) == s) == pytest.approx(a, abs=1e-12)
    with pytest.raises(ConfigError):
        verification_10fold(d[:5], s[:5])


def test_roc_auc_and_eer():
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq

    d, s = fixed_pairs(seed=1)
    out = roc_metrics(d, s)
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(s, -d), abs=1e-12)
    fpr, tpr, _ = skm.roc_curve(s, -d)
    eer_ref = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)  # the FaceNet / InsightFace recipe
    assert out["eer"] == pytest.approx(eer_ref, abs=1e-9)
    # dense scan of the piecewise-linear curve: the point where FNR = FPR
    fp_, tp_, _ = skm.roc_curve(s, -d, drop_intermediate=False)
    t = np.linspace(0, 1, 2001)[:, None]
    xs = (fp_[:-1] + t * np.diff(fp_)).ravel()
    ys = (tp_[:-1] + t * np.diff(tp_)).ravel()
    best = np.argmin(np.abs(1 - ys - xs))
    assert out["eer"] == pytest.approx(xs[best], abs=1e-3)
    assert 0.1 < out["eer"] < 0.4
    assert len(out["curve"]["fpr"]) == len(out["curve"]["tpr"]) > 2 and out["far"] == 1e-3
    sep = roc_metrics([0.1, 0.2, 0.8, 0.9], [True, True, False, False])
    assert (sep["roc_auc"], sep["eer"], sep["tar_at_far"]) == (1.0, 0.0, 1.0)
    with pytest.raises(DataError):
        roc_metrics([0.1, 0.2], [True, True])


def test_tar_at_far_known():
    neg = np.linspace(1.0, 2.0, 1000)
    pos = np.concatenate([np.full(60, 0.5), np.full(13, (neg[9] + neg[10]) / 2), np.full(27, (neg[10] + neg[11]) / 2)])
    d, s = np.concatenate([pos, neg]), np.concatenate([np.ones(100, bool), np.zeros(1000, bool)])
    # FAR 1e-2 admits 10 of the 1000 impostors: the 60 + 13 genuine pairs below the 11th impostor
    assert roc_metrics(d, s, far=1e-2)["tar_at_far"] == pytest.approx(0.73, abs=1e-12)
    assert roc_metrics(d, s, far=0.0095)["tar_at_far"] == pytest.approx(0.60, abs=1e-12)
    assert roc_metrics(d, s, far=0.011)["tar_at_far"] == pytest.approx(1.0, abs=1e-12)
    assert roc_metrics(d, s, far=0.0)["tar_at_far"] == pytest.approx(0.60, abs=1e-12)


def test_clustering_matches_sklearn():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 6, 300), rng.integers(0, 6, 300)
    p[:200] = t[:200]
    out = clustering_metrics(torch.from_numpy(t), p)
    assert out["nmi"] == pytest.approx(skm.normalized_mutual_info_score(t, p), abs=1e-12)
    assert out["ari"] == pytest.approx(skm.adjusted_rand_score(t, p), abs=1e-12)
    assert 0.2 < out["ari"] < 0.9


def expected_compute(x, y, distance="cosine", n_pairs=400, seed=0, ks=(1, 5)):
    out = retrieval_metrics(x, y, ks=ks, distance=distance)
    i, j, same = sample_pairs(y, n_pairs, seed)
    d = pair_distance(x[i], x[j], distance)
    v, roc = verification_10fold(d, same), roc_metrics(d, same)
    out.update(verif_acc=v["verif_acc"], verif_acc_std=v["verif_acc_std"], verif_threshold=v["threshold"],
               roc_auc=roc["roc_auc"], eer=roc["eer"])
    return out


def test_embedding_metrics_single_process_equals_functions():
    x, y = clustered(seed=7)
    m = EmbeddingMetrics(distance="euclidean", ks=(1, 5), n_pairs=400, seed=3)
    for s in range(0, len(y), 32):
        m.update(x[s : s + 32].double(), y[s : s + 32], loss_sum=float(s))
    m.sync()  # no process group: nothing changes
    assert torch.equal(m.embeddings, x) and torch.equal(m.labels, y) and m.embeddings.dtype == torch.float32
    out = m.compute()
    exp = expected_compute(x, y, "euclidean", 400, 3)
    assert out.pop("loss") == pytest.approx(sum(range(0, len(y), 32)) / len(y))
    assert out == pytest.approx(exp, abs=1e-12)


def test_embedding_metrics_two_processes(monkeypatch):
    """Two ranks with a DistributedSampler-like split (interleaved, the last index repeated as padding)."""
    x, y = clustered(seed=8)
    n = len(y)
    idx = torch.arange(n)
    shards = [idx[0::2], idx[1::2]]
    if len(shards[0]) != len(shards[1]):
        shards[1] = torch.cat([shards[1], shards[1][:1]])
    ranks = [EmbeddingMetrics(ks=(1, 5), n_pairs=400), EmbeddingMetrics(ks=(1, 5), n_pairs=400)]
    for m, shard in zip(ranks, shards):
        for s in range(0, len(shard), 16):
            b = shard[s : s + 16]
            m.update(x[b], y[b], index=b, loss_sum=float(len(b)))
    sent = {}

    def capture(items):  # rank 1's side of the collective: remember what it sends
        sent[1] = items
        return items

    monkeypatch.setattr(E, "all_gather_list", capture)
    ranks[1].sync()
    monkeypatch.setattr(E, "all_gather_list", lambda items: [*items, *sent[1]])  # rank 0 receives both, in rank order
    ranks[0].sync()
    assert torch.equal(ranks[0].embeddings, x) and torch.equal(ranks[0].labels, y)
    out = ranks[0].compute()
    assert out.pop("loss") == pytest.approx(1.0)
    assert out == pytest.approx(expected_compute(x, y), abs=1e-12)


def test_embedding_metrics_skips_verification_without_pairs():
    m = EmbeddingMetrics(ks=(1,))
    m.update(torch.randn(5, 3), torch.arange(5))
    out = m.compute()
    assert out["n_queries"] == 0 and "verif_acc" not in out and "roc_auc" not in out and "loss" not in out
    with pytest.raises(DataError):
        m.update(torch.randn(2, 3), torch.arange(2), index=torch.arange(2))  # index for some batches only
