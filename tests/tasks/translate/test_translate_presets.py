"""Every ``--model`` the learning tests do not train (SRGAN with its perceptual loss, the colorization GAN, SRCNN,
SRResNet, the L1-only pix2pix, DnCNN on JPEG artefacts, SR on Real-ESRGAN-style inputs) runs through the engine: each
of its losses is logged, finite and trains the networks it should, and ``eval`` reproduces the run's last numbers."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from vislab.core.config import from_dict
from vislab.tasks import translate

pytestmark = pytest.mark.usefixtures("one_thread")
QUIET = {"progress": "off", "tensorboard": False, "report": False, "threads": 1, "precision": "fp32", "sample_every": -1,
         "epochs": 1, "batch_size": 4, "width": 8, "lr": 1e-3}
SR = {"data": "skimage", "img_size": 16, "patches": 2, "blocks": 1, "eval_size": 32}
CASES = {
    "srgan": ({**SR, "model": "srgan", "features": "random", "d_layers": 1}, {"pixel", "perceptual", "adv", "loss_d"}),
    "srcnn": ({**SR, "model": "srcnn"}, {"pixel"}),
    "srresnet": ({**SR, "model": "srresnet"}, {"pixel"}),
    "sr_realesrgan": ({**SR, "model": "edsr", "degrade": "realesrgan"}, {"pixel"}),
    "colorize_gan": ({**SR, "model": "colorize_gan", "blocks": 2, "d_layers": 1}, {"pixel", "adv", "loss_d"}),
    "paired_l1": ({"model": "paired_l1", "data": "edges2shapes", "img_size": 16, "synth_count": 24, "blocks": 2}, {"pixel"}),
    "dncnn_jpeg": ({**SR, "model": "dncnn", "data": "skimage_gray", "noise": "jpeg", "noise_level": 20.0, "blocks": 3}, {"pixel"}),
}
MONITOR = {"srgan": "psnr_y", "srcnn": "psnr_y", "srresnet": "psnr_y", "sr_realesrgan": "psnr_y", "colorize_gan": "ab_error",
           "paired_l1": "l1", "dncnn_jpeg": "psnr"}


@pytest.mark.parametrize("case", list(CASES))
def test_every_model_trains_logs_its_losses_and_evaluates(case, tmp_path):
    opts, losses = CASES[case]
    run = translate.train(from_dict(translate.TranslateConfig, {**QUIET, **opts, "out": str(tmp_path), "name": case}))
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    logged = {k[len("train_"):] for k in rows[-1] if k.startswith("train_") and rows[-1][k] != ""}
    assert losses <= logged, (case, logged)
    assert all(math.isfinite(float(rows[-1][f"train_{k}"])) for k in losses)
    summary = json.loads((run / "run.json").read_text())["summary"]
    key = MONITOR[case]
    assert math.isfinite(summary[f"final_val_{key}"])
    # the checkpoint holds the critic too when there is one, and eval reproduces the run's own validation number
    from safetensors import safe_open

    with safe_open(str(run / "checkpoints" / "best.safetensors"), "pt") as f:
        nets = {k.split(".")[1] for k in f.keys() if k.startswith("model.")}
    assert nets == ({"G", "D"} if "adv" in losses else {"G"}), nets
    res = translate.evaluate(from_dict(translate.TranslateEvalConfig, {"checkpoint": str(run), "out": str(tmp_path / "ev")}))
    assert res[key] == pytest.approx(summary[f"final_val_{key}"], rel=1e-4, abs=1e-4), (res, summary)


def test_srgan_perceptual_loss_moves_the_generator(tmp_path):
    """The perceptual term alone (pixel and adversarial weights 0) changes the generator: its gradient reaches G."""
    from vislab.tasks.translate.task import Perceptual

    p = Perceptual("random", torch.device("cpu"))
    assert p.layers and set(p.layers) <= set(p.net.default_content)
    x = torch.rand(2, 3, 32, 32, requires_grad=True) * 2 - 1
    x.retain_grad()
    y = torch.rand(2, 3, 32, 32) * 2 - 1
    loss = p(x, y)
    assert loss.shape == (2,) and (loss > 0).all()
    loss.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert float(p(y, y).abs().max()) == 0.0
