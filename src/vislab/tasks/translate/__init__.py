"""Image-to-image translation: ``vislab translate train | eval | predict | export``.

pix2pix (paired: U-Net + PatchGAN, L1 + adversarial) and its L1 baseline, CycleGAN (unpaired: two ResNet generators,
two PatchGANs, cycle + identity losses, an image pool), colorization (L -> ab, L1 or GAN), super-resolution x2 / x3 /
x4 (SRCNN, SRResNet, EDSR-baseline, SRGAN with a perceptual loss; bicubic or Real-ESRGAN-style inputs) and denoising
(DnCNN: gaussian, poisson, JPEG) -- on folders in the pix2pix / CycleGAN layouts, any folder of photos, the bundled
scikit-image photos or generated data. Numbers against each task's baseline: PSNR / SSIM (Y channel for SR), L1, ab
error, cycle error; tiled inference for large images.

Python API: ``train(cfg)`` (a :class:`TranslateConfig`), ``evaluate``, ``predict``, ``export``; ``SPEC`` is the
task's :class:`~vislab.tasks.base.TaskSpec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislab.tasks import base
from vislab.tasks.translate.config import (PRESETS, TranslateConfig, TranslateEvalConfig, TranslateExportConfig, TranslateModelConfig,
                                           TranslatePredictConfig)
from vislab.tasks.translate.infer import evaluate, export, predict
from vislab.tasks.translate.task import setup, validate


def train(cfg: TranslateConfig, callbacks: list | None = None, folder: str | None = None) -> Path:
    """Train a translation model; returns the run folder (see :func:`vislab.tasks.base.train`)."""
    return base.train(SPEC, cfg, callbacks, folder)


SHOWN = ("psnr_y", "base_psnr_y", "psnr", "base_psnr", "ssim", "l1", "ab_error", "base_ab_error", "cycle_a", "cycle_b")


def _summary(s: dict[str, Any]) -> str:
    shown = [f"{k} {s['final_val_' + k]:.4f}" for k in SHOWN if "final_val_" + k in s]
    return f"done: val {'  '.join(shown)} in {s.get('total_seconds', 0):.1f}s" if shown else f"done in {s.get('total_seconds', 0):.1f}s"


def _show_eval(cfg: TranslateEvalConfig, r: dict[str, Any]) -> list[str]:
    def f(k: str) -> str:
        return f"{r[k]:.4f}" if k in r else "-"

    lines = [f"{r['n']} images ({r['eval_size']} px{', tiles of ' + str(r['tile']) if r['tile'] else ''}):"]
    if r["pairing"] == "unpaired":
        lines.append(f"cycle error A->B->A {f('cycle_a')}  B->A->B {f('cycle_b')} (mean |x - x_back| on 0..1)")
    else:
        lines.append(f"PSNR {r['psnr']:.2f} dB  SSIM {r['ssim']:.4f}  L1 {r['l1']:.4f}" + (f"  LPIPS {r['lpips']:.4f}" if "lpips" in r else ""))
        if r["make"] == "sr":
            lines.append(f"Y channel: PSNR {r['psnr_y']:.2f} dB (bicubic {r['base_psnr_y']:.2f})  SSIM {r['ssim_y']:.4f} (bicubic {r['base_ssim_y']:.4f})")
        elif r["make"] == "denoise":
            lines.append(f"noisy input: PSNR {r['base_psnr']:.2f} dB  SSIM {r['base_ssim']:.4f}")
        elif "base_l1" in r:
            lines.append(f"the input as the output: PSNR {r['base_psnr']:.2f} dB  L1 {r['base_l1']:.4f}")
        elif r["make"] == "colorize":
            lines.append(f"ab error {r['ab_error']:.2f} (mean-colour baseline {r.get('base_ab_error', float('nan')):.2f})  "
                         f"colourfulness {r['colorfulness']:.1f} (originals {r['colorfulness_target']:.1f})")
        if r.get("lpips_note"):
            lines.append(f"no LPIPS: {r['lpips_note']}")
    lines.append(f"written: {r['png']}, {r['out']}/metrics.json, per_image.csv")
    return lines


def _show_predict(cfg: TranslatePredictConfig, r: dict[str, Any]) -> list[str]:
    return [f"{r['n']} image(s) written to {r['out']}"]


def _show_export(cfg: TranslateExportConfig, r: dict[str, Any]) -> list[str]:
    return [f"{k}: {v['path']}  (max |diff| vs eager {v['max_abs_diff']:.2e})" for k, v in r.items() if isinstance(v, dict) and "path" in v]


SPEC = base.TaskSpec(
    name="translate",
    config=TranslateConfig,
    setup=setup,
    validate=validate,
    help="Image-to-image translation: pix2pix, CycleGAN, colorization, super-resolution (SRCNN, SRResNet, EDSR, SRGAN), denoising (DnCNN): "
         "train, eval, predict (tiled), export.",
    train_help="""Train an image-to-image model; results go to runs/translate/<name>/ (examples.png, progress.gif, losses.png, report.html).

    \b
    Models (--model): """ + ", ".join(PRESETS) + """.
    \b
    Examples:
      vislab translate train --model pix2pix --data edges2shapes --img-size 32 --width 16 --epochs 5
      vislab translate train --model pix2pix --data facades/ --direction BtoA          (facades/train/*.jpg, side by side)
      vislab translate train --model cyclegan --data horse2zebra/ --img-size 128        (trainA/ trainB/ testA/ testB/)
      vislab translate train --model edsr --data skimage --scale 2 --img-size 48 --width 32 --blocks 4
      vislab translate train --model srgan --data photos/ --scale 4 --degrade realesrgan --features vgg19:vgg19-dcbb9e9d.pth
      vislab translate train --model colorize --data photos/ --img-size 64
      vislab translate train --model dncnn --data skimage_gray --noise gaussian --noise-level 25
      vislab translate train --resume runs/translate/exp
    """,
    monitor="val_l1",  # the hooks say: val_psnr_y (sr), val_psnr (denoise), val_ab_error (colorize), last (cyclegan)
    summary=_summary,
    report_files=("report.html", "examples.png", "progress.gif", "losses.png", "curves.png", "checkpoints/best.safetensors"),
    lr_find=False,
    modes=(
        base.Mode("eval", TranslateEvalConfig, evaluate, _show_eval, "CHECKPOINT's numbers on the run's validation images (or --data): PSNR / SSIM "
                  "(Y channel for SR), L1, ab error, cycle error, each next to its baseline; examples.png, metrics.json, per_image.csv."),
        base.Mode("predict", TranslatePredictConfig, predict, _show_predict, "INPUTS (images, folders) through CHECKPOINT's generator, one PNG each "
                  "(--tile N for large images; --degrade to make SR / denoising inputs from clean images first)."),
        base.Mode("export", TranslateExportConfig, export, _show_export, "The generator(s) as ONNX and TorchScript, checked against the eager model."),
    ),
)

__all__ = ["PRESETS", "SPEC", "TranslateConfig", "TranslateEvalConfig", "TranslateExportConfig", "TranslateModelConfig", "TranslatePredictConfig",
           "evaluate", "export", "predict", "train"]
