"""Image synthesis learns, on scikit-learn's digits (offline, 1797 images):

* a VAE reconstructs held-out digits far better than the mean image, and its latent walks are continuous and end
  at the reconstructions of their end images;
* DCGAN and DDPM samples are judged by a digits classifier trained in the test (the *domain* extractor): confident,
  of every class (the mode-collapse check), and with an FID far below that of noise and of the untrained model;
* a conditional VAE draws the class it is asked for.

Small images (8-16 px), one thread, a few epochs: each test trains in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vislab.core.config import from_dict
from vislab.tasks import generate

QUIET = {"progress": "off", "tensorboard": False, "report": False, "threads": 1, "precision": "fp32", "sample_every": -1}


def train(tmp_path: Path, name: str, **kw) -> Path:
    return generate.train(from_dict(generate.GenConfig, {"out": str(tmp_path), "name": name, **QUIET, **kw}))


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory) -> str:
    """A digits classifier at 16 px (~99% test accuracy in 4 epochs): the domain feature extractor of these tests."""
    from vislab.tasks import classify

    out = tmp_path_factory.mktemp("clf")
    cfg = from_dict(classify.ClassifyConfig,
                    {"data": "digits", "img_size": 16, "epochs": 4, "out": str(out), "name": "clf", "progress": "off", "tensorboard": False,
                     "report": False, "threads": 1})
    return str(classify.train(cfg))


def evaluate(run: Path, extractor: str, **kw) -> dict:
    return generate.evaluate(from_dict(generate.GenEvalConfig, {"checkpoint": str(run), "extractor": extractor, "n": 500, **kw}))


def untrained_fid(run: Path, extractor: str) -> float:
    """FID of the same architecture with its initial weights (the run's seed), in the same features."""
    from vislab.engine.checkpoint import load
    from vislab.metrics.generative import fid
    from vislab.models.registry import create_model
    from vislab.tasks.generate.features import load_extractor
    from vislab.tasks.generate.infer import _default_split, generate_images

    _, state = load(run / "checkpoints" / "best.safetensors")
    torch.manual_seed(0)
    model = create_model(state["model"], **state["model_args"]).eval()
    model = dict(model) if isinstance(model, torch.nn.ModuleDict) else model
    ex = load_extractor(extractor)
    fake = generate_images(model, state, 500, None, 0, torch.device("cpu"), 250, steps=20, sampler="ddim") if state["kind"] == "diffusion" \
        else generate_images(model, state, 500, None, 0, torch.device("cpu"), 250)
    src = _default_split(state)
    from vislab.data.generate import scale

    real = scale(torch.stack([src.get(i) for i in range(len(src))]))
    return fid(ex(real)[0], ex(fake)[0])


def test_vae_reconstructs_held_out_digits_and_walks_continuously(tmp_path, one_thread):
    run = train(tmp_path, "vae", model="vae", data="digits", img_size=16, epochs=8, batch_size=32, lr=1e-3, momentum=0.9)
    s = json.loads((run / "run.json").read_text())["summary"]
    # the baseline: every held-out digit "reconstructed" as the mean training image
    from vislab.data.generate import GenDataConfig, load_gen_data, scale
    from vislab.tasks.generate.task import psnr_ssim

    splits = load_gen_data(GenDataConfig(data="digits", img_size=16))
    val = scale(splits.val.images)
    mean_psnr = float(psnr_ssim(scale(splits.train.images).mean(0, keepdim=True).expand_as(val), val)[0].mean())
    assert s["final_val_psnr"] > 16.0 and s["final_val_psnr"] > mean_psnr + 4.0, (s["final_val_psnr"], mean_psnr)
    assert s["final_val_elbo"] < 0 and s["final_val_kl"] > 1.0  # a real ELBO in nats; the code carries information

    r = generate.interpolate(from_dict(generate.InterpolateConfig, {"checkpoint": str(run), "steps": 10, "pairs": 4, "device": "cpu"}))
    frames, ends = r["frames"], r["end_images"]  # (4, 10, 1, 16, 16); the 8 validation images the walks start and end at
    model, state, _ = generate.infer.load(str(run), "cpu")
    with torch.no_grad():
        recon = model.decode(model.encode(ends)[0])
    torch.testing.assert_close(frames[:, 0], recon[0::2], atol=1e-5, rtol=0)  # the end frames are the end points decoded
    torch.testing.assert_close(frames[:, -1], recon[1::2], atol=1e-5, rtol=0)
    steps = (frames[:, 1:] - frames[:, :-1]).flatten(2).norm(dim=2)  # (4, 9) distances between adjacent frames
    whole = (frames[:, -1] - frames[:, 0]).flatten(1).norm(dim=1)
    assert bool((steps.max(1).values <= 0.45 * whole).all()), (steps, whole)  # no jumps: no step is near the whole way
    assert Path(r["gif"]).stat().st_size > 0 and Path(r["png"]).is_file()


def test_dcgan_draws_confident_digits_of_every_class_far_better_than_baselines(tmp_path, one_thread, digits_classifier):
    run = train(tmp_path, "dcgan", model="dcgan", data="digits", img_size=16, epochs=10, batch_size=32, lr=5e-4)
    r = evaluate(run, digits_classifier)
    assert r["extractor"] == f"classify:{digits_classifier}"
    # mode collapse would show as few classes, a peaked class histogram
    assert r["class_coverage"] >= 0.9 and r["class_entropy"] >= 0.85 and r["mean_confidence"] >= 0.45, r
    base = untrained_fid(run, digits_classifier)
    assert r["fid"] < 0.25 * r["noise_fid"] and r["fid"] < 0.25 * base, (r["fid"], r["noise_fid"], base)
    assert r["precision"] > 0.5 and r["recall"] > 0.4


def test_ddpm_draws_digits_of_every_class_far_better_than_baselines(tmp_path, one_thread, digits_classifier):
    # 8 px (the digits' own resolution), 200 cosine-scheduled steps: measured FID 6.5 (noise 60.6), every class, entropy 0.87
    run = train(tmp_path, "ddpm", model="ddpm", data="digits", img_size=8, mults="1,2", width=32, timesteps=200, schedule="cosine",
                epochs=7, batch_size=32, lr=2e-3, momentum=0.9, ema_decay=0.99)
    r = evaluate(run, digits_classifier, steps=50, sampler="ddim")
    assert r["class_coverage"] >= 0.9 and r["class_entropy"] >= 0.75 and r["mean_confidence"] >= 0.4, r
    base = untrained_fid(run, digits_classifier)
    assert r["fid"] < 0.3 * r["noise_fid"] and r["fid"] < 0.3 * base, (r["fid"], r["noise_fid"], base)


def test_conditional_vae_draws_the_class_it_is_asked_for(tmp_path, one_thread, digits_classifier):
    run = train(tmp_path, "cvae", model="cvae", data="digits", img_size=16, epochs=8, batch_size=32, lr=1e-3, momentum=0.9)
    r = evaluate(run, digits_classifier)
    # the share of samples the classifier puts in the class they were drawn for: measured 0.64 (chance: 0.1)
    assert r["class_match"] >= 0.5, r
    s = generate.sample(from_dict(generate.SampleConfig, {"checkpoint": str(run), "n": 40, "class_": 7, "device": "cpu"}))
    assert s["n"] == 40 and len(list(Path(s["images"]).glob("*.png"))) == 40
