"""``vislab demo``: the offline end-to-end tour on the bundled digits.

Measured wall time from the command's start (imports, model build, training, eval, predict, report) on 2 CPU cores:
about 25 s on a quiet machine, 94 s with both cores kept busy by other processes (8 epochs; test accuracy 0.983).
"""

from __future__ import annotations

import time
from pathlib import Path

import click

DEMO_BAR = 0.95  # test accuracy the demo must reach on digits


@click.command()
@click.option("--out", default="runs", show_default=True, help="root folder of runs")
@click.option("--epochs", default=8, show_default=True, help="training epochs")
@click.option("--model", default="small_cnn", show_default=True, help="model to train")
def demo(out: str, epochs: int, model: str) -> None:
    """Train a classifier on the bundled digits, evaluate it, predict on held-out images, write the report.

    Offline: the data ships inside scikit-learn. Fails (exit 1) if test accuracy is below 95%.
    """
    from PIL import Image

    from vislab.core.config import from_dict
    from vislab.data.classify.source import DataConfig, load_dataset
    from vislab.engine.run import next_free_name
    from vislab.cli.main import STARTED
    from vislab.tasks import classify

    name = next_free_name(Path(out) / "classify", "demo")
    cfg = from_dict(classify.ClassifyConfig, {
        "data": "digits", "model": model, "epochs": epochs, "batch_size": 64, "lr": 0.05, "out": out, "name": name,
    })
    click.echo(f"[1/3] training {model} on digits for {epochs} epochs ...")
    run_dir = classify.train(cfg)

    click.echo("[2/3] evaluating the best checkpoint on the held-out test split ...")
    res = classify.evaluate(classify.EvalConfig(checkpoint=str(run_dir), split="test"))

    click.echo("[3/3] predicting on 8 held-out images saved as PNG files ...")
    test = load_dataset(from_dict(DataConfig, {"data": "digits"})).test
    img_dir = run_dir / "demo_images"
    img_dir.mkdir(exist_ok=True)
    for i in range(8):
        j = i * (len(test) // 8)
        Image.fromarray(test.get(j)[0].numpy()).save(img_dir / f"digit_{j:03d}_true{test.classes[int(test.labels[j])]}.png")
    pred = classify.predict(classify.PredictConfig(checkpoint=str(run_dir), inputs=[str(img_dir)], annotate=True))
    for r in pred["rows"]:
        click.echo(f"    {Path(r['path']).name}: predicted {r['label']} ({r['prob']:.2f})")

    secs = time.perf_counter() - STARTED
    click.echo("")
    click.echo(f"test accuracy {res['acc']:.4f} (bar {DEMO_BAR:.2f}) | top-5 {res.get('top5', 0):.4f} | macro-F1 {res['macro_f1']:.4f} | wall time {secs:.0f} s")
    click.echo(f"report:       {run_dir / 'report.html'}")
    click.echo(f"curves:       {run_dir / 'curves.png'}")
    click.echo(f"confusion:    {res['out']}/confusion_matrix.png")
    click.echo(f"predictions:  {pred['out']} (annotated images beside it)")
    click.echo(f"checkpoint:   {run_dir / 'checkpoints' / 'best.safetensors'}")
    click.echo(f"try next:     vislab classify predict {run_dir} YOUR_IMAGES...   |   vislab classify export {run_dir}")
    if res["acc"] < DEMO_BAR:
        raise SystemExit(f"demo: expected test accuracy >= {DEMO_BAR}, got {res['acc']:.4f}")
