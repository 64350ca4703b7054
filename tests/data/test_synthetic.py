"""Bundled and generated datasets: scikit-learn digits and the synthetic shapes."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from vislab.core.errors import DataError
from vislab.data.classify.source import DATASETS, DataConfig, load_dataset
from vislab.data.synthetic import SHAPE_CLASSES, generate_shapes, masks_to_boxes


def test_digits_source():
    tr = DATASETS.build("digits", cfg=DataConfig(), root=None).train
    assert tr.in_memory and tr.images.shape == (1797, 1, 32, 32) and tr.images.dtype == torch.uint8
    assert tr.channels == 1 and tr.size == (32, 32) and tr.augment == "light" and tr.classes == [str(i) for i in range(10)]
    assert int(tr.images.min()) == 0 and int(tr.images.max()) >= 240  # 0..16 scaled to 0..255, then upscaled
    assert DATASETS.build("digits", cfg=DataConfig(img_size=8), root=None).train.images.max() == 255


def test_load_dataset_digits_end_to_end():
    s = load_dataset(DataConfig(data="digits", val_split=0.1, test_split=0.2, split_seed=3))
    counts = np.bincount(s.train.labels.numpy(), minlength=10) + np.bincount(s.val.labels.numpy(), minlength=10)
    counts += np.bincount(s.test.labels.numpy(), minlength=10)
    assert counts.sum() == 1797
    assert len(s.val) == sum(math.floor(c * 0.1 + 0.5) for c in counts)
    assert len(s.test) == sum(math.floor(c * 0.2 + 0.5) for c in counts)
    assert len(s.train) + len(s.val) + len(s.test) == 1797 and s.test.images.shape[1:] == (1, 32, 32)


def test_shapes_classes_and_errors():
    assert len(SHAPE_CLASSES) >= 8 and SHAPE_CLASSES[:4] == ("circle", "square", "triangle", "star")
    with pytest.raises(DataError, match="did you mean 'circle'"):
        generate_shapes(2, ["circel"])
    with pytest.raises(DataError, match=f"expected between 1 and {len(SHAPE_CLASSES)} classes, got 99"):
        generate_shapes(2, 99)
    with pytest.raises(DataError, match="expected a scale range"):
        generate_shapes(2, 4, scale=(0.5, 0.9))
    empty = generate_shapes(0, 2, 8)
    assert empty["images"].shape == (0, 3, 8, 8) and empty["labels"].shape == (0,)


def test_shapes_deterministic():
    a = generate_shapes(40, 5, 17, seed=7)
    b = generate_shapes(40, 5, 17, seed=7)
    c = generate_shapes(40, 5, 17, seed=8)
    assert a["images"].tobytes() == b["images"].tobytes() and np.array_equal(a["masks"], b["masks"])
    assert a["images"].tobytes() != c["images"].tobytes()
    assert a["images"].shape == (40, 3, 17, 17) and a["images"].dtype == np.uint8
    assert np.bincount(a["labels"]).tolist() == [8] * 5  # balanced
    assert a["images"].std() > 20  # not blank


def check_boxes(boxes: np.ndarray, masks: np.ndarray) -> None:
    """Every mask pixel lies in its box and the box is tight."""
    assert masks.dtype == bool and boxes.dtype == np.float32 and boxes.shape == (len(masks), 4)
    for box, m in zip(boxes, masks, strict=True):
        rows, cols = np.nonzero(m)
        assert len(rows) > 0
        assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


def test_shapes_boxes_and_masks():
    d = generate_shapes(64, 8, 24, seed=1)
    assert d["masks"].shape == (64, 24, 24) and d["boxes"].shape == (64, 4)
    check_boxes(d["boxes"], d["masks"])
    assert ((d["boxes"] >= 0) & (d["boxes"] <= 24)).all()
    assert masks_to_boxes(np.zeros((1, 3, 3), bool)).tolist() == [[0, 0, 0, 0]]


def test_shapes_rotation():
    sq = generate_shapes(8, ["square"], 32, seed=0, rotation=0, supersample=1)
    b = sq["boxes"]
    assert (sq["masks"].sum((1, 2)) == (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).all()  # axis-aligned: fills its box
    turned = generate_shapes(8, ["square"], 32, seed=0, rotation=180, supersample=1)
    b = turned["boxes"]
    assert (turned["masks"].sum((1, 2)) < (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).any()


def test_shapes_several_objects():
    d = generate_shapes(20, 4, 40, seed=2, objects_per_image=(1, 3))
    assert len(d["labels"]) == len(d["boxes"]) == len(d["masks"]) == 20
    assert max(len(lab) for lab in d["labels"]) > 1
    for lab, boxes, masks in zip(d["labels"], d["boxes"], d["masks"], strict=True):
        assert lab.dtype == np.int64 and masks.shape == (len(lab), 40, 40)
        check_boxes(boxes, masks)
        assert (masks.sum(0) <= 1).all()  # visible parts do not overlap
    fixed = generate_shapes(5, 4, 32, seed=2, objects_per_image=2)
    assert all(len(lab) <= 2 for lab in fixed["labels"])


def test_shapes_is_fast():
    t = time.perf_counter()
    generate_shapes(2000, 4, 32, seed=0)
    assert time.perf_counter() - t < 2.0


def test_shapes_dataset():
    s = load_dataset(DataConfig(data="shapes", synth_count=210, synth_classes=3, img_size=24, val_split=0.1))
    assert (len(s.train), len(s.val), len(s.test)) == (189, 21, 42)
    assert s.train.classes == ["circle", "square", "triangle"] and s.train.images.shape[1:] == (3, 24, 24)
    assert s.train.augment == "standard" and s.train.channels == 3
    train = {bytes(x.numpy().tobytes()) for x in s.train.images}
    assert not any(bytes(x.numpy().tobytes()) in train for x in s.test.images)  # an independent test set
