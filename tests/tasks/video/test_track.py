"""IoUTracker: ids follow moving boxes, are never reused, and boxes of different classes never swap ids."""

from __future__ import annotations

import numpy as np
import pytest

from vislab.core.errors import ConfigError, ShapeError
from vislab.tasks.video.track import IoUTracker, box_iou


def _box(x: float, y: float, s: float = 10.0) -> list[float]:
    return [x, y, x + s, y + s]


def test_two_moving_boxes_keep_their_ids():
    t = IoUTracker()
    seen = []
    for k in range(12):  # A moves right 2 px/frame, B moves down-left 1.5 px/frame; given in changing order
        a, b = _box(5 + 2 * k, 20), _box(80 - 1.5 * k, 5 + 1.5 * k)
        boxes = np.array([a, b] if k % 2 == 0 else [b, a])
        ids = t.update(boxes, np.array([0.9, 0.8]), np.array([0, 0]))
        seen.append(ids.tolist() if k % 2 == 0 else ids[::-1].tolist())
    assert all(s == [1, 2] for s in seen), seen
    assert t.count == 2


def test_a_gap_up_to_max_missed_keeps_the_id_and_a_longer_one_ends_the_track():
    t = IoUTracker(max_missed=2)
    assert t.update([_box(0, 0)], labels=[0]).tolist() == [1]
    t.update(np.zeros((0, 4)))
    t.update(np.zeros((0, 4)))  # missed twice: still alive
    assert t.update([_box(1, 0)], labels=[0]).tolist() == [1]
    for _ in range(3):  # missed three times: ended
        t.update([])
    assert t.update([_box(1, 0)], labels=[0]).tolist() == [2]  # same place, new id: 1 is never reused


def test_a_disappearing_box_id_is_not_reused():
    t = IoUTracker(max_missed=1)
    t.update([_box(0, 0), _box(50, 50)], labels=[0, 0])
    for k in range(1, 6):  # the second box is gone; the first keeps moving
        ids = t.update([_box(k, 0)], labels=[0])
        assert ids.tolist() == [1]
    new = t.update([_box(5, 0), _box(50, 50), _box(90, 90)], labels=[0, 0, 0])
    assert new.tolist() == [1, 3, 4] and t.count == 4


def test_crossing_boxes_of_two_classes_keep_their_ids():
    """A (class 0) moves right and B (class 1) left along the same line: they overlap fully mid-way, where an
    IoU matcher that ignored classes could swap them."""
    t = IoUTracker()
    ids_a, ids_b = set(), set()
    for k in range(11):
        a, b = _box(10 + 4 * k, 30), _box(50 - 4 * k, 30)
        ids = t.update(np.array([b, a]), np.array([0.7, 0.9]), np.array([1, 0]))
        ids_b.add(int(ids[0]))
        ids_a.add(int(ids[1]))
    assert ids_a == {2} and ids_b == {1}, (ids_a, ids_b)
    assert t.count == 2


def test_min_hits_and_hungarian_assignment():
    t = IoUTracker(min_hits=2)
    assert t.update([_box(0, 0)]).tolist() == [-1]  # tentative
    assert t.update([_box(1, 0)]).tolist() == [1]  # confirmed: id 1
    # greedy by IoU would match the best pair (track 2, first box: IoU 0.67) and leave the second box a new track
    # (IoU 0.05 with track 1); the assignment of largest total IoU matches both (0.54 + 0.43)
    t2 = IoUTracker(iou_threshold=0.1)
    t2.update([[0, 0, 10, 10], [5, 0, 15, 10]])
    ids = t2.update([[3, 0, 13, 10], [9, 0, 19, 10]])
    assert ids.tolist() == [1, 2]


def test_bad_arguments():
    with pytest.raises(ConfigError, match="iou_threshold"):
        IoUTracker(iou_threshold=0)
    with pytest.raises(ShapeError):
        IoUTracker().update([_box(0, 0)], labels=[0, 1])
    assert box_iou(np.zeros((0, 4)), np.array([_box(0, 0)])).shape == (0, 1)
