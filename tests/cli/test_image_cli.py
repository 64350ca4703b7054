"""`vislab image`: every command writes a PNG offline on the default samples; bad input = one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def png(path) -> np.ndarray:
    assert path.is_file(), path
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im)


@pytest.fixture
def small_images(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "in"
    d.mkdir()
    for i in range(2):
        Image.fromarray((rng.random((17, 11, 3)) * 255).astype(np.uint8)).save(d / f"im{i}.png")
    return d


def test_apply_chain_on_folder_glob_and_pipeline(cli, tmp_path, small_images):
    code, out, err = cli("image", "apply", str(small_images), "--op", "sobel", "--op", "gamma=0.5",
                         "-o", str(tmp_path / "o1"))
    assert code == 0, err
    a = png(tmp_path / "o1" / "im0.png")
    assert a.shape == (17, 11) and a.dtype == np.uint8 and (tmp_path / "o1" / "im1.png").is_file()
    pipe = tmp_path / "p.yaml"
    pipe.write_text("ops:\n  - gaussian_blur: {ksize: 3}\n  - rotate: 30\n  - kernel=sharpen\n  - resize: [8, 6]\n")
    code, _, err = cli("image", "apply", str(small_images / "*.png"), "--pipeline", str(pipe),
                       "--op", "gaussian_blur:ksize=5,sigma=1.5", "-o", str(tmp_path / "o2"))
    assert code == 0, err
    assert png(tmp_path / "o2" / "im1.png").shape == (8, 6, 3)
    code, _, err = cli("image", "apply", str(small_images / "im0.png"), "--op", "threshold=otsu",
                       "-o", str(tmp_path / "one.png"))
    assert code == 0 and set(np.unique(png(tmp_path / "one.png"))) <= {0, 255}


def test_apply_default_sample_and_ops_list(cli, tmp_path):
    code, out, err = cli("image", "apply", "--op", "canny", "-o", str(tmp_path / "c.png"))
    assert code == 0, err
    assert "wrote" in out
    assert png(tmp_path / "c.png").shape == (512, 512)
    code, out, _ = cli("image", "ops")
    assert code == 0 and "gaussian_blur" in out and "superpixels" in out


@pytest.mark.parametrize("args,name", [
    (["kernels"], "kernels.png"),
    (["compare", "--op", "sobel", "--op", "hsv", "--op", "median_blur=5"], "compare.png"),
    (["flow"], "flow.png"),
    (["superpixels", "-n", "50"], "superpixels.png"),
    (["proposals", "--mode", "single", "--top", "10", "--max-side", "128"], "proposals.png"),
])
def test_every_command_writes_a_png_offline(cli, tmp_path, args, name):
    code, out, err = cli("image", *args, "-o", str(tmp_path / name))
    assert code == 0, err
    a = png(tmp_path / name)
    assert a.ndim == 3 and a.shape[0] > 50 and a.std() > 5


def test_flow_on_two_files(cli, tmp_path, small_images):
    code, _, err = cli("image", "flow", str(small_images / "im0.png"), str(small_images / "im1.png"),
                       "--method", "farneback", "-o", str(tmp_path / "f.png"))
    assert code == 0, err
    assert png(tmp_path / "f.png").ndim == 3


def one_line_error(cli, *args: str, expect: str) -> None:
    code, _, err = cli(*args)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert expect in lines[0], lines[0]


def test_bad_inputs_give_one_line_and_exit_2(cli, tmp_path, small_images):
    one_line_error(cli, "image", "apply", "--op", "sobl", "-o", str(tmp_path), expect="did you mean 'sobel'")
    one_line_error(cli, "image", "apply", str(tmp_path / "missing.png"), "--op", "sobel", expect="missing.png")
    one_line_error(cli, "image", "apply", "--op", "sobel", "sample:astronot", expect="did you mean 'astronaut'")
    one_line_error(cli, "image", "apply", str(small_images), expect="expected at least one --op")
    one_line_error(cli, "image", "apply", str(small_images), "--op", "gamma=0", expect="gamma > 0")
    one_line_error(cli, "image", "apply", str(small_images), "--op", "gamma:foo=1", expect="expected gamma=G (see `vislab image ops`), got foo=1")
    one_line_error(cli, "image", "apply", str(tmp_path / "*.jpg"), "--op", "sobel", expect="expected matching image files")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ops: 3\n")
    one_line_error(cli, "image", "apply", "--pipeline", str(bad), expect="expected a list of ops")
    one_line_error(cli, "image", "flow", str(small_images / "im0.png"), expect="expected two frames")


def test_an_op_argument_of_the_wrong_kind_is_one_line(cli, tmp_path):
    code, out, err = cli("image", "apply", "--op", "gamma=abc", "-o", str(tmp_path / "x.png"))
    assert code == 2 and err.strip() == "error: op 'gamma=abc': expected gamma=G (see `vislab image ops`), got 'abc'"
    assert not (tmp_path / "x.png").exists()


def test_without_out_pictures_go_under_runs_image(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("image", "compare", "--op", "sobel", "--op", "gray")
    assert code == 0, err
    assert (tmp_path / "runs" / "image" / "compare.png").stat().st_size > 1000 and str(Path("runs/image/compare.png")) in out
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]  # nothing else in the working folder
