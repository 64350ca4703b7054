"""Multi-object tracking by IoU: detections of one frame are matched to the tracks of the frames before by box
overlap, class by class; a match continues its track (same id), a detection left over starts a new one, and a track
unmatched for more than ``max_missed`` frames in a row ends (its id is never given out again).

Matching is the assignment of largest total IoU (Hungarian, ``scipy.optimize.linear_sum_assignment``) or, without
scipy, greedy by IoU; pairs below ``iou_threshold`` never match. There is no motion model: a track's box is its
last matched detection, so objects moving more than about their size between processed frames (or ``--every`` n
frames apart) lose their id. A box is compared with every living track, missed ones included, at the box it had
when last seen.

Example:
    >>> import numpy as np
    >>> t = IoUTracker()
    >>> t.update(np.array([[0, 0, 10, 10], [50, 50, 60, 60]]), labels=np.array([0, 0])).tolist()
    [1, 2]
    >>> t.update(np.array([[52, 51, 62, 61], [1, 0, 11, 10]]), labels=np.array([0, 0])).tolist()
    [2, 1]
    >>> t.update(np.array([[200, 200, 210, 210]]), labels=np.array([0])).tolist()  # someone new
    [3]
    >>> t.count
    3
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vislab.core.errors import ConfigError, ShapeError

__all__ = ["IoUTracker", "box_iou"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a (N, 4)`` with every box of ``b (M, 4)`` (``x1, y1, x2, y2``): ``(N, M)``.

    Example:
        >>> box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 0, 3, 2], [5, 5, 6, 6]])).round(3).tolist()
        [[0.333, 0.0]]
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _assign(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """``(row, col)`` pairs of a one-to-one matching of largest total IoU, each with IoU >= ``threshold``."""
    if iou.size == 0:
        return []
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:  # greedy: the best remaining pair first
        pairs, rows, cols = [], set(), set()
        for flat in np.argsort(-iou, axis=None, kind="stable"):
            r, c = divmod(int(flat), iou.shape[1])
            if iou[r, c] < threshold:
                break
            if r not in rows and c not in cols:
                pairs.append((r, c))
                rows.add(r)
                cols.add(c)
        return pairs
    # pairs below the threshold cannot match: make them worthless so they never displace a valid pair
    gain = np.where(iou >= threshold, iou, 0.0)
    rs, cs = linear_sum_assignment(gain, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rs, cs, strict=True) if iou[r, c] >= threshold]


@dataclass
class _Track:
    box: np.ndarray
    label: int
    score: float
    hits: int = 1
    missed: int = 0
    id: int = -1  # given when the track has min_hits matches


class IoUTracker:
    """Track boxes across frames by IoU, per class label.

    Args:
        iou_threshold: the least IoU of a detection with a track's last box for them to match.
        max_missed: a track not matched in more than this many consecutive frames ends.
        min_hits: a track gets its id (and its detections an id other than -1) once it was matched in this many
            frames; 1: every detection has an id at once.

    :meth:`update` once per frame, in order; frames without detections count too (call it with no boxes).
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5, min_hits: int = 1):
        if not 0 < iou_threshold <= 1 or max_missed < 0 or min_hits < 1:
            raise ConfigError(f"IoUTracker: expected 0 < iou_threshold <= 1, max_missed >= 0, min_hits >= 1; got "
                              f"{iou_threshold}, {max_missed}, {min_hits}")
        self.iou_threshold, self.max_missed, self.min_hits = float(iou_threshold), int(max_missed), int(min_hits)
        self.tracks: list[_Track] = []
        self.next_id = 1
        self.frames = 0

    @property
    def count(self) -> int:
        """How many ids were given out so far (tracks that reached ``min_hits``)."""
        return self.next_id - 1

    def update(self, boxes, scores=None, labels=None) -> np.ndarray:
        """Match one frame's detections ``boxes (N, 4)`` (``x1, y1, x2, y2``; ``scores``, ``labels`` ``(N,)``, labels
        default 0) to the tracks; returns the track id of each detection ``(N,)`` int64 (-1: a track that has not
        reached ``min_hits`` yet)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
        n = len(boxes)
        labels = np.zeros(n, np.int64) if labels is None else np.asarray(labels).reshape(-1).astype(np.int64)
        scores = np.ones(n) if scores is None else np.asarray(scores, np.float64).reshape(-1)
        if len(labels) != n or len(scores) != n:
            raise ShapeError("IoUTracker.update", f"{n} labels and scores, one per box", (len(labels), len(scores)))
        self.frames += 1
        matched_track: dict[int, int] = {}  # detection -> track index
        for c in np.unique(labels).tolist():
            dets = np.flatnonzero(labels == c)
            cand = [k for k, t in enumerate(self.tracks) if t.label == c]
            if not cand:
                continue
            iou = box_iou(boxes[dets], np.stack([self.tracks[k].box for k in cand]))
            for r, col in _assign(iou, self.iou_threshold):
                matched_track[int(dets[r])] = cand[col]
        ids = np.full(n, -1, np.int64)
        used = set(matched_track.values())
        for k, t in enumerate(self.tracks):
            if k not in used:
                t.missed += 1
        for d in range(n):
            if d in matched_track:
                t = self.tracks[matched_track[d]]
                t.box, t.score, t.hits, t.missed = boxes[d].copy(), float(scores[d]), t.hits + 1, 0
            else:
                t = _Track(boxes[d].copy(), int(labels[d]), float(scores[d]))
                self.tracks.append(t)
            if t.id < 0 and t.hits >= self.min_hits:
                t.id, self.next_id = self.next_id, self.next_id + 1
            ids[d] = t.id
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return ids
