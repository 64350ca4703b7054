"""Video datasets on disk: which videos there are, their classes and splits (no decoding, no frame counts -- the
caller probes each video lazily).

Layouts (:func:`list_videos` tells them apart):

* ``class-folders``: ``root/<class>/<item>``, an item being a video file or a frame folder (a folder of images).
* ``split-folders``: ``root/train|val|test/<class>/<item>``; the classes are train's.
* ``kth``: the KTH actions (Schuldt et al. 2004), ``personNN_<action>_dS_uncomp.avi`` in six action folders (or
  flat), split by subject the standard way.
* ``ucf101``: UCF-101 (or a dataset in its format): ``root/<Class>/v_<Class>_gGG_cCC.avi`` with the split files
  ``classInd.txt``, ``trainlist0F.txt`` and ``testlist0F.txt``; a video's group ``gGG`` is its actor / scene.

Items of one group (a KTH subject, a UCF-101 group) look alike, so a validation set held out of the training
videos keeps whole groups on one side (:func:`group_split`).

Example:
    >>> import tempfile, os, numpy as np
    >>> from vislab.data.video.io import write_video
    >>> root = tempfile.mkdtemp()
    >>> for c in ("jump", "walk"):
    ...     _ = write_video(os.path.join(root, c, "a.avi"), np.zeros((2, 16, 16, 3), np.uint8))
    >>> listing = list_videos(root)
    >>> listing.layout, listing.classes, [(i.video_id, i.label) for i in listing.train]
    ('class-folders', ['jump', 'walk'], [('jump/a', 0), ('walk/a', 1)])
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vislab.core.errors import DataError
from vislab.data.video.io import FRAME_EXTENSIONS, VIDEO_EXTENSIONS, is_video_file


@dataclass(frozen=True)
class VideoItem:
    """One video of a listing: a video file or a frame folder, its class and its group."""

    path: str  # a video file or a frame folder
    label: int  # index into the listing's classes
    video_id: str  # unique in the listing, e.g. "walking/person01_walking_d1_uncomp"
    group: str = ""  # subject / group (KTH person, UCF-101 group gNN) for group-disjoint splits


@dataclass
class VideoListing:
    """The videos of a dataset by split; ``val`` / ``test`` are None when the dataset has none."""

    name: str
    classes: list[str]
    train: list[VideoItem]
    val: list[VideoItem] | None = None
    test: list[VideoItem] | None = None
    layout: str = ""  # "class-folders", "split-folders", "kth", "ucf101"


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def _is_frame_folder(p: Path) -> bool:
    """A folder holding at least one image file (looked for, not counted)."""
    try:
        return any(f.suffix.lower() in FRAME_EXTENSIONS and _visible(f) and f.is_file() for f in p.iterdir())
    except OSError:
        return False


def _subdirs(p: Path) -> list[Path]:
    return sorted(d for d in p.iterdir() if d.is_dir() and _visible(d))


def _existing_root(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.exists():
        raise DataError(f"video dataset {root}: expected an existing folder, got no such path")
    if not root.is_dir():
        raise DataError(f"video dataset {root}: expected a folder (of class folders, or KTH / UCF-101), got a file")
    return root


# --------------------------------------------------------------------------------------------
# Class folders and split folders
# --------------------------------------------------------------------------------------------

SPLIT_NAMES = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}


def _class_items(folder: Path, where: str) -> list[tuple[str, Path]]:
    """The videos and frame folders of one class folder as ``(name, path)``, sorted; none is an error."""
    entries = sorted(p for p in folder.iterdir() if _visible(p))
    items = [p for p in entries if (p.is_file() and is_video_file(p)) or (p.is_dir() and _is_frame_folder(p))]
    if not items:
        images = sum(1 for p in entries if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS)
        hint = f" ({images} image files: put each video's frames in a folder of their own inside the class folder)" if images else ""
        raise DataError(f"class folder {where}: expected video files ({', '.join(VIDEO_EXTENSIONS)}) or frame folders, got none{hint}")
    stems = [p.stem if p.is_file() else p.name for p in items]
    # a.mp4 beside a.avi (or a frame folder a/): keep the whole file name so that ids stay unique
    return [(s if stems.count(s) == 1 else p.name, p) for s, p in zip(stems, items, strict=True)]


def _read_classes(root: Path, label: str) -> dict[str, list[tuple[str, Path]]]:
    classes = _subdirs(root)
    if not classes:
        videos = sum(1 for p in root.iterdir() if p.is_file() and is_video_file(p))
        got = f"{videos} video files and no folders (put each class's videos in a folder named after it)" if videos else "none"
        raise DataError(f"video dataset {label}: expected class folders ({label}/<class>/<video or frame folder>), got {got}")
    return {c.name: _class_items(c, f"{label}/{c.name}") for c in classes}


def _items(found: dict[str, list[tuple[str, Path]]], classes: list[str], prefix: str = "") -> list[VideoItem]:
    index = {c: i for i, c in enumerate(classes)}
    # a UCF-101-style name (v_Class_g08_c01) carries its group even without the split files: keep groups apart
    group = lambda name: f"g{g.group(1)}" if (g := _UCF_GROUP.search(Path(name).stem)) else ""  # noqa: E731
    return [VideoItem(str(p), index[c], f"{prefix}{c}/{name}", group(name)) for c, items in found.items() for name, p in items]


def _split_dir(root: Path, split: str) -> Path | None:
    for name in SPLIT_NAMES[split]:
        if (root / name).is_dir():
            return root / name
    return None


def list_class_folders(root: str | os.PathLike) -> VideoListing:
    """``root/<class>/<video file or frame folder>`` (layout ``class-folders``), or the same under
    ``root/train``, ``root/val`` and ``root/test`` (``split-folders``; val and test may only use train's classes).

    Raises:
        DataError: no class folders, a class folder with no videos, or a val / test class train does not have.
    """
    root = _existing_root(root)
    train_dir = _split_dir(root, "train")
    if train_dir is None:
        found = _read_classes(root, str(root))
        classes = sorted(found)
        return VideoListing(root.name, classes, _items(found, classes), layout="class-folders")
    found = _read_classes(train_dir, str(train_dir))
    classes = sorted(found)
    splits: dict[str, list[VideoItem] | None] = {"train": _items(found, classes, "train/")}
    for split in ("val", "test"):
        d = _split_dir(root, split)
        if d is None:
            splits[split] = None
            continue
        other = _read_classes(d, str(d))
        unknown = sorted(set(other) - set(classes))
        if unknown:
            raise DataError(f"split folder {d}: expected only train's classes ({', '.join(classes)}), got "
                            f"{len(unknown)} other{'s' if len(unknown) > 1 else ''} ({', '.join(unknown[:5])})")
        splits[split] = _items(other, classes, f"{d.name}/")
    return VideoListing(root.name, classes, splits["train"] or [], splits["val"], splits["test"], layout="split-folders")


# --------------------------------------------------------------------------------------------
# KTH
# --------------------------------------------------------------------------------------------

KTH_ACTIONS = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
KTH_SUBJECTS = 25
# The standard subject split (Schuldt, Laptev and Caputo, ICPR 2004).
KTH_SPLIT = {"train": (11, 12, 13, 14, 15, 16, 17, 18), "val": (19, 20, 21, 23, 24, 25, 1, 4),
             "test": (22, 2, 3, 5, 6, 7, 8, 9, 10)}
KTH_SCENARIOS = ("d1", "d2", "d3", "d4")  # outdoors, outdoors with scale change, outdoors in other clothes, indoors
_KTH_NAME = re.compile(r"^person(\d\d)_(" + "|".join(KTH_ACTIONS) + r")_(d\d)(?:_uncomp)?$")


def _kth_match(p: Path) -> re.Match | None:
    """The name match of a KTH video file or frame folder (``person01_boxing_d1_uncomp.avi``)."""
    if not _visible(p):
        return None
    if p.is_file():
        return _KTH_NAME.match(p.stem) if is_video_file(p) else None
    return _KTH_NAME.match(p.name) if p.is_dir() else None


def _kth_candidates(root: Path) -> list[Path]:
    """KTH-named entries flat in ``root`` and inside its action folders."""
    out = [p for p in root.iterdir() if _kth_match(p)]
    for action in KTH_ACTIONS:
        if (root / action).is_dir():
            out += [p for p in (root / action).iterdir() if _kth_match(p)]
    return out


def is_kth(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds KTH videos: ``personNN_<action>_dS_uncomp`` files flat or in the action folders."""
    root = Path(root)
    if not root.is_dir():
        return False
    if any(_kth_match(p) for p in root.iterdir()):
        return True
    return any((root / a).is_dir() and any(_kth_match(p) for p in (root / a).iterdir()) for a in KTH_ACTIONS)


def list_kth(root: str | os.PathLike, scenarios: Sequence[str] = KTH_SCENARIOS) -> VideoListing:
    """The KTH actions split by subject: train persons 11-18, val 19-21, 23-25, 01, 04, test 22, 02, 03, 05-10.

    Videos are ``personNN_<action>_dS_uncomp.avi`` (any video extension, or a frame folder of that name), in the
    six action folders or all flat in ``root``; ``scenarios`` keeps only those recording conditions. A video missing
    here and there is fine (the original misses one); a whole subject or action missing is an error.
    """
    root = _existing_root(root)
    bad = [s for s in scenarios if s not in KTH_SCENARIOS]
    if bad or not scenarios:
        raise DataError(f"KTH scenarios: expected some of {', '.join(KTH_SCENARIOS)}, got {list(scenarios)}")
    folders = [a for a in KTH_ACTIONS if (root / a).is_dir()]
    if folders and len(folders) < len(KTH_ACTIONS):
        missing = [a for a in KTH_ACTIONS if a not in folders]
        raise DataError(f"KTH root {root}: expected the {len(KTH_ACTIONS)} action folders {', '.join(KTH_ACTIONS)}, "
                        f"got {len(folders)} (missing {', '.join(missing)})")
    found: dict[str, tuple[Path, re.Match]] = {}
    for p in _kth_candidates(root):
        m = _kth_match(p)
        assert m is not None
        vid = f"{m.group(2)}/{m.group(0)}"
        if vid not in found or (p.is_file() and not found[vid][0].is_file()):  # a video beside its frames: the video
            found[vid] = (p, m)
    actions = {m.group(2) for _, m in found.values()}
    if len(actions) < len(KTH_ACTIONS):
        missing = [a for a in KTH_ACTIONS if a not in actions]
        raise DataError(f"KTH root {root}: expected videos of the {len(KTH_ACTIONS)} actions {', '.join(KTH_ACTIONS)}, "
                        f"got {len(actions)} (missing {', '.join(missing)})")
    persons = {int(m.group(1)) for _, m in found.values()}
    missing_p = [k for k in range(1, KTH_SUBJECTS + 1) if k not in persons]
    if missing_p:
        raise DataError(f"KTH root {root}: expected the {KTH_SUBJECTS} subjects person01..person{KTH_SUBJECTS:02d}, got "
                        f"{len(persons & set(range(1, KTH_SUBJECTS + 1)))} (missing {', '.join(f'person{k:02d}' for k in missing_p)})")
    split_of = {k: s for s, ks in KTH_SPLIT.items() for k in ks}
    splits: dict[str, list[VideoItem]] = {"train": [], "val": [], "test": []}
    label = {a: i for i, a in enumerate(KTH_ACTIONS)}
    for vid in sorted(found):
        p, m = found[vid]
        k = int(m.group(1))
        if m.group(3) not in scenarios or k not in split_of:
            continue
        splits[split_of[k]].append(VideoItem(str(p), label[m.group(2)], vid, f"person{k:02d}"))
    return VideoListing(root.name, list(KTH_ACTIONS), splits["train"], splits["val"], splits["test"], layout="kth")


# --------------------------------------------------------------------------------------------
# UCF-101
# --------------------------------------------------------------------------------------------

UCF_SPLITS_DIR = "ucfTrainTestlist"
_UCF_GROUP = re.compile(r"_g(\d+)_c\d+$")


def ucf101_splits_dir(root: str | os.PathLike) -> Path | None:
    """Where ``root``'s UCF-101 split files are: ``root/ucfTrainTestlist`` or ``root`` (None: neither)."""
    root = Path(root)
    for d in (root / UCF_SPLITS_DIR, root):
        if (d / "classInd.txt").is_file() and any(d.glob("trainlist0[1-3].txt")):
            return d
    return None


def _lines(path: Path) -> list[list[str]]:
    return [ln.split() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]


def _ucf_classes(path: Path) -> list[str]:
    rows = _lines(path)
    for r in rows:
        if len(r) != 2 or not r[0].isdigit():
            raise DataError(f"UCF-101 class index {path}: expected lines '<index> <class>' (like '1 ApplyEyeMakeup'), got '{' '.join(r)}'")
    if not rows:
        raise DataError(f"UCF-101 class index {path}: expected lines '<index> <class>', got an empty file")
    pairs = sorted((int(r[0]), r[1]) for r in rows)
    if [i for i, _ in pairs] != list(range(1, len(pairs) + 1)):
        raise DataError(f"UCF-101 class index {path}: expected indices 1..{len(pairs)}, got {[i for i, _ in pairs][:10]}")
    return [c for _, c in pairs]


def _resolve_ucf(root: Path, rel: str) -> Path | None:
    """A listed video on disk: ``root/<rel>``, flat ``root/<name>``, or a frame folder of its name."""
    p = root / rel
    for video in (p, root / p.name):
        if video.is_file():
            return video
    for frames in (p.with_suffix(""), root / p.stem):
        if frames.is_dir():
            return frames
    return None


def _ucf_items(root: Path, split_file: Path, classes: list[str], labelled: bool) -> list[VideoItem]:
    if not split_file.is_file():
        raise DataError(f"UCF-101 splits {split_file.parent}: expected {split_file.name}, got no such file")
    index = {c: i for i, c in enumerate(classes)}
    lower = {c.lower(): i for i, c in enumerate(classes)}
    items, missing = [], []
    for row in _lines(split_file):
        rel = row[0].replace("\\", "/")
        cls = rel.split("/")[0] if "/" in rel else ""
        k = index.get(cls, lower.get(cls.lower()))
        if k is None:
            raise DataError(f"UCF-101 split {split_file}: expected '<Class>/<video>' with a class of classInd.txt, got '{rel}'")
        if labelled and len(row) > 1 and (not row[1].isdigit() or int(row[1]) != k + 1):
            raise DataError(f"UCF-101 split {split_file}: expected label {k + 1} ({classes[k]}) for {rel}, got '{row[1]}'")
        p = _resolve_ucf(root, rel)
        if p is None:
            missing.append(rel)
            continue
        stem = Path(rel).stem
        g = _UCF_GROUP.search(stem)
        items.append(VideoItem(str(p), k, f"{classes[k]}/{stem}", f"g{g.group(1)}" if g else ""))
    if missing:
        raise DataError(f"UCF-101 root {root}: expected the {len(items) + len(missing)} videos of {split_file.name}, got "
                        f"{len(missing)} missing (first: {missing[0]})")
    return items


def list_ucf101(root: str | os.PathLike, splits_dir: str | os.PathLike | None = None, fold: int = 1) -> VideoListing:
    """UCF-101 (or a dataset in its format) by the official split ``fold`` (1, 2 or 3): ``trainlist0F.txt`` and
    ``testlist0F.txt`` list ``Class/v_Class_gGG_cCC.avi`` paths relative to ``root``, ``classInd.txt`` the classes.
    ``splits_dir`` defaults to ``root/ucfTrainTestlist`` or ``root``. There is no val split (hold one out by group)."""
    root = _existing_root(root)
    if fold not in (1, 2, 3):
        raise DataError(f"UCF-101 fold: expected 1, 2 or 3, got {fold}")
    d = Path(splits_dir) if splits_dir is not None else ucf101_splits_dir(root)
    if d is None or not (d / "classInd.txt").is_file():
        where = d or f"{root}/{UCF_SPLITS_DIR} or {root}"
        raise DataError(f"UCF-101 splits {where}: expected classInd.txt, trainlist0{fold}.txt and testlist0{fold}.txt, got no classInd.txt")
    classes = _ucf_classes(d / "classInd.txt")
    train = _ucf_items(root, d / f"trainlist0{fold}.txt", classes, labelled=True)
    test = _ucf_items(root, d / f"testlist0{fold}.txt", classes, labelled=False)
    return VideoListing(root.name, classes, train, None, test, layout="ucf101")


# --------------------------------------------------------------------------------------------
# Any layout; group-disjoint hold-out
# --------------------------------------------------------------------------------------------


def list_videos(root: str | os.PathLike, fold: int = 1) -> VideoListing:
    """The videos under ``root``, its layout detected: UCF-101 split files -> ``ucf101``, KTH file names -> ``kth``,
    a ``train/`` folder -> ``split-folders``, else ``class-folders``. ``fold``: the UCF-101 split."""
    root = _existing_root(root)
    if ucf101_splits_dir(root) is not None:
        return list_ucf101(root, fold=fold)
    if is_kth(root):
        return list_kth(root)
    return list_class_folders(root)


def group_split(items: Sequence[VideoItem], fraction: float, seed: int) -> tuple[list[VideoItem], list[VideoItem]]:
    """Hold out about ``fraction`` of ``items``: whole groups when the items have groups (no group on both sides;
    an item without one is a group of its own), else items stratified by class. Every class with at least two
    items keeps one on the kept side. Deterministic for a ``seed``; both lists keep the input order.

    Example:
        >>> items = [VideoItem(f"{g}{c}.avi", c, f"{g}/{c}", g) for g in "abcdefghij" for c in range(2)]
        >>> kept, held = group_split(items, 0.2, seed=0)
        >>> len(kept), len(held), {i.group for i in kept} & {i.group for i in held}
        (16, 4, set())
    """
    items = list(items)
    if not 0 <= fraction < 1:
        raise DataError(f"group_split: expected a fraction in [0, 1), got {fraction}")
    if fraction == 0 or len(items) < 2:
        return items, []
    rng = np.random.default_rng(seed)
    labels = np.array([it.label for it in items])
    count = {int(c): int(k) for c, k in zip(*np.unique(labels, return_counts=True), strict=True)}
    held = np.zeros(len(items), bool)
    if any(it.group for it in items):
        keys = [it.group or f"\0{it.video_id}" for it in items]
        members: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            members.setdefault(k, []).append(i)
        target = fraction * len(items)
        left = dict(count)  # items of each class still on the kept side
        n_held = 0
        for g in [sorted(members)[j] for j in rng.permutation(len(members))]:
            if n_held >= target:
                break
            idx = members[g]
            if n_held and abs(n_held + len(idx) - target) > abs(n_held - target):
                continue  # this group overshoots more than it helps
            take = np.bincount(labels[idx], minlength=max(count) + 1)
            if any(left[c] - take[c] < 1 and count[c] >= 2 for c in left if take[c]):
                continue  # it would take a class's last kept items
            for c in left:
                left[c] -= int(take[c])
            held[idx] = True
            n_held += len(idx)
    else:
        for c, k in count.items():
            idx = np.flatnonzero(labels == c)[rng.permutation(k)]
            # the rank of each item plus one random offset per class: floor or ceil of fraction * k, fraction * k on average
            n_c = int(np.floor(fraction * k + rng.random()))
            held[idx[: min(n_c, k - 1)]] = True
    return [it for it, h in zip(items, held, strict=True) if not h], [it for it, h in zip(items, held, strict=True) if h]
