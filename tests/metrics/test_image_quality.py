"""Image-to-image metrics against their references: skimage's PSNR, SSIM and Lab, hand computations for the rest."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from skimage import color, data, metrics

from vislab.core.errors import ShapeError
from vislab.metrics.image_quality import (
    ImageQuality,
    ab_error,
    colorfulness,
    cycle_error,
    lab_to_rgb,
    load_lpips,
    lpips_status,
    psnr,
    rgb_to_lab,
    rgb_to_y,
    ssim,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _t(x: np.ndarray) -> torch.Tensor:
    """(H, W, C) or (H, W) numpy -> (1, C, H, W) fp32 torch."""
    x = x[..., None] if x.ndim == 2 else x
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))).float()[None]


def _np(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).double().numpy()


def _pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    astro = data.astronaut()[100:164, 180:260].astype(np.float64) / 255  # a face: edges, skin, smooth background
    noisy = np.clip(astro + rng.normal(0, 0.05, astro.shape), 0, 1)
    return {"random": (rng.random((40, 48, 3)), rng.random((40, 48, 3))), "astronaut": (astro, noisy)}


def _y(x: np.ndarray) -> np.ndarray:
    return color.rgb2ycbcr(x)[..., 0] / 255  # skimage's Y is in 16..235


@pytest.mark.parametrize("name", ["random", "astronaut"])
def test_psnr_matches_skimage(name):
    x, y = _pairs()[name]
    assert psnr(_t(x), _t(y)).item() == pytest.approx(metrics.peak_signal_noise_ratio(x, y, data_range=1), abs=1e-4)
    ref_y = metrics.peak_signal_noise_ratio(_y(x), _y(y), data_range=1)
    assert psnr(_t(x), _t(y), y_channel=True).item() == pytest.approx(ref_y, abs=1e-4)
    assert psnr(_t(x) * 255, _t(y) * 255, data_range=255.0).item() == pytest.approx(psnr(_t(x), _t(y)).item(), abs=1e-3)


@pytest.mark.parametrize("name", ["random", "astronaut"])
def test_ssim_matches_skimage(name):
    x, y = _pairs()[name]
    # Both average the map over its valid part (the border of (win - 1) / 2 pixels cropped): differences are fp32
    # rounding, measured below 1e-5 (torchmetrics' own mean, over the reflect-padded border too, is 0.017 off here).
    ref = metrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=1, channel_axis=2)
    assert ssim(_t(x), _t(y)).item() == pytest.approx(ref, abs=1e-4)
    ref = metrics.structural_similarity(x, y, win_size=7, use_sample_covariance=False, data_range=1, channel_axis=2)
    assert ssim(_t(x), _t(y), gaussian=False, win_size=7).item() == pytest.approx(ref, abs=1e-4)
    ref = metrics.structural_similarity(_y(x), _y(y), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=1)
    assert ssim(_t(x), _t(y), y_channel=True).item() == pytest.approx(ref, abs=1e-4)


def test_batch_is_per_image_and_identical_images():
    x1, y1 = _pairs()["astronaut"]
    a = torch.cat([_t(x1), _t(x1)])
    b = torch.cat([_t(y1), _t(x1)])
    p, s = psnr(a, b), ssim(a, b)
    assert p.shape == s.shape == (2,)
    assert p[1].item() == pytest.approx(100.0) and math.isfinite(p[1].item())  # the cap, not inf
    assert s[1].item() == pytest.approx(1.0, abs=1e-6)
    assert p[0].item() == pytest.approx(psnr(_t(x1), _t(y1)).item())


def test_crop_border():
    x, y = _pairs()["astronaut"]
    ref = metrics.peak_signal_noise_ratio(x[4:-4, 4:-4], y[4:-4, 4:-4], data_range=1)
    assert psnr(_t(x), _t(y), crop_border=4).item() == pytest.approx(ref, abs=1e-4)
    ref = metrics.structural_similarity(x[4:-4, 4:-4], y[4:-4, 4:-4], gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=1, channel_axis=2)
    assert ssim(_t(x), _t(y), crop_border=4).item() == pytest.approx(ref, abs=1e-4)
    with pytest.raises(ShapeError):
        psnr(_t(x), _t(y), crop_border=40)


def test_y_channel():
    x, _ = _pairs()["random"]
    assert np.abs(_np(rgb_to_y(_t(x)))[..., 0] - _y(x)).max() < 1e-5
    gray = torch.rand(2, 1, 8, 8)
    assert torch.equal(rgb_to_y(gray), gray)
    assert psnr(gray, gray * 0.9, y_channel=True).tolist() == psnr(gray, gray * 0.9).tolist()
    with pytest.raises(ShapeError):
        rgb_to_y(torch.rand(1, 2, 8, 8))


def test_ssim_small_images_shrink_the_window():
    a = torch.rand(2, 3, 5, 9, generator=torch.Generator().manual_seed(1))
    for gaussian in (True, False):
        s = ssim(a, (a * 0.8).clamp(0, 1), gaussian=gaussian)
        assert s.shape == (2,) and torch.isfinite(s).all() and (s < 1).all()
        assert ssim(a, a, gaussian=gaussian).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    # a 5 x 5 uniform window on a 5 x 9 image equals skimage's with win_size=5
    x, y = a[0].permute(1, 2, 0).double().numpy(), (a[0] * 0.8).permute(1, 2, 0).double().numpy()
    ref = metrics.structural_similarity(x, y, win_size=5, use_sample_covariance=False, data_range=1, channel_axis=2)
    assert ssim(a[:1], a[:1] * 0.8, gaussian=False, win_size=11).item() == pytest.approx(ref, abs=1e-4)
    with pytest.raises(ValueError, match="odd"):
        ssim(a, a, gaussian=False, win_size=4)


def test_ssim_under_autocast_is_fp32():
    x, y = _pairs()["astronaut"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s = ssim(_t(x), _t(y))
    assert s.dtype == torch.float32 and s.item() == pytest.approx(ssim(_t(x), _t(y)).item(), abs=1e-6)


def test_lab_matches_skimage_and_round_trips():
    for x, y in _pairs().values():
        for img in (x, y):
            lab = rgb_to_lab(_t(img))
            assert np.abs(_np(lab) - color.rgb2lab(img)).max() < 1e-3
            assert np.abs(_np(lab_to_rgb(lab)) - img).max() < 1e-4
            assert np.abs(_np(lab_to_rgb(_t(color.rgb2lab(img)))) - color.lab2rgb(color.rgb2lab(img))).max() < 1e-4
    rng = np.random.default_rng(2)  # arbitrary Lab, much of it out of gamut: the same clipping as skimage
    lab = np.concatenate([rng.uniform(0, 100, (16, 16, 1)), rng.uniform(-110, 110, (16, 16, 2))], 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about the negative Z it clips
        ref = color.lab2rgb(lab)
    assert np.abs(_np(lab_to_rgb(_t(lab))) - ref).max() < 1e-4
    white = rgb_to_lab(torch.ones(1, 3, 1, 1)).flatten()
    assert white.tolist() == pytest.approx([100.0, 0.0, 0.0], abs=1e-2)


def test_lab_is_differentiable():
    x = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(3))
    x[0, :, 0, 0] = 0.0  # black: the linear branches
    x.requires_grad_(True)
    rgb_to_lab(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    lab = rgb_to_lab(x.detach()).requires_grad_(True)
    lab_to_rgb(lab).sum().backward()
    assert torch.isfinite(lab.grad).all()


def test_ab_error():
    lab = rgb_to_lab(torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(4)))
    assert ab_error(lab, lab).tolist() == [0.0, 0.0]
    shifted = lab + torch.tensor([7.0, 3.0, 4.0]).view(1, 3, 1, 1)  # L is ignored, |(3, 4)| = 5
    assert ab_error(shifted, lab).tolist() == pytest.approx([5.0, 5.0], abs=1e-4)
    assert ab_error(shifted[:, 1:], lab[:, 1:]).tolist() == pytest.approx([5.0, 5.0], abs=1e-4)
    with pytest.raises(ShapeError):
        ab_error(lab, lab[:, 1:])


def test_colorfulness():
    gray = torch.rand(1, 1, 8, 8).expand(-1, 3, -1, -1)
    assert colorfulness(gray).tolist() == [0.0]
    assert colorfulness(torch.rand(2, 1, 8, 8)).tolist() == [0.0, 0.0]
    x, _ = _pairs()["astronaut"]
    img = _t(x)
    lab = rgb_to_lab(img)
    desat = lab_to_rgb(torch.cat([lab[:, :1], lab[:, 1:] * 0.3], 1))
    assert colorfulness(img).item() > colorfulness(desat).item() > 0
    px = x * 255  # the paper's formula by hand, in numpy
    rg, yb = px[..., 0] - px[..., 1], 0.5 * (px[..., 0] + px[..., 1]) - px[..., 2]
    ref = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    assert colorfulness(img).item() == pytest.approx(ref, rel=1e-5)


def test_cycle_error():
    x = torch.rand(2, 3, 4, 4)
    assert cycle_error(x, x).tolist() == [0.0, 0.0]
    assert cycle_error(x, x + 0.25).tolist() == pytest.approx([0.25, 0.25], abs=1e-6)
    with pytest.raises(ShapeError):
        cycle_error(x, x[:, :1])


def _no_download(*args, **kwargs):
    raise AssertionError("vislab tried to download weights")


def test_lpips_without_weights_is_none(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    assert load_lpips("alex") is None
    line = lpips_status("alex")
    assert "alexnet-owt-7be5be79.pth" in line and str(tmp_path / "checkpoints") in line
    assert "vgg16-397923af.pth" in lpips_status("vgg")
    with pytest.raises(ValueError, match="net"):
        lpips_status("resnet")


def test_lpips_with_weights_on_disk_runs_offline(tmp_path, monkeypatch):
    """A (random) squeezenet backbone file in the hub dir: LPIPS is built from disk, nothing is fetched."""
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    (tmp_path / "checkpoints").mkdir()
    torch.manual_seed(0)
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), tmp_path / "checkpoints" / "squeezenet1_1-b8a52dc0.pth")
    assert "ready" in lpips_status("squeeze")
    lpips = load_lpips("squeeze")
    assert lpips is not None
    a = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    d = lpips(a, torch.cat([a[:1], a[1:].flip(-1)]))
    assert d.shape == (2,) and d[0].item() == pytest.approx(0.0, abs=1e-6) and d[1].item() > 0
    assert lpips(a[:1], a[:1].flip(-1)).shape == (1,)


def test_image_quality_accumulates_means():
    q = ImageQuality()
    q.update({"psnr": torch.tensor([30.0, 32.0]), "ssim": torch.tensor([0.5, 0.7])})
    q.update({"psnr": torch.tensor([34.0]), "ssim": torch.tensor([0.9]), "lpips": torch.tensor([0.2])})
    q.sync()
    q.sync()  # reduces the local sums: twice is the same as once
    out = q.compute()
    assert out["psnr"] == pytest.approx(32.0) and out["ssim"] == pytest.approx(0.7) and out["lpips"] == pytest.approx(0.2)
    empty = ImageQuality(names=["psnr"])
    empty.sync()
    assert math.isnan(empty.compute()["psnr"])
