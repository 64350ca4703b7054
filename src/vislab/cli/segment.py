"""``vislab segment train | eval | predict | export | explain``."""

from __future__ import annotations

import json

import click

from vislab.cli.options import build_config, config_options, typed_options


@click.group(name="segment")
def group() -> None:
    """Semantic segmentation: train a model on masks, evaluate mIoU, predict masks, export, explain."""


def _config_classes():
    from vislab.tasks.segment import SegEvalConfig, SegmentConfig
    from vislab.tasks.segment_explain import SegExplainConfig
    from vislab.tasks.classify_infer import ExportConfig as SegExportConfig  # the same export options
    from vislab.tasks.segment_infer import SegPredictConfig

    return SegmentConfig, SegEvalConfig, SegPredictConfig, SegExportConfig, SegExplainConfig


SegmentConfig, SegEvalConfig, SegPredictConfig, SegExportConfig, SegExplainConfig = _config_classes()


@group.command(context_settings={"max_content_width": 110})
@config_options(SegmentConfig)
def train(config_path: str | None, **options) -> None:
    """Train a segmentation model; results go to runs/segment/<name>/.

    \b
    Examples:
      vislab segment train                                   # U-Net on generated shapes with masks
      vislab segment train --model deeplabv3plus --encoder resnet18 --loss ce+dice
      vislab segment train --data ./my_masks --img-size 128 --model attention_unet --attention cbam
    """
    from vislab.tasks import segment

    cfg = segment.resolve_config(config_path, typed_options(options))
    run_dir = segment.train(cfg)
    s = json.loads((run_dir / "run.json").read_text()).get("summary", {})
    miou = s.get("test_miou", s.get("val_miou"))
    click.echo(f"done: {'test' if 'test_miou' in s else 'val'} mIoU {miou:.4f} in {s.get('total_seconds', 0):.1f}s" if miou is not None else "done")
    click.echo(f"run folder: {run_dir}")
    for name in ("curves.png", "confusion_matrix.png", "samples.png", "per_class.csv", "checkpoints/best.safetensors"):
        if (run_dir / name).exists():
            click.echo(f"  {run_dir / name}")


@group.command(name="eval")
@click.argument("checkpoint")
@config_options(SegEvalConfig)
def eval_(checkpoint: str, config_path: str | None, **options) -> None:
    """Evaluate CHECKPOINT on a split: mIoU, per-class IoU, Dice, pixel accuracy, confusion matrix."""
    from vislab.tasks import segment

    cfg = build_config(SegEvalConfig, config_path, {**options, "checkpoint": checkpoint})
    r = segment.evaluate(cfg)
    click.echo(f"{cfg.split}: {r['n']} images  mIoU {r['miou']:.4f}  dice {r['dice']:.4f}  pixel acc {r['pixel_acc']:.4f}  loss {r['loss']:.4f}")
    click.echo(f"written: {r['out']}/metrics.json, per_class.csv, confusion_matrix.png")


@group.command()
@click.argument("checkpoint")
@click.argument("inputs", nargs=-1, required=True)
@config_options(SegPredictConfig)
def predict(checkpoint: str, inputs: tuple[str, ...], config_path: str | None, **options) -> None:
    """Predict masks of INPUTS (images, folders, globs): index PNG + colour overlay per image."""
    from vislab.tasks import segment_infer

    cfg = build_config(SegPredictConfig, config_path, {**options, "checkpoint": checkpoint, "inputs": list(inputs)})
    r = segment_infer.predict(cfg)
    for row in r["rows"][:10]:
        click.echo(f"{row['path']}: {row['mask']}" + (f"  mIoU {row['miou']:.4f}" if "miou" in row else ""))
    click.echo(f"written: {len(r['rows'])} mask(s) in {r['out']}")


@group.command()
@click.argument("checkpoint")
@config_options(SegExportConfig)
def export(checkpoint: str, config_path: str | None, **options) -> None:
    """Export CHECKPOINT to ONNX and/or TorchScript, each checked against the eager model."""
    from vislab.tasks import segment_infer

    cfg = build_config(SegExportConfig, config_path, {**options, "checkpoint": checkpoint})
    r = segment_infer.export(cfg)
    for fmt in ("onnx", "torchscript"):
        if fmt in r:
            click.echo(f"{fmt}: {r[fmt]['path']}  (max |diff| vs eager {r[fmt]['max_abs_diff']:.2e})")


@group.command()
@click.argument("checkpoint")
@click.argument("inputs", nargs=-1, required=True)
@config_options(SegExplainConfig)
def explain(checkpoint: str, inputs: tuple[str, ...], config_path: str | None, **options) -> None:
    """CAMs (Grad-CAM, Eigen-CAM, ...) of a class summed over its predicted region, one PNG per image.

    \b
    Examples:
      vislab segment explain runs/segment/demo photo.png                      # most-predicted class, Grad-CAM
      vislab segment explain runs/segment/demo imgs/ --methods gradcam,eigencam --target-class person
    """
    from vislab.tasks import segment_explain

    cfg = build_config(SegExplainConfig, config_path, {**options, "checkpoint": checkpoint, "inputs": list(inputs)})
    r = segment_explain.explain(cfg)
    for row in r["rows"][:10]:
        inside = "  ".join(f"{m} {s['inside']:.0%} in region" for m, s in row["methods"].items())
        click.echo(f"{row['path']}: class '{row['class']}' ({row['region_pixels']} px)  {inside}")
    click.echo(f"written: {len(r['rows'])} PNG(s) and explain.json in {r['out']} (CAM layer '{r['layer']}')")
