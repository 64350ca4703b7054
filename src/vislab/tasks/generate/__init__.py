"""Image synthesis: ``vislab generate train | sample | interpolate | reconstruct | denoise | eval | export``.

The ladder of the courses behind one command: convolutional and denoising autoencoders, the VAE (and its
class-conditional form), the fully connected GAN, DCGAN and its class-conditional form, WGAN with weight clipping
and WGAN-GP, and denoising diffusion (DDPM, DDIM sampling, classifier-free guidance) -- on digits, shapes, or a
folder of your images. Honest numbers: FID / KID / precision-recall in the features of a named extractor,
reconstruction PSNR / SSIM and the ELBO.

Python API: ``train(cfg)`` (a :class:`GenConfig`), ``sample``, ``interpolate``, ``reconstruct``, ``denoise``,
``evaluate``, ``export``; ``SPEC`` is the task's :class:`~vislab.tasks.base.TaskSpec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislab.tasks import base
from vislab.tasks.generate.config import (PRESETS, DenoiseConfig, GenConfig, GenEvalConfig, GenExportConfig, GenModelConfig, InterpolateConfig,
                                          ReconstructConfig, SampleConfig)
from vislab.tasks.generate.infer import denoise, evaluate, export, interpolate, reconstruct, sample
from vislab.tasks.generate.task import setup, validate


def train(cfg: GenConfig, callbacks: list | None = None, folder: str | None = None) -> Path:
    """Train a generative model; returns the run folder (see :func:`vislab.tasks.base.train`)."""
    return base.train(SPEC, cfg, callbacks, folder)


def _summary(s: dict[str, Any]) -> str:
    shown = [f"{k[len('final_val_'):]} {s[k]:.4f}" for k in ("final_val_loss", "final_val_psnr", "final_val_ssim", "final_val_elbo") if k in s]
    best = f"best {s['best_metric']} {s['best_value']:.4f}" if isinstance(s.get("best_value"), float) and s.get("best_metric") not in (None, "last") else ""
    parts = [p for p in ("val " + "  ".join(shown) if shown else "", best) if p]
    return f"done: {'  '.join(parts)} in {s.get('total_seconds', 0):.1f}s" if parts else f"done in {s.get('total_seconds', 0):.1f}s"


def _show_sample(cfg: SampleConfig, r: dict[str, Any]) -> list[str]:
    return [f"written: {r['grid']} and {r['files']} images in {r['images']}" + (f"; the chain: {r['gif']}" if "gif" in r else "")]


def _show_interpolate(cfg: InterpolateConfig, r: dict[str, Any]) -> list[str]:
    return [f"{r['method']} between {r['source']} end points: mean step {r['mean_step']:.3f}, largest {r['max_step']:.3f} (L2, pixels in [-1, 1])",
            f"written: {r['png']}, {r['gif']}"]


def _show_reconstruct(cfg: ReconstructConfig, r: dict[str, Any]) -> list[str]:
    return [f"{r['n']} images: PSNR {r['psnr']:.2f} dB  SSIM {r['ssim']:.4f}  MSE {r['mse']:.5f}", f"written: {r['png']}, {r['out']}/metrics.json, per_image.csv"]


def _show_denoise(cfg: DenoiseConfig, r: dict[str, Any]) -> list[str]:
    return [f"{r['n']} images, {r['kind']} noise {r['noise']:g}: PSNR {r['noisy_psnr']:.2f} -> {r['psnr']:.2f} dB  SSIM {r['noisy_ssim']:.4f} -> {r['ssim']:.4f}",
            f"written: {r['png']}, {r['out']}/metrics.json, per_image.csv"]


def _show_eval(cfg: GenEvalConfig, r: dict[str, Any]) -> list[str]:
    lines = []
    if "psnr" in r:
        rec = f"reconstruction: loss {r['loss']:.3f}  PSNR {r['psnr']:.2f} dB  SSIM {r['ssim']:.4f}"
        lines.append(rec + (f"  ELBO {r['elbo']:.2f} nats/image" if "elbo" in r else ""))
    if "fid" in r:
        e = r["extractor"]
        lines.append(f"{r['n']} samples vs {int(r['n_real'])} real: fid[{e}] {r['fid']:.3f} (real vs real {r['real_fid']:.3f}, noise {r['noise_fid']:.1f})  "
                     f"kid[{e}] {r['kid']:.4f} +- {r['kid_std']:.4f}  "
                     f"precision {r['precision']:.3f}  recall {r['recall']:.3f}")
        if "is" in r:
            lines.append(f"classifier [{e}]: IS {r['is']:.2f}  confidence {r['mean_confidence']:.3f} (real {r.get('real_confidence', float('nan')):.3f})  "
                         f"class entropy {r['class_entropy']:.3f}  "
                         f"classes covered {r['class_coverage']:.2f}" + (f"  requested class {r['class_match']:.3f}" if "class_match" in r else ""))
    else:
        lines.append("no FID: pass --extractor RUN (a classify run on the same kind of images) or inception:FILE")
    lines.append(f"written: {r['out']}/metrics.json")
    return lines


def _show_export(cfg: GenExportConfig, r: dict[str, Any]) -> list[str]:
    return [f"{fmt}: {r[fmt]['path']}  (inputs {', '.join(r['inputs'])}; max |diff| vs eager {r[fmt]['max_abs_diff']:.2e})" for fmt in ("onnx", "torchscript") if fmt in r]


SPEC = base.TaskSpec(
    name="generate",
    config=GenConfig,
    setup=setup,
    validate=validate,
    help="Image synthesis: autoencoders, VAEs, GANs (MLP, DCGAN, conditional, WGAN, WGAN-GP) and diffusion (DDPM / DDIM): train, sample, "
         "interpolate, reconstruct, denoise, evaluate (FID / KID), export.",
    train_help="""Train a generative model on images; results go to runs/generate/<name>/ (samples.png, progress.gif, dynamics.png, report.html).

    \b
    Models (--model): """ + ", ".join(PRESETS) + """.
    \b
    Examples:
      vislab generate train --model dcgan --data digits --epochs 10
      vislab generate train --model vae --data digits --img-size 28 --beta 1
      vislab generate train --model wgan_gp --data my_faces/ --img-size 64 --width 64
      vislab generate train --model cddpm --data digits --img-size 16 --epochs 30 --ema-decay 0.995
      vislab generate train --resume runs/generate/exp
    """,
    monitor="val_loss",  # the hooks say: val_loss for autoencoders and diffusion, last (or val_fid) for GANs
    summary=_summary,
    report_files=("report.html", "samples.png", "progress.gif", "dynamics.png", "curves.png", "checkpoints/best.safetensors"),
    lr_find=False,
    modes=(
        base.Mode("sample", SampleConfig, sample, _show_sample, "New images from CHECKPOINT: grid.png and one PNG per image (diffusion: --sampler ddpm|ddim --steps N, --frames for a GIF of the chain)."),
        base.Mode("interpolate", InterpolateConfig, interpolate, _show_interpolate, "Walks through CHECKPOINT's latent space (lerp / slerp): interpolation.png and .gif."),
        base.Mode("reconstruct", ReconstructConfig, reconstruct, _show_reconstruct, "INPUTS (or the validation images) through an autoencoder: before/after grid, PSNR, SSIM."),
        base.Mode("denoise", DenoiseConfig, denoise, _show_denoise, "Noisy INPUTS (or validation images) through a (denoising) autoencoder: noisy / denoised / clean grid, PSNR and SSIM before and after."),
        base.Mode("eval", GenEvalConfig, evaluate, _show_eval, """FID, KID, precision / recall of CHECKPOINT's samples, named after the feature extractor.

    \b
    --extractor runs/classify/exp   a vislab classifier trained on the same kind of images (also: IS, class coverage)
    --extractor inception:FILE      torchvision Inception-v3 weights on disk
    Autoencoders also get reconstruction MSE / PSNR / SSIM and the ELBO."""),
        base.Mode("export", GenExportConfig, export, _show_export, "The generator (decoder, denoising U-Net) as ONNX and TorchScript, checked against the eager model."),
    ),
)

__all__ = ["PRESETS", "SPEC", "DenoiseConfig", "GenConfig", "GenEvalConfig", "GenExportConfig", "GenModelConfig", "InterpolateConfig",
           "ReconstructConfig", "SampleConfig", "denoise", "evaluate", "export", "interpolate", "reconstruct", "sample", "train"]
