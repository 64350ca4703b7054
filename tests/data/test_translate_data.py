"""Image-to-image data: the pix2pix / CycleGAN folder layouts, the checks that refuse the wrong ones, and the stream's
global-batch rule (two processes see exactly one process's pixels, degradations included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vislab.core.errors import DataError
from vislab.data.translate import TranslateDataConfig, load_translate_data
from vislab.data.translate import degrade as D
from vislab.data.translate.stream import Maker, PairStream, lab_pair, lab_to_image

pytestmark = pytest.mark.usefixtures("one_thread")


def _img(path: Path, h: int, w: int, seed: int, gray: bool = False) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w) if gray else (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


def _cfg(data: str, **kw) -> TranslateDataConfig:
    return TranslateDataConfig(data=data, **{"img_size": 16, "val_split": 0.25, **kw})


def test_paired_folders_pair_by_name_and_refuse_mismatches(tmp_path):
    for i in range(4):
        _img(tmp_path / "p" / "A" / f"{i}.png", 20, 24, i)
        _img(tmp_path / "p" / "B" / f"{i}.jpg", 20, 24, 10 + i)  # extensions may differ
    d = load_translate_data(_cfg(str(tmp_path / "p")), "paired")
    assert (len(d.train_a), len(d.val_a)) == (3, 1) and d.train_a.names == d.train_b.names
    assert tuple(d.train_a.images[0].shape) == (3, 16, 16)  # resized to --img-size (paired default --load-size)
    swapped = load_translate_data(_cfg(str(tmp_path / "p"), direction="BtoA"), "paired")
    assert torch.equal(swapped.train_a.images[0], d.train_b.images[0])

    _img(tmp_path / "p" / "B" / "extra.png", 20, 24, 99)
    with pytest.raises(DataError, match=r"expected paired folders .* 0 name\(s\) only in A/ .* 1 only in B/ \(e.g. 'extra'\)"):
        load_translate_data(_cfg(str(tmp_path / "p")), "paired")
    (tmp_path / "p" / "B" / "extra.png").unlink()
    _img(tmp_path / "p" / "B" / "3.jpg", 20, 30, 5)
    with pytest.raises(DataError, match=r"pair '3': expected A and B images of one size, got 20x24 .* and 20x30"):
        load_translate_data(_cfg(str(tmp_path / "p")), "paired")


def test_side_by_side_and_unpaired_layouts(tmp_path):
    for i in range(3):
        _img(tmp_path / "facades" / "train" / f"{i}.jpg", 16, 32, i)
    _img(tmp_path / "facades" / "val" / "0.jpg", 16, 32, 7)
    d = load_translate_data(_cfg(str(tmp_path / "facades")), "paired")
    assert (len(d.train_a), len(d.val_a)) == (3, 1)
    src = np.asarray(Image.open(tmp_path / "facades" / "val" / "0.jpg"))
    assert torch.equal(d.val_b.images[0], torch.from_numpy(src[:, 16:].copy()).permute(2, 0, 1))  # B is the right half

    for i in range(3):
        _img(tmp_path / "h2z" / "trainA" / f"a{i}.png", 16, 16, i)
    for i in range(5):
        _img(tmp_path / "h2z" / "trainB" / f"b{i}.png", 16, 16, 20 + i)
    u = load_translate_data(_cfg(str(tmp_path / "h2z")), "unpaired")
    assert u.pairing == "unpaired" and len(u.train_a) + len(u.val_a) == 3 and len(u.train_b) + len(u.val_b) == 5
    with pytest.raises(DataError, match=r"expected paired images .* got unpaired folders trainA/ and trainB/; unpaired data: --model cyclegan"):
        load_translate_data(_cfg(str(tmp_path / "h2z")), "paired")
    _img(tmp_path / "odd" / "x.png", 16, 31, 0)
    _img(tmp_path / "odd" / "y.png", 16, 31, 1)
    with pytest.raises(DataError, match="side-by-side AB image of even width"):
        load_translate_data(_cfg(str(tmp_path / "odd")), "paired")


def test_single_images_keep_their_size_and_gray_folders_stay_gray(tmp_path):
    for i in range(4):
        _img(tmp_path / "g" / f"{i}.png", 30 + i, 40, i, gray=True)
    d = load_translate_data(_cfg(str(tmp_path / "g")), "single")
    assert d.train_a.channels == 1 and not d.resized and {tuple(x.shape[-2:]) for x in d.train_a.images} <= {(30, 40), (31, 40), (32, 40), (33, 40)}
    assert load_translate_data(_cfg(str(tmp_path / "g")), "single", want_channels=3).train_a.channels == 3
    with pytest.raises(DataError, match="max-memory-mb"):
        load_translate_data(_cfg(str(tmp_path / "g"), max_memory_mb=0), "single")


@pytest.mark.parametrize("make", [Maker("sr", "realesrgan", 2), Maker("denoise", "poisson", 1, 30.0), Maker("denoise", "jpeg", 1, 0.0), None])
def test_two_processes_see_one_process_pixels(make):
    d = load_translate_data(TranslateDataConfig(data="skimage", img_size=24), "single") if make else \
        load_translate_data(TranslateDataConfig(data="warm2cool", img_size=16, synth_count=12), "unpaired")
    kw = {"make": make, "crop": 24 if make else 16, "batch_size": 4, "train": True, "patches": 2, "unpaired": make is None, "seed": 3}
    b_a, b_b = d.train_a, d.train_b
    one = list(PairStream(b_a, b_b, **kw).epoch(1))
    two = [list(PairStream(b_a, b_b, rank=r, world=2, **kw).epoch(1)) for r in (0, 1)]
    for k, whole in enumerate(one):
        for field in ("a", "b"):
            got = torch.empty_like(getattr(whole, field))
            got[0::2], got[1::2] = getattr(two[0][k], field), getattr(two[1][k], field)
            assert torch.allclose(got, getattr(whole, field), atol=1e-6), (k, field)
    again = list(PairStream(b_a, b_b, **kw).epoch(1))
    assert all(torch.equal(x.a, y.a) for x, y in zip(one, again, strict=True))  # a pure function of (seed, epoch)
    assert not torch.equal(one[0].a, next(iter(PairStream(b_a, b_b, **kw).epoch(2))).a)


def test_degradations():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 32, 32, generator=g)
    lr = D.make_input("sr", "bicubic", 4, x, {})
    assert lr.shape == (3, 3, 8, 8) and torch.equal(lr, D.quantize(lr))
    real = D.make_input("sr", "realesrgan", 2, x, D.draw("sr", "realesrgan", 2, 0, 3, (3, 32, 32), g))
    assert real.shape == (3, 3, 16, 16) and 0 <= float(real.min()) and float(real.max()) <= 1
    noisy = D.make_input("denoise", "gaussian", 1, torch.full((1, 1, 64, 64), 0.5), D.draw("denoise", "gaussian", 1, 25.0, 1, (1, 64, 64), g))
    assert abs(float((noisy - 0.5).std()) * 255 - 25) < 1.5
    blind = D.draw("denoise", "gaussian", 1, 0.0, 100, (1, 4, 4), g)["level"]
    assert 5 <= float(blind.min()) and float(blind.max()) <= 50 and float(blind.std()) > 5
    smooth = D.gaussian_blur(x, torch.full((3,), 2.0))  # JPEG's artefacts grow as its quality falls (on an image, not on noise)
    q10 = D.make_input("denoise", "jpeg", 1, smooth, {"level": torch.full((3,), 10.0)})
    q95 = D.make_input("denoise", "jpeg", 1, smooth, {"level": torch.full((3,), 95.0)})
    assert float((q10 - smooth).abs().mean()) > 2 * float((q95 - smooth).abs().mean())


def test_lab_pair_round_trip():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    L, ab = lab_pair(x)
    assert float(L.min()) >= -1 - 1e-5 and float(L.max()) <= 1 + 1e-5 and float(ab.abs().max()) <= 1.2
    assert torch.allclose((lab_to_image(L, ab) + 1) / 2, x, atol=1e-3)
