"""Listing video datasets on disk: class folders, split folders, KTH, UCF-101, and group-disjoint hold-outs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from vislab.core.errors import DataError
from vislab.data.video.formats import (
    KTH_ACTIONS,
    KTH_SPLIT,
    VideoItem,
    group_split,
    is_kth,
    list_class_folders,
    list_kth,
    list_ucf101,
    list_videos,
)
from vislab.data.video.io import write_video


@pytest.fixture(scope="module")
def tiny_avi(tmp_path_factory) -> Path:
    """One real 3-frame 16x16 .avi; datasets copy it (listing never decodes)."""
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    frames[:, 4:12, 4:12] = 200
    return write_video(tmp_path_factory.mktemp("avi") / "tiny.avi", frames, fps=10)


def _put(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def _frame_folder(folder: Path, n: int = 2) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    for t in range(n):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / f"{t:04d}.png")
    return folder


# --------------------------------------------------------------------------------------------
# Class folders, split folders
# --------------------------------------------------------------------------------------------


def test_class_folders_mix_videos_and_frame_folders(tmp_path, tiny_avi):
    _put(tiny_avi, tmp_path / "walk" / "b.avi")
    _put(tiny_avi, tmp_path / "walk" / "a.avi")
    _frame_folder(tmp_path / "walk" / "c")
    _frame_folder(tmp_path / "jump" / "x")
    _put(tiny_avi, tmp_path / "jump" / ".hidden.avi")
    (tmp_path / "jump" / "notes.txt").write_text("not a video")
    (tmp_path / "jump" / "empty").mkdir()  # a folder without images is no item
    (tmp_path / ".cache").mkdir()
    (tmp_path / "README.txt").write_text("root files are ignored")
    listing = list_videos(tmp_path)
    assert listing.layout == "class-folders" and listing.classes == ["jump", "walk"]
    assert [(i.video_id, i.label, i.group) for i in listing.train] == [("jump/x", 0, ""), ("walk/a", 1, ""), ("walk/b", 1, ""), ("walk/c", 1, "")]
    assert Path(listing.train[0].path).is_dir() and listing.train[1].path.endswith("a.avi")
    assert listing.val is None and listing.test is None


def test_same_stem_keeps_ids_unique(tmp_path, tiny_avi):
    _put(tiny_avi, tmp_path / "walk" / "a.avi")
    _put(tiny_avi, tmp_path / "walk" / "a.mp4")
    ids = [i.video_id for i in list_class_folders(tmp_path).train]
    assert ids == ["walk/a.avi", "walk/a.mp4"]


def test_empty_class_folder_is_an_error(tmp_path, tiny_avi):
    _put(tiny_avi, tmp_path / "walking" / "a.avi")
    (tmp_path / "jogging").mkdir()
    with pytest.raises(DataError, match=r"class folder .*jogging: expected video files \(.mp4, .*\) or frame folders, got none"):
        list_videos(tmp_path)


def test_frames_directly_in_a_class_folder_get_a_hint(tmp_path):
    _frame_folder(tmp_path / "walking")
    with pytest.raises(DataError, match="got none \\(2 image files"):
        list_videos(tmp_path)


def test_split_folders(tmp_path, tiny_avi):
    for split, cls in [("train", "a"), ("train", "b"), ("val", "b"), ("test", "a")]:
        _put(tiny_avi, tmp_path / split / cls / "v1.avi")
    listing = list_videos(tmp_path)
    assert listing.layout == "split-folders" and listing.classes == ["a", "b"]
    assert [(i.video_id, i.label) for i in listing.train] == [("train/a/v1", 0), ("train/b/v1", 1)]
    assert [(i.video_id, i.label) for i in listing.val] == [("val/b/v1", 1)]
    assert [(i.video_id, i.label) for i in listing.test] == [("test/a/v1", 0)]


def test_split_folders_without_test_and_unknown_val_class(tmp_path, tiny_avi):
    _put(tiny_avi, tmp_path / "train" / "a" / "v.avi")
    listing = list_class_folders(tmp_path)
    assert listing.val is None and listing.test is None
    _put(tiny_avi, tmp_path / "val" / "zebra" / "v.avi")
    with pytest.raises(DataError, match=r"split folder .*val: expected only train's classes \(a\), got 1 other \(zebra\)"):
        list_videos(tmp_path)


def test_missing_and_empty_roots(tmp_path, tiny_avi):
    with pytest.raises(DataError, match="expected an existing folder, got no such path"):
        list_videos(tmp_path / "nope")
    with pytest.raises(DataError, match="expected class folders .*, got none"):
        list_videos(tmp_path)
    _put(tiny_avi, tmp_path / "a.avi")
    with pytest.raises(DataError, match="got 1 video files and no folders"):
        list_videos(tmp_path)


# --------------------------------------------------------------------------------------------
# KTH
# --------------------------------------------------------------------------------------------


def _kth(root: Path, avi: Path, flat: bool = False, persons=range(1, 26), scenarios=("d1", "d2")) -> Path:
    for action in KTH_ACTIONS:
        for k in persons:
            for s in scenarios:
                name = f"person{k:02d}_{action}_{s}_uncomp.avi"
                _put(avi, root / name if flat else root / action / name)
    (root / "00sequences.txt").write_text("the frame ranges of each sequence")
    return root


def _persons(items: list[VideoItem]) -> set[int]:
    return {int(i.group[len("person"):]) for i in items}


def test_kth_standard_subject_split(tmp_path, tiny_avi):
    root = _kth(tmp_path, tiny_avi)
    assert is_kth(root)
    listing = list_videos(root)
    assert listing.layout == "kth" and listing.classes == list(KTH_ACTIONS)
    assert _persons(listing.train) == {11, 12, 13, 14, 15, 16, 17, 18}
    assert _persons(listing.val) == {19, 20, 21, 23, 24, 25, 1, 4}
    assert _persons(listing.test) == {22, 2, 3, 5, 6, 7, 8, 9, 10}
    assert {k: set(v) for k, v in KTH_SPLIT.items()} == {"train": _persons(listing.train), "val": _persons(listing.val),
                                                         "test": _persons(listing.test)}
    assert len(listing.train) == 8 * 6 * 2 and len(listing.test) == 9 * 6 * 2
    first = listing.train[0]
    assert (first.video_id, first.label, first.group) == ("boxing/person11_boxing_d1_uncomp", 0, "person11")
    walking = [i for i in listing.train if i.video_id.startswith("walking/")]
    assert walking and all(i.label == KTH_ACTIONS.index("walking") for i in walking)
    assert len({i.video_id for i in listing.train + listing.val + listing.test}) == 25 * 6 * 2


def test_kth_scenarios_and_flat_layout(tmp_path, tiny_avi):
    root = _kth(tmp_path, tiny_avi, flat=True)
    assert is_kth(root)
    listing = list_videos(root)
    assert listing.layout == "kth" and len(listing.val) == 8 * 6 * 2
    d2 = list_kth(root, scenarios=("d2",))
    assert {i.video_id.split("_")[-2] for i in d2.train + d2.val + d2.test} == {"d2"}
    with pytest.raises(DataError, match="KTH scenarios: expected some of d1, d2, d3, d4, got \\['d5'\\]"):
        list_kth(root, scenarios=("d5",))


def test_kth_missing_subject(tmp_path, tiny_avi):
    root = _kth(tmp_path, tiny_avi, persons=[k for k in range(1, 26) if k != 13], scenarios=("d1",))
    with pytest.raises(DataError) as e:
        list_videos(root)
    assert str(e.value) == f"KTH root {root}: expected the 25 subjects person01..person25, got 24 (missing person13)"


def test_kth_missing_action_folder(tmp_path, tiny_avi):
    root = _kth(tmp_path, tiny_avi, persons=[1], scenarios=("d1",))
    shutil.rmtree(root / "jogging")
    with pytest.raises(DataError, match=r"KTH root .*: expected the 6 action folders .*, got 5 \(missing jogging\)"):
        list_videos(root)


def test_class_folders_named_like_kth_actions_are_not_kth(tmp_path, tiny_avi):
    _put(tiny_avi, tmp_path / "walking" / "clip1.avi")
    _put(tiny_avi, tmp_path / "boxing" / "clip2.avi")
    assert not is_kth(tmp_path)
    assert list_videos(tmp_path).layout == "class-folders"


# --------------------------------------------------------------------------------------------
# UCF-101
# --------------------------------------------------------------------------------------------

UCF_CLASSES = ["ApplyEyeMakeup", "Basketball", "YoYo"]


def _ucf(root: Path, avi: Path, splits_in_root: bool = False) -> Path:
    d = root if splits_in_root else root / "ucfTrainTestlist"
    d.mkdir(parents=True, exist_ok=True)
    (d / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(UCF_CLASSES)))
    train, test = [], []
    for k, c in enumerate(UCF_CLASSES):
        for g in range(1, 5):
            for clip in (1, 2):
                rel = f"{c}/v_{c}_g{g:02d}_c{clip:02d}.avi"
                _put(avi, root / rel)
                (test if g == 1 else train).append(rel)
                if g == 2:  # lines with and without the label
                    train[-1] += f" {k + 1}"
    (d / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (d / "testlist01.txt").write_text("\r\n".join(test) + "\r\n")
    return root


def test_ucf101_split_files(tmp_path, tiny_avi):
    root = _ucf(tmp_path, tiny_avi)
    listing = list_videos(root)
    assert listing.layout == "ucf101" and listing.classes == UCF_CLASSES and listing.val is None
    assert len(listing.train) == 3 * 3 * 2 and len(listing.test) == 3 * 2
    assert {i.group for i in listing.train} == {"g02", "g03", "g04"} and {i.group for i in listing.test} == {"g01"}
    yoyo = [i for i in listing.train if i.video_id.startswith("YoYo/")]
    assert yoyo[0].video_id == "YoYo/v_YoYo_g02_c01" and {i.label for i in yoyo} == {2}
    assert Path(yoyo[0].path) == root / "YoYo" / "v_YoYo_g02_c01.avi"
    assert {i.label for i in listing.test} == {0, 1, 2}


def test_ucf101_splits_in_root_and_frame_folders(tmp_path, tiny_avi):
    root = _ucf(tmp_path, tiny_avi, splits_in_root=True)
    video = root / "YoYo" / "v_YoYo_g01_c01.avi"
    video.unlink()
    _frame_folder(video.with_suffix(""))  # extracted frames instead of the .avi
    listing = list_ucf101(root)
    item = next(i for i in listing.test if i.video_id == "YoYo/v_YoYo_g01_c01")
    assert Path(item.path).is_dir()


def test_ucf101_missing_files_and_bad_fold(tmp_path, tiny_avi):
    root = _ucf(tmp_path, tiny_avi)
    (root / "Basketball" / "v_Basketball_g03_c01.avi").unlink()
    (root / "YoYo" / "v_YoYo_g04_c02.avi").unlink()
    with pytest.raises(DataError, match=r"UCF-101 root .*: expected the 18 videos of trainlist01.txt, got 2 missing "
                                        r"\(first: Basketball/v_Basketball_g03_c01.avi\)"):
        list_videos(root)
    with pytest.raises(DataError, match="UCF-101 fold: expected 1, 2 or 3, got 4"):
        list_ucf101(root, fold=4)
    with pytest.raises(DataError, match="expected trainlist02.txt, got no such file"):
        list_ucf101(root, fold=2)


def test_ucf101_wrong_label(tmp_path, tiny_avi):
    root = _ucf(tmp_path, tiny_avi)
    f = root / "ucfTrainTestlist" / "trainlist01.txt"
    f.write_text(f.read_text().replace("v_YoYo_g02_c01.avi 3", "v_YoYo_g02_c01.avi 1"))
    with pytest.raises(DataError, match=r"expected label 3 \(YoYo\) for YoYo/v_YoYo_g02_c01.avi, got '1'"):
        list_ucf101(root)


# --------------------------------------------------------------------------------------------
# group_split
# --------------------------------------------------------------------------------------------


def _items(groups: int, classes: int, per: int = 1) -> list[VideoItem]:
    return [VideoItem(f"{g}_{c}_{k}.avi", c, f"c{c}/g{g:02d}_{k}", f"g{g:02d}")
            for g in range(groups) for c in range(classes) for k in range(per)]


def test_group_split_keeps_groups_disjoint():
    items = _items(25, 4, per=2)
    kept, held = group_split(items, 0.2, seed=3)
    assert not {i.group for i in kept} & {i.group for i in held}
    assert len(held) == 5 * 4 * 2 and len(kept) + len(held) == len(items)
    assert {i.label for i in kept} == {0, 1, 2, 3}
    assert group_split(items, 0.2, seed=3) == (kept, held)
    assert group_split(items, 0.2, seed=4)[1] != held
    assert [i for i in items if i in kept] == kept  # input order kept


def test_group_split_keeps_a_training_item_per_class():
    # class 1 lives only in group g00: holding g00 out would leave it without a training item
    items = [VideoItem("a", 1, "c1/a", "g00"), VideoItem("b", 1, "c1/b", "g00")] + _items(5, 1)[1:]
    for seed in range(10):
        kept, held = group_split(items, 0.5, seed)
        assert any(i.label == 1 for i in kept) and held


def test_group_split_by_items_when_no_groups():
    items = [VideoItem(f"{k}.avi", k % 3, f"c/{k}") for k in range(300)]
    kept, held = group_split(items, 0.1, seed=0)
    assert 24 <= len(held) <= 36 and len(kept) + len(held) == 300
    assert {i.label for i in held} == {0, 1, 2}
    two = [VideoItem("a", 0, "a"), VideoItem("b", 0, "b")]
    for seed in range(5):
        assert len(group_split(two, 0.9, seed)[0]) == 1
    assert group_split(items, 0.0, seed=0) == (items, [])
    with pytest.raises(DataError, match="expected a fraction in \\[0, 1\\), got 1.5"):
        group_split(items, 1.5, seed=0)
