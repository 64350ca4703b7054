"""``vislab detect train | eval | predict | explain | export | import``."""

from __future__ import annotations

import click

from vislab.cli.options import build_config, config_options, typed_options
from vislab.tasks.detect import DetectConfig
from vislab.tasks.detect_export import DetExportConfig
from vislab.tasks.detect_infer import DetEvalConfig, DetPredictConfig


def _explain_config():
    from vislab.tasks.detect_explain import DetExplainConfig

    return DetExplainConfig


def _import_config():
    from vislab.tasks.detect_import import DetImportConfig

    return DetImportConfig


@click.group(name="detect")
def group() -> None:
    """Object detection: train a detector, evaluate it (COCO AP), predict on images and videos, export it."""


def _fmt(d: dict, keys=("map", "map50", "map75", "map_small", "mar_100", "mask_map", "mask_map50")) -> str:
    return "  ".join(f"{k} {d[k]:.4f}" for k in keys if k in d)


@group.command(context_settings={"max_content_width": 110})
@config_options(DetectConfig)
def train(config_path: str | None, **options) -> None:
    """Train a detector; results go to runs/detect/<name>/.

    \b
    Examples:
      vislab detect train                                        # yolo_tiny on generated shapes
      vislab detect train --data ./coco/annotations.json --img-size 320 --epochs 30
      vislab detect train --model yolo_tiny --backbone resnet18 --nms soft
      vislab detect train --resume runs/detect/exp
    """
    import json

    from vislab.tasks import detect

    cfg = detect.resolve_config(config_path, typed_options(options))
    run_dir = detect.train(cfg)
    s = json.loads((run_dir / "run.json").read_text()).get("summary", {})
    final = {k.removeprefix("final_val_"): v for k, v in s.items() if k.startswith("final_val_")}
    click.echo(f"done: val {_fmt(final)} in {s.get('total_seconds', 0):.1f}s" if final else "done")
    click.echo(f"run folder: {run_dir}")


@group.command(name="eval")
@click.argument("checkpoint")
@config_options(DetEvalConfig)
def eval_(checkpoint: str, config_path: str | None, **options) -> None:
    """COCO metrics of CHECKPOINT (AP@[.5:.95], AP50, AP75, AP by size, AR, per-class AP, PR curves)."""
    from vislab.tasks.detect_infer import evaluate

    cfg = build_config(DetEvalConfig, config_path, {**options, "checkpoint": checkpoint})
    res = evaluate(cfg)
    click.echo(f"{cfg.split}: {res['n']} images  {_fmt(res)}")
    for c, v in res["per_class"].items():
        click.echo(f"  {c}: AP {v:.4f}")
    click.echo(f"written: {res['out']}")


@group.command()
@click.argument("checkpoint")
@click.argument("inputs", nargs=-1, required=True)
@config_options(DetPredictConfig)
def predict(checkpoint: str, inputs: tuple[str, ...], config_path: str | None, **options) -> None:
    """Detect objects in INPUTS (images, folders, video files) with CHECKPOINT; boxes drawn, detections.json out."""
    from vislab.tasks.detect_infer import predict as run

    cfg = build_config(DetPredictConfig, config_path, {**options, "checkpoint": checkpoint, "inputs": list(inputs)})
    res = run(cfg)
    click.echo(f"{len(res['detections'])} detection(s); written: {res['out']}/detections.json" + (f" and {len(res['written'])} picture(s)/video(s)" if res["written"] else ""))


@group.command()
@click.argument("checkpoint")
@config_options(DetExportConfig)
def export(checkpoint: str, config_path: str | None, **options) -> None:
    """Export CHECKPOINT to ONNX -- pixels in, detections (M, 7) out, NMS in the graph (--no-postprocess: dense
    boxes and scores) -- and check it against the eager model with onnxruntime."""
    from vislab.tasks.detect_export import export as run

    cfg = build_config(DetExportConfig, config_path, {**options, "checkpoint": checkpoint})
    res = run(cfg)
    click.echo(f"onnx: {res['path']}  (outputs {', '.join(res['outputs'])}; max |diff| vs eager {res['max_abs_diff']:.2e})")


@group.command(name="import")
@click.argument("weights")
@config_options(_import_config())
def import_(weights: str, config_path: str | None, **options) -> None:
    """Make a vislab detection run from a WEIGHTS file (e.g. torchvision's COCO weights, from disk; nothing is
    downloaded), for predict / eval / export / train --weights.

    \b
    Example:
      vislab detect import ~/.cache/torch/hub/checkpoints/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth \\
          --model fasterrcnn_resnet50_fpn --classes coco --img-size 512 --out runs/detect/frcnn-coco
      vislab detect predict runs/detect/frcnn-coco street.jpg --score-thresh 0.5
    """
    from vislab.tasks.detect_import import DetImportConfig, import_weights

    cfg = build_config(DetImportConfig, config_path, {**options, "weights": weights})
    run = import_weights(cfg)
    click.echo(f"imported {weights} as {cfg.model} -> {run}")


@group.command()
@click.argument("checkpoint")
@click.argument("inputs", nargs=-1, required=True)
@config_options(_explain_config())
def explain(checkpoint: str, inputs: tuple[str, ...], config_path: str | None, **options) -> None:
    """Eigen-CAM / Grad-CAM for one detection (--box, by score rank) in each of INPUTS."""
    from vislab.tasks.detect_explain import DetExplainConfig
    from vislab.tasks.detect_explain import explain as run

    cfg = build_config(DetExplainConfig, config_path, {**options, "checkpoint": checkpoint, "inputs": list(inputs)})
    res = run(cfg)
    for p in res["paths"]:
        click.echo(f"  {p}")
