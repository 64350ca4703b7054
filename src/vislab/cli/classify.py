"""``vislab classify train | eval | predict | export``."""

from __future__ import annotations

import click

from vislab.cli.options import build_config, config_options, typed_options


@click.group(name="classify")
def group() -> None:
    """Image classification: train a model, evaluate it, predict on images, explain and export it."""


def _tasks():
    from vislab.tasks import classify, classify_infer

    return classify, classify_infer


def _config_classes():
    # Imported lazily by each command; the dataclasses themselves are light.
    from vislab.tasks.classify import ClassifyConfig, EvalConfig
    from vislab.tasks.classify_infer import ExplainConfig, ExportConfig, PredictConfig

    return ClassifyConfig, EvalConfig, PredictConfig, ExportConfig, ExplainConfig


ClassifyConfig, EvalConfig, PredictConfig, ExportConfig, ExplainConfig = _config_classes()


@group.command(context_settings={"max_content_width": 110})
@config_options(ClassifyConfig)
def train(config_path: str | None, **options) -> None:
    """Train a classifier; results go to runs/classify/<name>/.

    \b
    Examples:
      vislab classify train                                  # small CNN on the bundled digits
      vislab classify train --data shapes --model resnet18 --epochs 5
      vislab classify train --data ./cifar10 --model resnet18 --nproc 2
      vislab classify train --config run.yaml --lr 0.1       # options override the file
      vislab classify train --resume runs/classify/exp       # continue a killed run
    """
    classify, _ = _tasks()
    cfg = classify.resolve_config(config_path, typed_options(options))
    run_dir = classify.train(cfg)
    from vislab.core.dist import env_info

    if env_info().is_main:  # under torchrun every rank returns here; one summary is enough
        _print_train_summary(run_dir)


def _print_train_summary(run_dir) -> None:
    import json

    info = json.loads((run_dir / "run.json").read_text())
    s = info.get("summary", {})
    acc = s.get("test_acc", s.get("val_acc"))
    which = "test" if "test_acc" in s else "val"
    click.echo(f"done: {which} accuracy {acc:.4f} in {s.get('total_seconds', 0):.1f}s" if acc is not None else "done")
    click.echo(f"run folder: {run_dir}")
    for name in ("report.html", "curves.png", "confusion_matrix.png", "samples.png", "checkpoints/best.safetensors"):
        if (run_dir / name).exists():
            click.echo(f"  {run_dir / name}")


@group.command(name="eval")
@click.argument("checkpoint")
@config_options(EvalConfig)
def eval_(checkpoint: str, config_path: str | None, **options) -> None:
    """Evaluate CHECKPOINT (a file or run folder) on a split: accuracy, top-5, per-class P/R/F1, confusion matrix."""
    classify, _ = _tasks()
    cfg = build_config(EvalConfig, config_path, {**options, "checkpoint": checkpoint})
    res = classify.evaluate(cfg)
    click.echo(f"{cfg.split}: {res['n']} images  acc {res['acc']:.4f}  top5 {res.get('top5', res.get('top' + str(min(5, len(res['per_class']['f1'])))) or 0):.4f}  "
               f"loss {res['loss']:.4f}  macro-F1 {res['macro_f1']:.4f}")
    click.echo(f"written: {res['out']}/metrics.json, per_class.csv, confusion_matrix.png")


@group.command()
@click.argument("checkpoint")
@click.argument("inputs", nargs=-1, required=True)
@config_options(PredictConfig)
def predict(checkpoint: str, inputs: tuple[str, ...], config_path: str | None, **options) -> None:
    """Predict classes of INPUTS (images, folders, globs) with CHECKPOINT; writes CSV or JSON."""
    _, infer = _tasks()
    cfg = build_config(PredictConfig, config_path, {**options, "checkpoint": checkpoint, "inputs": list(inputs)})
    res = infer.predict(cfg)
    for r in res["rows"][:10]:
        click.echo(f"{r['path']}: {r['label']} ({r['prob']:.3f})")
    if len(res["rows"]) > 10:
        click.echo(f"... {len(res['rows']) - 10} more")
    click.echo(f"written: {res['out']}" + (f" (skipped {len(res['skipped'])} unreadable)" if res["skipped"] else ""))


