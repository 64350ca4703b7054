"""``vislab data convert | validate | generate-detection``: detection annotation formats (COCO, YOLO, VOC)."""

from __future__ import annotations

import click

from vislab.cli.data import group

_FORMATS = ("coco", "yolo", "voc")


@group.command()
@click.argument("src")
@click.argument("dst")
@click.option("--to", "to", type=click.Choice(_FORMATS), required=True, help="format to write")
@click.option("--from", "fmt", type=click.Choice(("auto", *_FORMATS)), default="auto", show_default=True, help="format of SRC")
@click.option("--split", default="train", show_default=True, help="YOLO split to read / write")
@click.option("--strict/--no-strict", default=False, show_default=True, help="refuse to convert a dataset with problems")
def convert(src: str, dst: str, to: str, fmt: str, split: str, strict: bool) -> None:
    """Convert detection annotations SRC (COCO .json, YOLO data.yaml, VOC folder) into the folder DST.

    \b
    Examples:
      vislab data convert coco/annotations.json out_yolo --to yolo
      vislab data convert out_yolo/data.yaml out_voc --to voc
    """
    from vislab.data.detect import check, read_any, write_any

    ds = read_any(src, fmt, split)
    if strict:
        check(ds)
    path = write_any(ds, dst, to, split)
    click.echo(f"converted {len(ds)} images, {ds.n_objects()} boxes, {len(ds.classes)} classes -> {path}")
    if ds.issues:
        click.echo(f"warning: {len(ds.issues)} annotation(s) could not be converted; run `vislab data validate {src}`", err=True)


@group.command(name="validate")
@click.argument("src")
@click.option("--from", "fmt", type=click.Choice(("auto", *_FORMATS)), default="auto", show_default=True, help="format of SRC")
@click.option("--split", default="train", show_default=True, help="YOLO split to read")
def validate_cmd(src: str, fmt: str, split: str) -> None:
    """Report bad boxes (outside the image, zero area), unknown classes, size mismatches and missing images, by file.

    Exits with code 1 when there are problems.
    """
    from vislab.data.detect import read_any, validate

    ds = read_any(src, fmt, split)
    issues = validate(ds)
    for i in issues:
        click.echo(str(i))
    empty = sum(1 for im in ds.images if len(im.labels) == 0)
    click.echo(f"{len(ds)} images ({empty} without objects), {ds.n_objects()} boxes, {len(ds.classes)} classes: "
               + (f"{len(issues)} problem(s)" if issues else "no problems"))
    if issues:
        raise SystemExit(1)


@group.command(name="generate-detection")
@click.argument("dst")
@click.option("--to", "to", type=click.Choice(_FORMATS), default="coco", show_default=True, help="format to write")
@click.option("--kind", type=click.Choice(("shapes", "digits")), default="shapes", show_default=True,
              help="shapes (circles, squares, ...) or digits (scikit-learn's handwritten digits) on noisy backgrounds")
@click.option("--count", default=200, show_default=True, help="images")
@click.option("--classes", default=3, show_default=True, help="classes (shapes: up to 8; digits: up to 10)")
@click.option("--size", default=64, show_default=True, help="image size (pixels)")
@click.option("--objects", default="0,3", show_default=True, help="objects per image: min,max")
@click.option("--seed", default=0, show_default=True, help="random seed")
def generate_detection(dst: str, to: str, kind: str, count: int, classes: int, size: int, objects: str, seed: int) -> None:
    """Write a generated detection dataset (shapes or digits on noisy backgrounds, boxes and masks) to DST."""
    from vislab.core.errors import ConfigError
    from vislab.data.detect import digits_detection, shapes_detection, write_any

    try:
        lo, hi = (int(v) for v in objects.split(","))
    except ValueError:
        raise ConfigError(f"--objects: expected min,max, got {objects!r}") from None
    if kind == "digits":
        if not 1 <= classes <= 10:
            raise ConfigError(f"--classes: expected 1..10 for digits, got {classes}")
        ds = digits_detection(count, size, seed, (lo, hi), masks=to == "coco", classes=classes)
    else:
        ds = shapes_detection(count, classes, size, seed, (lo, hi), masks=to == "coco")
    path = write_any(ds, dst, to)
    click.echo(f"wrote {len(ds)} images, {ds.n_objects()} objects -> {path}")
