"""``vislab models list | show``: the model zoo, and one model's layers, parameters, FLOPs and memory.

Models are built on PyTorch's ``meta`` device: nothing is allocated or computed, so even VGG-19
is summarised instantly.
"""

from __future__ import annotations

from pathlib import Path

import click

from vislab.core.errors import ConfigError


@click.group(name="models")
def group() -> None:
    """The model zoo: list the registered models, show one model's summary."""


def _meta_build(name: str, **kwargs):
    import torch

    from vislab.models import create_model

    with torch.device("meta"):
        return create_model(name, **kwargs)


def _params(name: str) -> str:
    from vislab.explain.summary import human

    try:
        model = _meta_build(name)
    except Exception:  # a builder that cannot run on meta still gets listed
        return "?"
    return human(sum(p.numel() for p in model.parameters()))


@group.command("list", context_settings={"max_content_width": 110})
@click.argument("pattern", required=False, default="*")
@click.option("--task", default=None, help="only models of this task (e.g. classify)")
@click.option("--params/--no-params", default=True, help="count parameters of the default config [default: on]")
def list_cmd(pattern: str, task: str | None, params: bool) -> None:
    """List registered models whose name matches PATTERN (shell-style, comma-separated: 'resnet*,vgg1?').

    \b
    Examples:
      vislab models list
      vislab models list 'resnet*' --task classify
      vislab models list 'vit*,mobilenet*' --no-params
    Any timm model is also available as timm:<name> (e.g. timm:convnext_tiny).
    """
    from rich.console import Console
    from rich.table import Table

    from vislab.models.registry import MODELS

    names = MODELS.list(pattern, task)
    table = Table(title=f"{len(names)} models" + (f" matching {pattern!r}" if pattern != "*" else ""), title_justify="left")
    for col in ("name", "task", "family", "input", *(["params"] if params else []), "description"):
        table.add_column(col, justify="right" if col == "params" else "left", no_wrap=col != "description")
    for n in names:
        e = MODELS.get(n)
        size = "x".join(map(str, e.meta.get("input_size", ()))) or "-"
        table.add_row(n, e.task, e.family, size, *([_params(n)] if params else []), e.doc)
    Console(width=max(Console().width, 110)).print(table)
    if not names:
        click.echo(f"no model matches {pattern!r}" + (f" with task {task!r}" if task else ""))


def _parse_size(text: str | None, default: tuple[int, ...]) -> tuple[int, int]:
    if text is None:
        return int(default[-2]), int(default[-1])
    try:
        parts = [int(p) for p in text.lower().replace("x", ",").split(",") if p.strip()]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise ConfigError(f"--input-size: expected S or H,W (positive integers), got {text!r}")
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


@group.command("show", context_settings={"max_content_width": 110})
@click.argument("name")
@click.option("--input-size", default=None, help="S or H,W [default: the model's own, e.g. 224 or 32 for --stem cifar]")
@click.option("--stem", type=click.Choice(["imagenet", "cifar"]), default="imagenet", show_default=True)
@click.option("--num-classes", type=int, default=None, help="[default: the builder's]")
@click.option("--in-chans", type=int, default=None, help="[default: the builder's]")
@click.option("--batch-size", type=int, default=1, show_default=True, help="batch of the FLOP and memory estimate")
@click.option("--depth", type=int, default=2, show_default=True, help="deepest module nesting shown as a row")
@click.option("--png", "png", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write the stage-width picture here")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="also write the table as text here")
def show(name: str, input_size: str | None, stem: str, num_classes: int | None, in_chans: int | None,
         batch_size: int, depth: int, png: Path | None, out: Path | None) -> None:  # fmt: skip
    """Summarise model NAME: layers, output shapes, parameters, FLOPs / MACs, memory estimate.

    \b
    Examples:
      vislab models show resnet50
      vislab models show resnet18 --stem cifar --depth 1
      vislab models show vgg16 --input-size 224 --batch-size 32 --png vgg16.png
      vislab models show timm:convnext_tiny
    """
    from rich.console import Console
    from rich.table import Table

    from vislab.core.io import atomic_write_text
    from vislab.models.registry import MODELS
    from vislab.explain.summary import human, plot_stage_widths, summarize

    import inspect

    kwargs: dict = {"stem": stem} if ":" in name or name not in MODELS or "stem" in inspect.signature(MODELS.get(name).fn).parameters else {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    meta = MODELS.get(name).meta if name in MODELS and ":" not in name else {}
    default = meta.get("cifar_input_size" if stem == "cifar" else "input_size", (3, 32, 32) if stem == "cifar" else (3, 224, 224))
    h, w = _parse_size(input_size, default)
    if stem == "imagenet" and min(h, w) < meta.get("min_size", 1):
        raise ConfigError(f"--input-size: {name} expected H, W >= {meta['min_size']} with the imagenet stem, got {h}x{w}")
    model = _meta_build(name, **kwargs)
    chans = in_chans or _in_chans(model, int(default[0]))
    shape = (chans, int(default[1]), h, w) if len(default) == 4 else (chans, h, w)  # a video model: (C, T, H, W) clips
    if getattr(model, "needs_flow", False):
        raise ConfigError(f"models show: {name} takes optical flow beside its clip; expected a single-input model, got a two-input one")
    s = summarize(model, shape, batch_size=batch_size, depth=depth, name=name)

    what = f"{stem} stem" if "stem" in kwargs else MODELS.get(name).task
    table = Table(title=f"{name} ({what}) at input {batch_size}x{'x'.join(map(str, shape))}", title_justify="left")
    for col, just in (("layer", "left"), ("type", "left"), ("output shape", "left"), ("params", "right"), ("FLOPs", "right")):
        table.add_column(col, justify=just)
    for r in s.rows:
        shape = "-" if r.output_shape is None else "(" + ", ".join(map(str, r.output_shape)) + ")"
        table.add_row("  " * (r.depth - 1) + r.name, r.kind, shape, f"{r.params:,}" if r.params else "-", human(r.flops) if r.flops else "-")
    console = Console(width=max(Console().width, 100))
    console.print(table)
    for k, v in s.totals():
        console.print(f"[bold]{k:<14}[/bold] {v}")
    console.print("FLOPs count multiply-adds of convolutions and matmuls as 2 (torch.utils.flop_counter); memory is an estimate.")
    if out is not None:
        atomic_write_text(out, s.to_text() + "\n")
        click.echo(f"table: {out}")
    if png is not None:
        click.echo(f"stage widths: {plot_stage_widths(s, png)}")


def _in_chans(model, default: int) -> int:
    """Input channels of the first conv / linear layer (builders differ: LeNet-5 takes gray images)."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    return default