@group.command()
@click.argument("checkpoint")
@config_options(ExportConfig)
def export(checkpoint: str, config_path: str | None, **options) -> None:
    """Export CHECKPOINT to ONNX and/or TorchScript, each checked against the eager model."""
    _, infer = _tasks()
    cfg = build_config(ExportConfig, config_path, {**options, "checkpoint": checkpoint})
    res = infer.export(cfg)
    for fmt in ("onnx", "torchscript"):
        if fmt in res:
            click.echo(f"{fmt}: {res[fmt]['path']}  (max |diff| vs eager {res[fmt]['max_abs_diff']:.2e})")


@group.command()
@click.argument("checkpoint")
@click.argument("inputs", nargs=-1, required=True)
@config_options(ExplainConfig)
def explain(checkpoint: str, inputs: tuple[str, ...], config_path: str | None, **options) -> None:
    """What does the network see? Filters, feature maps, Grad-CAM & co. and attributions for INPUTS.

    \b
    Examples:
      vislab classify explain runs/classify/exp cat.png
      vislab classify explain runs/classify/exp photos/ --methods gradcam,gradcam++,eigencam,layercam --target-class dog
      vislab classify explain runs/classify/exp a.png --methods feature_maps --layers features.1,features.3
    """
    _, infer = _tasks()
    cfg = build_config(ExplainConfig, config_path, {**options, "checkpoint": checkpoint, "inputs": list(inputs)})
    res = infer.explain(cfg)
    for p in res["paths"]:
        click.echo(f"  {p}")
    click.echo(f"written: {len(res['paths'])} picture(s) in {res['out']}")


@group.command(name="lr-find", context_settings={"max_content_width": 110})
@click.option("--steps", "lr_steps", type=int, default=100, show_default=True, help="optimizer steps of the sweep")
@click.option("--start-lr", type=float, default=1e-6, show_default=True, help="first learning rate of the sweep")
@click.option("--end-lr", type=float, default=10.0, show_default=True, help="last learning rate of the sweep (stops earlier when the loss diverges)")
@click.option("--plot", "plot_path", default="", help="where to write the plot (and .csv beside it) [default: OUT/classify/lr_find.png]")
@config_options(ClassifyConfig)
def lr_find(lr_steps: int, start_lr: float, end_lr: float, plot_path: str, config_path: str | None, **options) -> None:
    """Learning-rate range test: train a copy of the model while the lr grows exponentially; suggest an --lr.

    Uses the same data, model, weights, optimizer, batch size and augmentation as `classify train`.

    \b
    Examples:
      vislab classify lr-find --data digits --img-size 16
      vislab classify lr-find --config run.yaml --optimizer adamw --steps 200 --plot lr.png
    """
    classify, _ = _tasks()
    from vislab.recipes.lr_finder import classify_lr_find

    cfg = classify.resolve_config(config_path, typed_options(options))
    res = classify_lr_find(cfg, steps=lr_steps, start_lr=start_lr, end_lr=end_lr, out=plot_path or None)
    how = "steepest descent of the smoothed loss" if res.steepest_lr is not None else "min-loss lr / 10"
    click.echo(f"swept {len(res.lrs)} steps, lr {res.lrs[0]:.2e} .. {res.lrs[-1]:.2e}{' (stopped: loss diverged)' if res.diverged else ''}")
    click.echo(f"suggested --lr {res.suggestion:.3g} ({how}); min loss at lr {res.min_loss_lr:.3g}")
    click.echo(f"written: {res.files['png']}, {res.files['csv']}")
