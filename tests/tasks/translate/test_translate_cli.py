"""``vislab translate``'s commands on folders as users have them, the files each writes, tiled inference, export, and
bad input: one clear line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FAST = ["--progress", "off", "--no-tensorboard", "--threads", "1", "--precision", "fp32", "--sample-every", "-1"]
pytestmark = pytest.mark.usefixtures("one_thread")


def _photos(root: Path, n: int = 4, size: tuple[int, int] = (64, 80)) -> Path:
    import skimage.data as sk

    root.mkdir(parents=True, exist_ok=True)
    src = [sk.astronaut(), sk.coffee(), sk.chelsea(), sk.rocket()]
    for i in range(n):
        Image.fromarray(src[i % 4]).resize(size[::-1]).save(root / f"p{i}.png")
    return root


def train(cli, tmp_path: Path, name: str, *args: str) -> Path:
    code, out, err = cli("translate", "train", *FAST, *args, "--out", str(tmp_path), "--name", name)
    assert code == 0, err
    assert "done" in out
    return tmp_path / "translate" / name


def test_super_resolution_commands_tiles_and_export(tmp_path, cli):
    data = _photos(tmp_path / "photos")
    run = train(cli, tmp_path, "sr", "--model", "edsr", "--data", str(data), "--scale", "2", "--img-size", "32", "--width", "8", "--blocks", "1",
                "--epochs", "1", "--patches", "2", "--batch-size", "4", "--sample-every", "1", "--val-split", "0.25")
    for f in ("report.html", "examples.png", "progress.gif", "losses.png", "dynamics.csv"):
        assert (run / f).is_file(), f
    code, out, err = cli("translate", "eval", str(run))
    assert code == 0, err
    assert "Y channel: PSNR" in out and "bicubic" in out and (run / "eval" / "per_image.csv").is_file()
    m = json.loads((run / "eval" / "metrics.json").read_text())
    assert m["psnr_y"] > 20 and "lpips_note" in m

    big = tmp_path / "big.png"
    Image.fromarray(np.asarray(Image.open(data / "p0.png").resize((150, 130)))).save(big)
    code, _, err = cli("translate", "predict", str(run), str(big), "--out", str(tmp_path / "whole"))
    assert code == 0, err
    code, _, err = cli("translate", "predict", str(run), str(big), "--out", str(tmp_path / "tiled"), "--tile", "48", "--overlap", "16")
    assert code == 0, err
    whole, tiled = (np.asarray(Image.open(tmp_path / d / "big.png")).astype(int) for d in ("whole", "tiled"))
    assert whole.shape == tiled.shape == (260, 300, 3)
    assert np.abs(whole - tiled).max() <= 1  # the receptive field fits in the overlap: equal up to 8-bit rounding

    code, out, err = cli("translate", "export", str(run), "--format", "onnx")
    assert code == 0, err
    assert (run / "export" / "generator.onnx").is_file() and "max |diff|" in out


def test_paired_and_unpaired_folders(tmp_path, cli):
    from vislab.data.translate.synthetic import edges2shapes, warm2cool

    a, b = edges2shapes(12, 32, seed=1)
    for i in range(12):
        for side, arr in (("A", a), ("B", b)):
            (tmp_path / "pairs" / side).mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr[i]).save(tmp_path / "pairs" / side / f"{i}.png")
    run = train(cli, tmp_path, "p2p", "--model", "pix2pix", "--data", str(tmp_path / "pairs"), "--img-size", "32", "--width", "4", "--blocks", "3",
                "--epochs", "1", "--batch-size", "4")
    code, out, err = cli("translate", "predict", str(run), str(tmp_path / "pairs" / "A" / "0.png"))
    assert code == 0, err
    assert (run / "predict" / "0.png").is_file()

    wa, wb = warm2cool(8, 32, seed=2)
    for d, arr in (("trainA", wa), ("trainB", wb)):
        (tmp_path / "u" / d).mkdir(parents=True)
        for i, x in enumerate(arr):
            Image.fromarray(x).save(tmp_path / "u" / d / f"{i}.png")
    run = train(cli, tmp_path, "cyc", "--model", "cyclegan", "--data", str(tmp_path / "u"), "--img-size", "32", "--width", "4", "--blocks", "1",
                "--d-layers", "1", "--epochs", "1", "--batch-size", "4", "--val-split", "0.25")
    code, out, err = cli("translate", "eval", str(run))
    assert code == 0, err
    assert "cycle error A->B->A" in out
    code, _, err = cli("translate", "predict", str(run), str(tmp_path / "u" / "trainB" / "0.png"), "--direction", "BtoA")
    assert code == 0, err


def test_colorize_and_denoise_on_photos(tmp_path, cli):
    data = _photos(tmp_path / "photos")
    run = train(cli, tmp_path, "col", "--model", "colorize", "--data", str(data), "--img-size", "32", "--width", "4", "--epochs", "1",
                "--patches", "2", "--batch-size", "4", "--val-split", "0.25")
    code, out, err = cli("translate", "eval", str(run))
    assert code == 0, err
    assert "mean-colour baseline" in out and "colourfulness" in out
    code, _, err = cli("translate", "predict", str(run), str(data / "p1.png"))
    assert code == 0, err
    assert np.asarray(Image.open(run / "predict" / "p1.png")).shape == (64, 80, 3)
    run = train(cli, tmp_path, "dn", "--model", "dncnn", "--data", str(data), "--img-size", "32", "--width", "4", "--blocks", "3", "--epochs", "1",
                "--patches", "2", "--batch-size", "4", "--noise", "jpeg", "--noise-level", "20", "--val-split", "0.25")
    code, out, err = cli("translate", "predict", str(run), str(data / "p1.png"), "--degrade")
    assert code == 0, err
    assert (run / "predict" / "p1_input.png").is_file() and (run / "predict" / "p1.png").is_file()


def _bad(cli, tmp_path, *args: str) -> str:
    code, out, err = cli("translate", "train", *FAST, "--epochs", "1", "--out", str(tmp_path), "--overwrite", *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_bad_inputs_are_one_clear_line(tmp_path, cli):
    for i in range(3):
        for side in "AB":
            (tmp_path / "mis" / side).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32)).save(tmp_path / "mis" / "A" / f"a{i}.png")
        Image.new("RGB", (32, 32)).save(tmp_path / "mis" / "B" / f"b{i}.png")
        (tmp_path / "size" / "A").mkdir(parents=True, exist_ok=True)
        (tmp_path / "size" / "B").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32)).save(tmp_path / "size" / "A" / f"{i}.png")
        Image.new("RGB", (32, 40 if i == 1 else 32)).save(tmp_path / "size" / "B" / f"{i}.png")
        (tmp_path / "unp" / "trainA").mkdir(parents=True, exist_ok=True)
        (tmp_path / "unp" / "trainB").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32)).save(tmp_path / "unp" / "trainA" / f"{i}.png")
        Image.new("RGB", (32, 32)).save(tmp_path / "unp" / "trainB" / f"{i}.png")
    assert "expected paired folders" in _bad(cli, tmp_path, "--model", "pix2pix", "--data", str(tmp_path / "mis"))
    assert "pair '1': expected A and B images of one size" in _bad(cli, tmp_path, "--model", "pix2pix", "--data", str(tmp_path / "size"))
    assert "got unpaired folders trainA/ and trainB/" in _bad(cli, tmp_path, "--model", "pix2pix", "--data", str(tmp_path / "unp"))
    assert "--scale 3: expected a scale that divides the crop size --img-size 64" in _bad(cli, tmp_path, "--model", "edsr", "--data", "skimage",
                                                                                           "--scale", "3", "--img-size", "64")
    assert "--noise jpeg: expected --model dncnn" in _bad(cli, tmp_path, "--model", "edsr", "--data", "skimage", "--noise", "jpeg")
    assert "not found" in _bad(cli, tmp_path, "--model", "edsr", "--data", str(tmp_path / "nowhere"))
