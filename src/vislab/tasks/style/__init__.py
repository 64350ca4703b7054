"""Neural style transfer: ``vislab style train | transfer | texture | apply``.

* ``transfer CONTENT STYLE``: Gatys, Ecker & Bethge's optimisation of the image (L-BFGS or Adam; content / style
  layers and weights, TV loss, colour preservation), in the features of VGG-19 weights on disk, a vislab classify
  run (e.g. a classifier fine-tuned on paintings), or -- with no weights at all -- a random multi-scale network;
* ``texture STYLE``: texture synthesis from noise;
* ``train --data CONTENT_DIR --style s1.jpg,s2.jpg``: a fast feed-forward network (Johnson et al. 2016) for one or
  several styles (conditional instance norm), through the shared training run (resume, DDP, report);
* ``apply RUN INPUTS``: that network on images, folders and videos (frame by frame), one style, every style or a blend.

Python API: ``train(cfg)`` (a :class:`StyleConfig`), ``transfer``, ``texture``, ``apply``; the optimisation itself is
:mod:`vislab.tasks.style.gatys`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislab.tasks import base
from vislab.tasks.style.config import ApplyConfig, StyleConfig, TextureConfig, TransferConfig
from vislab.tasks.style.infer import apply, texture, transfer
from vislab.tasks.style.task import setup, validate


def train(cfg: StyleConfig, callbacks: list | None = None, folder: str | None = None) -> Path:
    """Train a fast style-transfer network; returns the run folder."""
    return base.train(SPEC, cfg, callbacks, folder)


def _summary(s: dict[str, Any]) -> str:
    shown = [f"{k} {s['final_val_' + k]:.4f}" for k in ("loss", "style", "content") if "final_val_" + k in s]
    return f"done: val {'  '.join(shown)} in {s.get('total_seconds', 0):.1f}s" if shown else f"done in {s.get('total_seconds', 0):.1f}s"


def _show_opt(cfg: Any, r: dict[str, Any]) -> list[str]:
    lines = [r["note"]] if r.get("note") else []
    content = f", content loss {r['content_loss_end']:.4f}" if r.get("content_loss_end") else ""
    lines.append(f"{r['steps']} steps in {r['seconds']:.1f}s [{r['features']}]: style loss {r['style_loss_start']:.4f} -> {r['style_loss_end']:.4f}"
                 f" ({r['style_loss_start'] / max(r['style_loss_end'], 1e-12):.1f}x lower){content}")
    lines.append(f"written: {r['png']}, {r['losses_png']}" + (f", {r['gif']}" if "gif" in r else "") + f", {r['out']}/result.json")
    return lines


def _show_apply(cfg: ApplyConfig, r: dict[str, Any]) -> list[str]:
    return [f"{r['n']} file(s) written to {r['out']} (styles: {', '.join(r['styles'])}; {r['images_per_second']:.1f} images/s per forward pass)"]


SPEC = base.TaskSpec(
    name="style",
    config=StyleConfig,
    setup=setup,
    validate=validate,
    help="Neural style transfer: Gatys optimisation (transfer), texture synthesis (texture), a fast multi-style network (train, apply).",
    train_help="""Train a fast style-transfer network on content images for one or more styles; results go to runs/style/<name>/.

    \b
    Examples:
      vislab style train --data photos/ --style starry.jpg --img-size 256 --epochs 2 --features vgg19:vgg19-dcbb9e9d.pth
      vislab style train --data skimage --style a.jpg,b.jpg --img-size 64 --width 16 --blocks 3 --epochs 3
      vislab style apply runs/style/exp photo.jpg clip.mp4 --mix 0.5,0.5
    """,
    monitor="val_loss",
    summary=_summary,
    report_files=("report.html", "examples.png", "progress.gif", "losses.png", "checkpoints/best.safetensors"),
    lr_find=False,
    modes=(
        base.Mode("transfer", TransferConfig, transfer, _show_opt, """CONTENT restyled as STYLE by optimising the image (Gatys et al. 2016).

    \b
    vislab style transfer photo.jpg starry.jpg --features vgg19:vgg19-dcbb9e9d.pth
    vislab style transfer photo.jpg starry.jpg --preserve-color --optimizer adam --steps 500
    vislab style transfer photo.jpg starry.jpg --features runs/classify/paintings   (a fine-tuned classifier's features)"""),
        base.Mode("texture", TextureConfig, texture, _show_opt, "A new texture from noise with STYLE's Gram statistics (Gatys et al. 2015)."),
        base.Mode("apply", ApplyConfig, apply, _show_apply, "A trained fast network (RUN) on images, folders and videos, frame by frame."),
    ),
)

__all__ = ["SPEC", "ApplyConfig", "StyleConfig", "TextureConfig", "TransferConfig", "apply", "texture", "train", "transfer"]
