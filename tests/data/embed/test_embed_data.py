"""Metric-learning data: identity-disjoint splits, m-per-class batches under the global-batch rule, LFW's layout and
its pairs.txt, pooling a dataset's own splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vislab.core.errors import ConfigError, DataError
from vislab.data.embed import EmbedDataConfig, EmbedStream, load_embed_data, m_per_class_batches, read_pairs


def test_val_and_test_identities_are_never_trained_on():
    s = load_embed_data(EmbedDataConfig(data="identities", synth_classes=20, synth_count=200, val_split=0.2, test_split=0.25))
    names = [set(x.classes) for x in (s.train, s.val, s.test)]
    assert [len(n) for n in names] == [11, 4, 5] and not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    for x in (s.train, s.val, s.test):  # each split numbered 0..k-1 on its own
        assert sorted(torch.unique(x.labels).tolist()) == list(range(len(x.classes)))
    closed = load_embed_data(EmbedDataConfig(data="identities", synth_classes=20, synth_count=200, split_by="image"))
    assert closed.train.classes == closed.test.classes and len(closed.train.classes) == 20


def test_m_per_class_batches_are_seeded_and_hold_p_identities_of_m():
    labels = torch.tensor([c for c in range(10) for _ in range(6)] + [10, 10])  # identity 10 has only 2 images
    a = m_per_class_batches(labels, 12, 3, seed=0, epoch=0)
    assert len(a) == len(labels) // 12 and all(len(b) == 12 for b in a)
    for b in a:
        ids, counts = torch.unique(labels[b], return_counts=True)
        assert len(ids) == 4 and counts.tolist() == [3, 3, 3, 3]
    assert all(torch.equal(x, y) for x, y in zip(a, m_per_class_batches(labels, 12, 3, seed=0, epoch=0), strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, m_per_class_batches(labels, 12, 3, seed=0, epoch=1), strict=True))
    seen = torch.cat([torch.cat(m_per_class_batches(labels, 12, 3, seed=0, epoch=e)) for e in range(5)])
    assert torch.unique(seen).numel() == len(labels)  # every image comes up
    with pytest.raises(ConfigError, match="expected a multiple of --m-per-class 3, got 10"):
        m_per_class_batches(labels, 10, 3, 0, 0)
    with pytest.raises(ConfigError, match=r"expected at most 33 \(11 identities x --m-per-class 3\), got 36"):
        m_per_class_batches(labels, 36, 3, 0, 0)


def test_two_processes_share_each_global_batch():
    s = load_embed_data(EmbedDataConfig(data="identities", synth_classes=12, synth_count=120))
    kw = dict(train=True, device=torch.device("cpu"), mean=(0.5,) * 3, std=(0.5,) * 3, m_per_class=4, seed=3)
    one = list(EmbedStream(s.train, 16, **kw).epoch(2))
    parts = [list(EmbedStream(s.train, 16, rank=r, world=2, **kw).epoch(2)) for r in range(2)]
    assert len(one) == len(parts[0]) == len(parts[1])
    for b, b0, b1 in zip(one, *parts, strict=True):
        assert b.n_global == 16 and torch.equal(torch.sort(torch.cat([b0.index, b1.index])).values, torch.sort(b.index).values)


def _lfw(root: Path, people: dict[str, int]) -> Path:
    rng = np.random.default_rng(0)
    for name, n in people.items():
        (root / "lfw" / name).mkdir(parents=True)
        for k in range(1, n + 1):
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / "lfw" / name / f"{name}_{k:04d}.jpg")
    return root


def test_lfw_layout_and_its_pairs_file(tmp_path):
    root = _lfw(tmp_path, {"Ann_A": 3, "Bob_B": 2, "Cy_C": 1, "Di_D": 2, "Ed_E": 2})
    (root / "pairs.txt").write_text("2\t1\nAnn_A\t1\t3\nBob_B\t2\tCy_C\t1\nDi_D\t1\t2\nEd_E\t1\tAnn_A\t2\n")
    a, b, same, folds = read_pairs(root / "pairs.txt", root / "lfw")
    assert folds == 2 and same.tolist() == [True, False, True, False]
    assert a[0].endswith("lfw/Ann_A/Ann_A_0001.jpg") and b[1].endswith("lfw/Cy_C/Cy_C_0001.jpg")
    s = load_embed_data(EmbedDataConfig(data=str(root), min_images=2, val_split=0, test_split=0.4), training=True)
    assert s.pairs == root / "pairs.txt" and s.root == root / "lfw" and "Cy_C" not in s.train.classes + s.test.classes
    with pytest.raises(DataError, match=r"expected at least 2 images of every training identity .* got 1 of 'Cy_C'"):
        load_embed_data(EmbedDataConfig(data=str(root), val_split=0, test_split=0))
    (root / "bad.txt").write_text("2\t1\nAnn_A\t1\t9\n")
    with pytest.raises(DataError, match=r"expected the image '.*Ann_A_0009.jpg' of pair 1, got none \(missing\)"):
        read_pairs(root / "bad.txt", root / "lfw")
    (root / "bad2.txt").write_text("Ann_A 1\n")
    with pytest.raises(DataError, match=r"line 1: expected 'name n1 n2' or 'name1 n1 name2 n2', got 'Ann_A 1'"):
        read_pairs(root / "bad2.txt", root / "lfw")


def test_a_datasets_own_splits_are_pooled_before_identities_are_split(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for c in ("p1", "p2", "p3", "p4"):
            (tmp_path / split / c).mkdir(parents=True)
            for k in range(n):
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / split / c / f"{k}.png")
    s = load_embed_data(EmbedDataConfig(data=str(tmp_path), val_split=0, test_split=0.5))
    assert len(s.train) + len(s.test) == 20 and len(s.train.classes) == 2 and len(s.test.classes) == 2


def test_a_batch_larger_than_the_identities_allow_is_reduced_with_a_warning():
    s = load_embed_data(EmbedDataConfig(data="identities", synth_classes=20, synth_count=200))  # 13 training identities
    kw = dict(train=True, device=torch.device("cpu"), mean=(0.5,) * 3, std=(0.5,) * 3, m_per_class=4)
    with pytest.warns(UserWarning, match="--batch-size 64 is more than the 13 training identities x --m-per-class 4 allow; using 52"):
        stream = EmbedStream(s.train, 64, **kw)
    assert stream.batch_size == 52 and all(len(b) == 52 for b in stream.epoch(0))
    with pytest.raises(ConfigError, match="expected room for 2 identities x --m-per-class 4, got 1 training identities"):
        EmbedStream(s.train.subset(torch.nonzero(s.train.labels == 0)[:, 0]), 8, **kw)


def test_lfws_dev_pairs_files_with_a_one_number_header(tmp_path):
    root = _lfw(tmp_path, {"Ann_A": 2, "Bob_B": 1})
    (root / "pairsDevTrain.txt").write_text("1\nAnn_A\t1\t2\nAnn_A\t1\tBob_B\t1\n")
    a, b, same, folds = read_pairs(root / "pairsDevTrain.txt", root / "lfw")
    assert same.tolist() == [True, False] and folds == 2  # 10 folds asked, as many as there are pairs
