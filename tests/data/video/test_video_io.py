"""vislab.data.video.io: what our writers (write_video, the streaming VideoWriter) write reads back (count, size,
pixels within codec tolerance), foreign files and frame folders read (whole or streamed by iter_frames), and every
bad input is a one-line DataError.

(Named test_video_io.py, not test_io.py: tests/core/test_io.py exists and the test folders have no __init__.py, so
two test_io.py basenames cannot be collected in one run.)
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from vislab.core.errors import DataError
from vislab.data.video.io import VideoWriter, frame_files, iter_frames, read_frames, read_video, video_info, write_gif, write_video

# Mean absolute error (0..255) a smooth synthetic clip may lose through a lossy codec at our settings (H.264 / VP9
# constant quality 18 / 30, MPEG-4 qscale 2, all 4:2:0 chroma). Measured about 2.1 (mp4, mkv, avi) and 2.7 (webm).
CODEC_MAE = 3.0


def moving_shapes(t: int = 12, h: int = 64, w: int = 80) -> np.ndarray:
    """A smooth clip ``(t, h, w, 3)`` uint8: drifting colour gradients and a soft red disc moving right."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for i in range(t):
        a = np.empty((h, w, 3), np.float32)
        a[..., 0] = 128 + 60 * np.sin((x + 3 * i) / 10)
        a[..., 1] = 128 + 60 * np.cos((y - 2 * i) / 9)
        a[..., 2] = 100
        a[(x - 20 - 2 * i) ** 2 + (y - h / 2) ** 2 < 100] = (220, 60, 40)
        frames.append(cv2.GaussianBlur(a, (0, 0), 1.5))
    return np.clip(np.stack(frames), 0, 255).round().astype(np.uint8)


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return moving_shapes()


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".mkv", ".webm"])
def test_round_trip_same_count_size_and_pixels(tmp_path, clip, ext):
    p = write_video(tmp_path / f"a{ext}", clip, fps=10)
    info = video_info(p)
    assert (info.frames, info.height, info.width) == (12, 64, 80)
    assert info.fps == pytest.approx(10.0)
    back = read_video(p)
    assert back.shape == clip.shape and back.dtype == np.uint8
    assert mae(back, clip) < CODEC_MAE
    assert mae(back[-1], clip[-1]) < CODEC_MAE  # the last frame too (the encoder was flushed)


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path, clip):
    write_video(tmp_path / "a.mp4", clip, fps=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_float_frames_in_0_1_are_scaled(tmp_path, clip):
    back = read_video(write_video(tmp_path / "f.mp4", clip.astype(np.float32) / 255, fps=10))
    assert mae(back, clip) < CODEC_MAE


def test_avi_written_by_opencv_reads(tmp_path, clip):
    # an .avi not made by us: OpenCV's Motion-JPEG (fourcc MJPG, BGR frames in, full-range yuvj4xxp out)
    path = tmp_path / "cv.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (clip.shape[2], clip.shape[1]))
    assert w.isOpened()
    for f in clip:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()
    info = video_info(path)
    assert (info.frames, info.height, info.width) == (12, 64, 80)
    back = read_video(path)
    assert back.shape == clip.shape
    assert mae(back, clip) < 4.0  # JPEG at OpenCV's default quality (95); measured about 2.2


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_frame_folder_reads_sorted_by_name(tmp_path, clip, ext):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in [5, 0, 11, 3, 7, 1, 9, 2, 10, 4, 8, 6]:  # written out of order: the order is the names', not the writes'
        Image.fromarray(clip[i]).save(folder / f"{i:04d}{ext}", quality=95)
    (folder / "notes.txt").write_text("not a frame")
    assert [p.name for p in frame_files(folder)] == [f"{i:04d}{ext}" for i in range(12)]
    info = video_info(folder)
    assert (info.frames, info.fps, info.height, info.width) == (12, 0.0, 64, 80)
    back = read_video(folder)  # a folder goes through read_video as well as read_frames
    assert back.shape == clip.shape
    assert mae(back, clip) < (0.01 if ext == ".png" else CODEC_MAE)
    np.testing.assert_array_equal(read_frames(folder, indices=[7, 2, 2]), back[[7, 2, 2]])


def test_frame_folder_of_mixed_sizes_is_an_error(tmp_path, clip):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(clip[0]).save(folder / "0001.png")
    Image.fromarray(clip[1, :32, :40]).save(folder / "0002.png")
    with pytest.raises(DataError, match="mixed sizes") as e:
        read_video(folder)
    assert "0002.png" in str(e.value) and "\n" not in str(e.value)


def test_empty_frame_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="expected image files"):
        read_video(tmp_path / "empty")


