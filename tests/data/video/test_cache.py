"""vislab.data.video.cache: a second read is a memory-mapped hit, a changed source gets a new key, a damaged entry
is recomputed, and writes are atomic."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vislab.core.errors import DataError
from vislab.data.video.cache import FORMAT_VERSION, VideoCache, default_cache_dir
from vislab.data.video.io import read_video, write_video


def frames(t: int = 6, h: int = 32, w: int = 40, shift: int = 0) -> np.ndarray:
    a = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        a[i, 8:20, 4 + 2 * i + shift : 16 + 2 * i + shift] = (200, 120, 40)
    return a


@pytest.fixture
def video(tmp_path) -> Path:
    return write_video(tmp_path / "a.mp4", frames(), fps=10)


def npy_files(root: Path) -> list[Path]:
    return sorted(root.glob("*.npy"))


def test_second_read_is_a_memory_mapped_hit(tmp_path, video):
    cache = VideoCache(tmp_path / "cache")
    first = cache.frames(video, (16, 24), False)
    assert first.shape == (6, 16, 24, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, read_video(video, size=(16, 24)))
    assert cache.stats() == {"hits": 0, "misses": 1, "bytes_written": os.path.getsize(npy_files(tmp_path / "cache")[0]),
                             "recomputed": 0}
    second = cache.frames(video, (16, 24), False)
    assert isinstance(second, np.memmap) and second.mode == "r"
    np.testing.assert_array_equal(second, first)
    np.testing.assert_array_equal(second[[1, 3]], first[[1, 3]])  # clips are slices of it
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 1
    assert len(npy_files(tmp_path / "cache")) == 1
    assert not list((tmp_path / "cache").glob(".*"))  # no temporary file left behind


def test_returned_arrays_are_read_only_on_a_miss_too(tmp_path, video):
    for root in (tmp_path / "cache", None):
        a = VideoCache(root).frames(video, None, False)
        with pytest.raises(ValueError, match="read-only"):
            a[0, 0, 0, 0] = 1


def test_size_and_gray_are_separate_entries(tmp_path, video):
    cache = VideoCache(tmp_path / "cache")
    assert cache.frames(video, (16, 24), False).shape == (6, 16, 24, 3)
    assert cache.frames(video, (16, 24), True).shape == (6, 16, 24, 1)
    assert cache.frames(video, None, False).shape == (6, 32, 40, 3)
    assert cache.frames(video, 20, False).shape == (6, 20, 20, 3)  # an int: a square, like read_video
    assert len(npy_files(tmp_path / "cache")) == 4 and cache.stats()["misses"] == 4


def test_a_changed_source_gets_a_new_key(tmp_path, video):
    cache = VideoCache(tmp_path / "cache")
    old = np.array(cache.frames(video, None, False))
    write_video(video, frames(shift=8), fps=10)  # the same path, other content (other size and mtime)
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # even within one mtime tick
    new = cache.frames(video, None, False)
    assert cache.stats()["misses"] == 2 and cache.stats()["hits"] == 0
    assert not np.array_equal(new, old)
    np.testing.assert_array_equal(new, read_video(video))
    # only the mtime changes (same bytes): a new key as well
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
    cache.frames(video, None, False)
    assert cache.stats()["misses"] == 3 and len(npy_files(tmp_path / "cache")) == 3


def test_frame_folder_key_follows_its_newest_frame(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames(4)):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    cache = VideoCache(tmp_path / "cache")
    assert cache.frames(folder, None, False).shape == (4, 32, 40, 3)
    assert cache.frames(folder, None, False).shape == (4, 32, 40, 3) and cache.stats()["hits"] == 1
    Image.fromarray(frames(6)[5]).save(folder / "004.png")  # a frame added
    assert cache.frames(folder, None, False).shape == (5, 32, 40, 3) and cache.stats()["misses"] == 2
    (folder / "000.png").unlink()  # a frame removed (the newest mtime does not change)
    assert cache.frames(folder, None, False).shape == (4, 32, 40, 3) and cache.stats()["misses"] == 3


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "header-only"])
def test_a_damaged_entry_is_recomputed_not_an_error(tmp_path, video, damage):
    cache = VideoCache(tmp_path / "cache")
    good = np.array(cache.frames(video, None, False))
    (entry,) = npy_files(tmp_path / "cache")
    data = entry.read_bytes()
    entry.write_bytes({"truncate": data[: len(data) // 2], "empty": b"", "garbage": b"\x00garbage" * 50,
                       "header-only": data[:128]}[damage])
    again = cache.frames(video, None, False)
    np.testing.assert_array_equal(again, good)
    assert cache.stats()["recomputed"] == 1 and cache.stats()["misses"] == 2
    assert entry.read_bytes() == data  # rewritten
    assert isinstance(cache.frames(video, None, False), np.memmap)


def test_no_root_decodes_every_time_and_writes_nothing(tmp_path, video, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = VideoCache(None)
    a = cache.frames(video, (16, 16), False)
    b = cache.frames(video, (16, 16), False)
    np.testing.assert_array_equal(a, b)
    assert cache.stats() == {"hits": 0, "misses": 2, "bytes_written": 0, "recomputed": 0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]
    assert cache.path(("x",)) is None and repr(cache) == "VideoCache(None)"


def test_array_stores_any_dtype(tmp_path):
    cache = VideoCache(tmp_path / "cache")
    calls = []

    def flow():
        calls.append(1)
        return np.linspace(-3, 3, 2 * 5 * 4 * 4, dtype=np.float16).reshape(5, 2, 4, 4)

    a = cache.array(("flow", "farneback", "a.mp4", 123), flow)
    b = cache.array(("flow", "farneback", "a.mp4", 123), flow)
    assert len(calls) == 1 and b.dtype == np.float16 and b.shape == (5, 2, 4, 4)
    np.testing.assert_array_equal(a, b)
    cache.array(("flow", "farneback", "a.mp4", 124), flow)  # other key parts: computed again
    assert len(calls) == 2
    assert cache.path(("flow",)) == tmp_path / "cache" / f"{VideoCache.key(('flow',))}.npy"
    assert VideoCache.key(("flow",)) != VideoCache.key(("flow", 1)) and len(VideoCache.key(("flow",))) == 40
    assert FORMAT_VERSION >= 1


def test_concurrent_writers_of_one_key_are_safe(tmp_path, video):
    # DDP ranks / loader workers computing the same entry at once: every one gets the right array, one file remains
    root = tmp_path / "cache"
    want = read_video(video, size=(16, 24))
    results, errors = [], []

    def worker():
        try:
            results.append(np.array(VideoCache(root).frames(video, (16, 24), False)))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 6 and all(np.array_equal(r, want) for r in results)
    assert len(npy_files(root)) == 1 and not list(root.glob(".*"))


def test_unwritable_root_falls_back_to_decoding(tmp_path, video):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    cache = VideoCache(blocker / "cache")  # cannot be created
    np.testing.assert_array_equal(cache.frames(video, None, False), read_video(video))
    assert cache.stats()["misses"] == 1 and cache.stats()["bytes_written"] == 0


def test_missing_source_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="expected an existing file, got no such file"):
        VideoCache(tmp_path / "cache").frames(tmp_path / "nope.mp4", None, False)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("VISLAB_CACHE", str(tmp_path / "vc"))
    assert default_cache_dir() == tmp_path / "vc"
    monkeypatch.delenv("VISLAB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "vislab" / "video"


@pytest.mark.parametrize("cached", [True, False])
def test_clip_is_a_writable_copy_of_the_frames(tmp_path, video, cached):
    cache = VideoCache(tmp_path / "cache" if cached else None)
    full = read_video(video, size=(16, 24))
    for _ in range(2):  # a miss, then (cached) a hit
        c = cache.clip(video, [4, 0, 0, 5], (16, 24), False)
        assert type(c) is np.ndarray and c.flags.writeable and c.flags.c_contiguous
        np.testing.assert_array_equal(c, full[[4, 0, 0, 5]])
        c[:] = 0  # the cache is not touched
    np.testing.assert_array_equal(cache.clip(video, np.array([[1, 2]]), (16, 24), False), full[[1, 2]])
    assert cache.stats()["hits"] == (2 if cached else 0)
    with pytest.raises(DataError, match="expected frame 6, got a video of 6 frames"):
        cache.clip(video, [0, 6], (16, 24), False)
