"""Image-to-image models learn, each against its baseline on held-out images:

* super-resolution x2 (EDSR-small, scikit-image's photos; astronaut and chelsea held out): >= 0.5 dB over bicubic (Y);
* colorization (U-Net, L1): ab error <= 0.85 x the mean-colour baseline's;
* pix2pix on edges2shapes (outline -> filled shape in its kind's colour): L1 <= 0.65 x that of an all-black guess
  (the background: the best constant), and the shapes are filled (the inside of a held-out shape gets its colour);
* CycleGAN on warm2cool (unpaired palettes): a domain classifier trained here calls >= 90% of G_AB(A) "B", and the
  cycle error A -> B -> A stays below 0.08 (mean |x - x_back| on 0..1).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vislab.core.config import from_dict
from vislab.tasks import translate

pytestmark = pytest.mark.usefixtures("one_thread")
QUIET = {"progress": "off", "tensorboard": False, "report": False, "threads": 1, "precision": "fp32", "sample_every": -1, "scheduler": "constant"}


def _train(tmp_path, name: str, **kw):
    run = translate.train(from_dict(translate.TranslateConfig, {**QUIET, "out": str(tmp_path), "name": name, **kw}))
    return run, json.loads((run / "run.json").read_text())["summary"]


def test_super_resolution_beats_bicubic(tmp_path):
    _, s = _train(tmp_path, "sr", model="edsr", data="skimage", scale=2, img_size=48, width=32, blocks=2, epochs=1, batch_size=16, lr=2e-3,
                  patches=320, eval_size=128)
    assert s["final_val_psnr_y"] >= s["final_val_base_psnr_y"] + 0.5, s
    assert s["final_val_ssim_y"] > s["final_val_base_ssim_y"]


def test_colorization_beats_the_mean_colour(tmp_path):
    _, s = _train(tmp_path, "col", model="colorize", data="skimage", img_size=32, width=16, epochs=1, batch_size=16, lr=2e-3, patches=200,
                  eval_size=128)
    assert s["final_val_ab_error"] <= 0.85 * s["final_val_base_ab_error"], s


def test_pix2pix_fills_the_outlines(tmp_path):
    from vislab.data.translate import TranslateDataConfig, load_translate_data
    from vislab.tasks.translate.infer import load

    run, s = _train(tmp_path, "p2p", model="pix2pix", data="edges2shapes", synth_count=400, img_size=32, width=16, blocks=3, epochs=12,
                    batch_size=8, lr=2e-3)
    d = load_translate_data(TranslateDataConfig(data="edges2shapes", img_size=32, synth_count=400), "paired")
    target = torch.stack(d.val_b.images).float() / 255
    black = float(target.mean())  # L1 of an all-black guess, on the 0..1 scale
    assert s["final_val_l1"] <= 0.65 * black, (s["final_val_l1"], black)
    models, _, _ = load(str(run))
    with torch.no_grad():
        out = (models["G"](torch.stack(d.val_a.images).float() / 127.5 - 1).clamp(-1, 1) + 1) / 2
    inside = target.amax(1, keepdim=True) > 0.5  # the filled shapes of the targets
    assert float((out - target).abs().mean(1, keepdim=True)[inside].mean()) < 0.3  # their colour, not the black of an outline's inside


def test_cyclegan_changes_the_palette_and_keeps_the_shapes(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from vislab.data.translate import TranslateDataConfig, load_translate_data
    from vislab.tasks.translate.infer import load

    run, s = _train(tmp_path, "cyc", model="cyclegan", data="warm2cool", synth_count=200, img_size=32, width=8, blocks=2, d_layers=2, epochs=4,
                    batch_size=4, lr=2e-3)
    d = load_translate_data(TranslateDataConfig(data="warm2cool", img_size=32, synth_count=200), "unpaired")

    def feats(x: torch.Tensor) -> np.ndarray:  # 8 x 8 colour thumbnails
        return torch.nn.functional.avg_pool2d(x.float(), 4).flatten(1).numpy()

    xa, xb = torch.stack(d.train_a.images).float() / 255, torch.stack(d.train_b.images).float() / 255
    clf = LogisticRegression(max_iter=2000).fit(np.concatenate([feats(xa), feats(xb)]), [0] * len(xa) + [1] * len(xb))
    models, _, _ = load(str(run))
    va = torch.stack(d.val_a.images).float() / 127.5 - 1
    with torch.no_grad():
        fake_b = models["G_AB"](va)
        back = models["G_BA"](fake_b)
    assert clf.score(feats((va + 1) / 2), [0] * len(va)) == 1.0  # the classifier knows the real domains apart
    assert clf.predict(feats((fake_b.clamp(-1, 1) + 1) / 2)).mean() >= 0.9
    assert float(((back.clamp(-1, 1) - va).abs() / 2).mean()) < 0.08 and s["final_val_cycle_a"] < 0.08