def test_indices_pick_frames_like_a_full_decode(tmp_path, clip):
    p = write_video(tmp_path / "a.mp4", clip, fps=10)
    full = read_video(p)
    pick = [7, 0, 3, 3, 11]  # any order, repeats allowed
    np.testing.assert_array_equal(read_video(p, indices=pick), full[pick])
    np.testing.assert_array_equal(read_video(p, indices=np.array([2, 4])), full[[2, 4]])
    with pytest.raises(DataError, match="expected frame 12, got a video of 12 frames"):
        read_video(p, indices=[1, 12])


def test_size_and_gray_shapes(tmp_path, clip):
    p = write_video(tmp_path / "a.mp4", clip, fps=10)
    assert read_video(p, size=(24, 40)).shape == (12, 24, 40, 3)
    assert read_video(p, size=32).shape == (12, 32, 32, 3)  # an int: a square
    assert read_video(p, size=(128, 160)).shape == (12, 128, 160, 3)  # upscaling too
    gray = read_video(p, gray=True)
    assert gray.shape == (12, 64, 80, 1) and gray.dtype == np.uint8
    expect = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in read_video(p)])[..., None]
    np.testing.assert_array_equal(gray, expect)
    assert read_video(p, size=(16, 20), gray=True, indices=[5]).shape == (1, 16, 20, 1)


@pytest.mark.parametrize("kind", ["empty", "text", "missing"])
def test_bad_files_are_one_line_data_errors(tmp_path, kind):
    path = tmp_path / "bad.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n" * 20)
    for fn in (read_video, video_info):
        with pytest.raises(DataError) as e:
            fn(path)
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(f"video {path}: expected ")
        assert {"empty": "empty file", "text": "cannot open", "missing": "no such file"}[kind] in msg


def test_gif_loops_and_reads_back(tmp_path, clip):
    # Pillow merges identical consecutive frames into one longer frame: the clip's frames all differ
    p = write_video(tmp_path / "a.gif", clip, fps=10)
    with Image.open(p) as im:
        assert im.n_frames == 12
        assert im.info.get("loop") == 0  # loops forever
        assert im.info.get("duration") == 100  # 10 fps
    back = read_video(p)
    assert back.shape == clip.shape
    assert mae(back, clip) < 4.0  # a 256-colour palette per frame; measured about 1.4
    assert video_info(p).frames == 12
    g = write_gif(tmp_path / "g.gif", clip[:4, ..., :1], fps=4)  # gray frames are written as RGB
    with Image.open(g) as im:
        assert im.n_frames == 4


def test_odd_sizes_are_padded_to_even_for_h264(tmp_path):
    clip = moving_shapes(6, 33, 47)
    p = write_video(tmp_path / "odd.mp4", clip, fps=10)
    info = video_info(p)
    # H.264 4:2:0 needs even sizes: io pads by replicating the last row and column, and the file keeps the padded size
    assert (info.height, info.width) == (34, 48)
    back = read_video(p)
    assert back.shape == (6, 34, 48, 3)
    assert mae(back[:, :33, :47], clip) < CODEC_MAE
    assert mae(back[:, 33, :47], clip[:, 32]) < CODEC_MAE and mae(back[:, :33, 47], clip[:, :, 46]) < CODEC_MAE
    assert read_video(p, size=(33, 47)).shape == (6, 33, 47, 3)  # ask for the size to get it back


@pytest.mark.parametrize("name", ["a.mov", "a.png", "noext"])
def test_write_to_an_unknown_extension_is_an_error(tmp_path, clip, name):
    with pytest.raises(DataError, match="expected one of .mp4, .avi, .mkv, .webm, .gif to write") as e:
        write_video(tmp_path / name, clip)
    assert "\n" not in str(e.value)
    assert not (tmp_path / name).exists()


def test_bad_frame_arrays_are_errors(tmp_path):
    for bad in (np.zeros((0, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 4), np.uint8), np.zeros((8, 8), np.uint8)):
        with pytest.raises(DataError, match="expected frames"):
            write_video(tmp_path / "x.mp4", bad)


# --------------------------------------------------------------------------------------------
# streaming: iter_frames and VideoWriter
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".mp4", ".avi", ".mkv", ".webm"])
def test_iter_frames_yields_what_read_video_returns(tmp_path, clip, ext):
    p = write_video(tmp_path / f"a{ext}", clip, fps=10)
    got = list(iter_frames(p))
    assert len(got) == 12 and all(f.shape == (64, 80, 3) and f.dtype == np.uint8 for f in got)
    np.testing.assert_array_equal(np.stack(got), read_video(p))
    np.testing.assert_array_equal(np.stack(list(iter_frames(p, size=(16, 20), gray=True))), read_video(p, size=(16, 20), gray=True))


def test_iter_frames_of_a_frame_folder(tmp_path, clip):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(clip[i]).save(folder / f"{i:04d}.png")
    np.testing.assert_array_equal(np.stack(list(iter_frames(folder))), clip[:4])
    Image.fromarray(clip[4, :32, :40]).save(folder / "0004.png")
    with pytest.raises(DataError, match="mixed sizes"):
        list(iter_frames(folder))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="expected image files"):
        iter_frames(tmp_path / "empty")  # before the first frame


def test_iter_frames_stops_early_and_closes(tmp_path, clip):
    p = write_video(tmp_path / "a.mp4", clip, fps=10)
    it = iter_frames(p)
    first = next(it)
    it.close()
    np.testing.assert_array_equal(first, read_video(p, indices=[0])[0])
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.parametrize("kind", ["empty", "text", "missing"])
def test_iter_frames_bad_files_are_one_line_data_errors_at_the_call(tmp_path, kind):
    path = tmp_path / "bad.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n" * 20)
    with pytest.raises(DataError) as e:
        iter_frames(path)  # raised by the call, not at the first next()
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"video {path}: expected ")
    assert {"empty": "empty file", "text": "cannot open", "missing": "no such file"}[kind] in msg


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".mkv", ".webm", ".gif"])
def test_video_writer_matches_write_video(tmp_path, clip, ext):
    with VideoWriter(tmp_path / f"s{ext}", fps=10) as w:
        for f in clip:
            w.write(f)
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == []  # nothing in place before close
    assert w.frames == 12 and sorted(p.name for p in tmp_path.iterdir()) == [f"s{ext}"]  # no temporary file left
    info = video_info(w.path)
    assert (info.frames, info.height, info.width) == (12, 64, 80) and info.fps == pytest.approx(10.0)
    ref = read_video(write_video(tmp_path / f"b{ext}", clip, fps=10))
    np.testing.assert_array_equal(read_video(w.path), ref)  # the same encoder, the same settings: the same pixels


def test_video_writer_is_h264_in_mp4(tmp_path, clip):
    import av

    with VideoWriter(tmp_path / "a.mp4", fps=12.5) as w:
        for f in clip[:3]:
            w.write(f)
    with av.open(str(w.path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        assert float(s.average_rate) == pytest.approx(12.5)


def test_video_writer_frame_kinds_and_odd_sizes(tmp_path):
    clip = moving_shapes(4, 33, 47)
    with VideoWriter(tmp_path / "k.mp4", fps=10) as w:
        w.write(clip[0])
        w.write(clip[1].astype(np.float32) / 255)  # float in [0, 1]
        w.write(cv2.cvtColor(clip[2], cv2.COLOR_RGB2GRAY))  # gray (H, W)
        w.write(cv2.cvtColor(clip[3], cv2.COLOR_RGB2GRAY)[..., None])  # gray (H, W, 1)
    back = read_video(w.path)
    assert back.shape == (4, 34, 48, 3)  # padded to even like write_video
    assert mae(back[:2, :33, :47], clip[:2]) < CODEC_MAE
    assert mae(back[2, :33, :47, 0], cv2.cvtColor(clip[2], cv2.COLOR_RGB2GRAY)) < CODEC_MAE


def test_video_writer_errors_leave_no_file(tmp_path, clip):
    with pytest.raises(DataError, match="expected every frame 80x64 like the first, got 40x32 .frame 1.") as e:
        with VideoWriter(tmp_path / "a.mp4", fps=10) as w:
            w.write(clip[0])
            w.write(clip[1, :32, :40])
    assert "\n" not in str(e.value)
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "b.mp4", fps=10) as w:
            w.write(clip[0])
            raise RuntimeError("the caller failed")
    with pytest.raises(DataError, match="expected at least one frame to write, got none"):
        with VideoWriter(tmp_path / "c.mp4", fps=10):
            pass
    with pytest.raises(DataError, match="expected a frame .H, W, 1.3. to write, got shape .8, 8, 4."):
        with VideoWriter(tmp_path / "d.mp4", fps=10) as w:
            w.write(np.zeros((8, 8, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []  # no file and no temporary one
    with pytest.raises(DataError, match="expected one of .mp4"):
        VideoWriter(tmp_path / "a.mov", fps=10)
    with pytest.raises(DataError, match="expected fps > 0 to write, got 0"):
        VideoWriter(tmp_path / "a.mp4", fps=0)
    with VideoWriter(tmp_path / "e.mp4", fps=10) as w:
        w.write(clip[0])
    with pytest.raises(DataError, match="already closed"):
        w.write(clip[1])
    assert w.close() == w.path  # a second close does nothing
