"""``vislab image``: classical image processing on your pictures (or scikit-image's samples).

Commands: ``apply`` (a chain of ops over files, folders, globs or a YAML pipeline), ``ops`` (the op
names), ``kernels`` (the kernel catalogue explained), ``compare`` (several ops side by side), ``flow``
(optical flow picture), ``superpixels`` and ``proposals``. Without inputs every command runs on a
scikit-image sample (``sample:astronaut`` by default; also camera, coffee, chelsea, rocket), offline.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import click
import numpy as np

from vislab.core.errors import ConfigError, DataError, did_you_mean
from vislab.core.progress import PROGRESS_HELP, track
from vislab.ops.catalog import as_gray, build_chain, op_table

SAMPLES = ("astronaut", "camera", "coffee", "chelsea", "rocket")
DEFAULT_COMPARE = ("gray", "gaussian_blur=7", "sobel", "canny", "hsv", "equalize_hist", "threshold=otsu", "rotate=30")


# --------------------------------------------------------------------------- images in and out
def load_sample(name: str) -> np.ndarray:
    import skimage.data

    if name not in SAMPLES:
        raise DataError(f"sample: expected one of {', '.join(SAMPLES)}, got {name!r}{did_you_mean(name, SAMPLES)}")
    a = getattr(skimage.data, name)()
    return np.repeat(a[:, :, None], 3, 2) if a.ndim == 2 else a[:, :, :3]


def expand_inputs(inputs: tuple[str, ...]) -> list[tuple[str, np.ndarray | Path]]:
    """Files, folders (their images), globs and ``sample:NAME`` -> [(stem, path or array)]."""
    from vislab.core.io import IMAGE_EXTENSIONS

    if not inputs:
        inputs = ("sample:astronaut",)
    found: list[tuple[str, np.ndarray | Path]] = []
    for item in inputs:
        if item.startswith("sample:"):
            found.append((item.split(":", 1)[1], load_sample(item.split(":", 1)[1])))
            continue
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise DataError(f"input folder '{p}': expected image files, got none")
        elif any(ch in item for ch in "*?["):
            files = sorted(Path(f) for f in glob.glob(item, recursive=True) if Path(f).suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise DataError(f"input glob '{item}': expected matching image files, got none")
        else:
            files = [p]
        found += [(f.stem, f) for f in files]
    return found


def read(src: np.ndarray | Path) -> Any:
    """``(1, 3, H, W)`` float tensor in [0, 1] from an array or a file."""
    import torch

    from vislab.core.io import read_image

    a = src if isinstance(src, np.ndarray) else read_image(src)
    return torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)[None] / 255.0


def to_display(y: Any, normalize: str = "auto") -> np.ndarray:
    """A ``(1, C, H, W)`` result -> uint8 ``(H, W[, 3])``; out-of-range results are min-max scaled."""
    y = y.detach().float().cpu()[0]
    lo, hi = float(y.min()), float(y.max())
    if normalize == "minmax" or (normalize == "auto" and (lo < -1e-6 or hi > 1 + 1e-6)):
        y = (y - lo) / max(hi - lo, 1e-12)
    a = (y.clamp(0, 1) * 255).round().to(dtype=__import__("torch").uint8).permute(1, 2, 0).numpy()
    return a[:, :, 0] if a.shape[2] == 1 else a[:, :, :3]


def write_png(path: Path, a: np.ndarray) -> None:
    from PIL import Image

    from vislab.core.io import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(a).save(tmp, format="PNG")


def save_figure(fig: Any, path: Path) -> None:
    from vislab.core.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi, bbox_inches="tight")


def _out_file(out: str | None, default: str) -> Path:
    p = Path(out or default)
    return p if p.suffix.lower() == ".png" else p / default


# --------------------------------------------------------------------------- commands
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
def group() -> None:
    """Classical image processing: apply | ops | kernels | compare | flow | superpixels | proposals."""


@group.command("ops")
def list_ops() -> None:
    """List the op names that --op and pipelines take."""
    for name, (_, help_) in op_table().items():
        click.echo(f"{name:<20} {help_}")


@group.command()
@click.argument("inputs", nargs=-1)
@click.option("--op", "op_specs", multiple=True, help="an op, applied in order: sobel | gamma=0.5 | gaussian_blur:ksize=7,sigma=2")
@click.option("--pipeline", type=click.Path(dir_okay=False), help="YAML file: a list of ops (strings or {name: args})")
@click.option("-o", "--out", default="runs/image/apply", show_default=True, help="output folder (or a .png for one input)")
@click.option("--normalize", type=click.Choice(["auto", "minmax", "clip"]), default="auto", show_default=True,
              help="how results outside [0, 1] become pixels")
@click.option("--progress", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True, help=PROGRESS_HELP)
def apply(inputs: tuple[str, ...], op_specs: tuple[str, ...], pipeline: str | None, out: str, normalize: str, progress: str) -> None:
    """Apply a chain of ops to images (files, folders, globs, sample:NAME; sample:astronaut by default)."""
    import yaml

    specs: list[Any] = []
    if pipeline:
        p = Path(pipeline)
        if not p.is_file():
            raise DataError(f"pipeline '{p}': expected an existing YAML file, got nothing at that path")
        data = yaml.safe_load(p.read_text())
        data = data.get("ops", data.get("pipeline")) if isinstance(data, dict) else data
        if not isinstance(data, list):
            raise ConfigError(f"pipeline '{p}': expected a list of ops (or a mapping with 'ops:'), got {type(data).__name__}")
        specs += data
    specs += list(op_specs)
    if not specs:
        raise ConfigError("apply: expected at least one --op or a --pipeline, got none (see `vislab image ops`)")
    chain = build_chain(specs)
    items = expand_inputs(inputs)
    single_file = len(items) == 1 and out.lower().endswith(".png")
    for stem, src in track(items, "apply", mode=progress):
        y = read(src)
        for _, fn in chain:
            y = fn(y)
        dest = Path(out) if single_file else Path(out) / f"{stem}.png"
        write_png(dest, to_display(y, normalize))
        click.echo(f"wrote {dest}")


@group.command()
@click.option("--image", "image", default="sample:camera", show_default=True, help="image to filter (file or sample:NAME)")
@click.option("--size", type=int, default=None, help="size of the sized kernels (odd) [default: each kernel's own]")
@click.option("-o", "--out", default="runs/image/kernels.png", show_default=True, help="output PNG (or folder)")
def kernels(image: str, size: int | None, out: str) -> None:
    """The kernel catalogue: each kernel's matrix next to its effect on an image."""
    from matplotlib.figure import Figure

    from vislab import ops

    x = as_gray(read(expand_inputs((image,))[0][1]))
    x = ops.resize(x, 256) if min(x.shape[-2:]) > 256 else x
    names = ops.list_kernels()
    fig = Figure(figsize=(6.4, 2.6 * len(names) / 2), dpi=80)
    for i, name in enumerate(names):
        k = ops.get_kernel(name, size if ops.KERNELS[name].sized else None)
        ax = fig.add_subplot(len(names) // 2 + 1, 4, 2 * i + 1)
        ax.imshow(k.numpy(), cmap="coolwarm", vmin=-float(k.abs().max()) or -1, vmax=float(k.abs().max()) or 1)
        if k.shape[0] <= 5:
            for (r, c), v in np.ndenumerate(k.numpy()):
                ax.text(c, r, f"{v:.2g}", ha="center", va="center", fontsize=6)
        ax.set_title(name, fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
        ax2 = fig.add_subplot(len(names) // 2 + 1, 4, 2 * i + 2)
        y = ops.filter2d(x, k)
        smoothing = abs(float(k.sum()) - 1.0) < 1e-6  # keeps brightness: show as is; else stretch
        ax2.imshow(to_display(y, "clip" if smoothing else "minmax"), cmap="gray", vmin=0, vmax=255)
        ax2.set_title(ops.KERNELS[name].description[:28], fontsize=6)
        ax2.set_xticks([]), ax2.set_yticks([])
    fig.tight_layout()
    dest = _out_file(out, "kernels.png")
    save_figure(fig, dest)
    click.echo(f"wrote {dest}")


def _grid(panels: list[tuple[str, np.ndarray]], cols: int, dest: Path) -> None:
    from matplotlib.figure import Figure

    rows = (len(panels) + cols - 1) // cols
    fig = Figure(figsize=(3.0 * cols, 3.0 * rows), dpi=80)
    for i, (title, a) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, dest)


@group.command()
@click.argument("image", required=False, default="sample:astronaut")
@click.option("--op", "op_specs", multiple=True, help=f"ops to compare [default: {' '.join(DEFAULT_COMPARE)}]")
@click.option("--cols", default=3, show_default=True)
@click.option("-o", "--out", default="runs/image/compare.png", show_default=True)
def compare(image: str, op_specs: tuple[str, ...], cols: int, out: str) -> None:
    """Several ops side by side on one image (the original first)."""
    x = read(expand_inputs((image,))[0][1])
    chain = build_chain(list(op_specs or DEFAULT_COMPARE))
    panels = [("original", to_display(x))] + [(name, to_display(fn(x))) for name, fn in chain]
    dest = _out_file(out, "compare.png")
    _grid(panels, cols, dest)
    click.echo(f"wrote {dest}")


@group.command()
@click.argument("frames", nargs=-1)
@click.option("--method", type=click.Choice(["farneback", "lucas-kanade", "both"]), default="both", show_default=True)
@click.option("-o", "--out", default="runs/image/flow.png", show_default=True)
def flow(frames: tuple[str, ...], method: str, out: str) -> None:
    """Optical flow between frames A and B (default: a sample and a shifted, rotated copy)."""
    import torch

    from vislab import ops

    if len(frames) not in (0, 2):
        raise ConfigError(f"flow: expected two frames A B (or none for the sample), got {len(frames)}")
    if frames:
        a, b = (read(expand_inputs((f,))[0][1]) for f in frames)
        if a.shape != b.shape:
            raise DataError(f"flow: expected frames of one size, got {tuple(a.shape[-2:])} and {tuple(b.shape[-2:])}")
    else:
        a = ops.resize(read(load_sample("astronaut")), 256)
        m = ops.rotation_matrix((128.0, 128.0), 3.0)
        m[:, 2] += torch.tensor([4.0, 2.0]).to(m)
        b = ops.warp_affine(a, m, border="reflect")
    panels = [("frame A", to_display(a)), ("frame B", to_display(b))]
    if method in ("farneback", "both"):
        panels.append(("Farneback (hue = direction)", to_display(ops.flow_to_color(ops.farneback(a, b)))))
    if method in ("lucas-kanade", "both"):
        tr = ops.lucas_kanade(a, b, max_corners=150)[0]
        ok = tr.status
        panels.append(("Lucas-Kanade tracks (x3)", to_display(ops.draw_tracks(a[0], tr.points0[ok], tr.points1[ok], scale=3)[None])))
    dest = _out_file(out, "flow.png")
    _grid(panels, len(panels), dest)
    click.echo(f"wrote {dest}")


@group.command()
@click.argument("image", required=False, default="sample:astronaut")
@click.option("-n", "--n-segments", default=200, show_default=True)
@click.option("--compactness", default=10.0, show_default=True)
@click.option("-o", "--out", default="runs/image/superpixels.png", show_default=True)
def superpixels(image: str, n_segments: int, compactness: float, out: str) -> None:
    """SLIC superpixels: boundaries and mean colours."""
    from vislab import ops

    x = read(expand_inputs((image,))[0][1])
    labels = ops.slic(x, n_segments, compactness)
    panels = [("original", to_display(x)), (f"SLIC boundaries ({int(labels.max()) + 1})", to_display(ops.mark_boundaries(x, labels))),
              ("mean colour", to_display(ops.superpixel_mean(x, labels)))]
    dest = _out_file(out, "superpixels.png")
    _grid(panels, 3, dest)
    click.echo(f"wrote {dest}")


@group.command()
@click.argument("image", required=False, default="sample:astronaut")
@click.option("--mode", type=click.Choice(["fast", "quality", "single"]), default="fast", show_default=True)
@click.option("--top", default=50, show_default=True, help="boxes to draw")
@click.option("--max-side", default=300, show_default=True, help="search on a copy this large (speed)")
@click.option("-o", "--out", default="runs/image/proposals.png", show_default=True)
def proposals(image: str, mode: str, top: int, max_side: int, out: str) -> None:
    """Selective search region proposals, the first --top boxes drawn."""
    from vislab import ops

    x = read(expand_inputs((image,))[0][1])
    boxes = ops.selective_search(x, mode, max_boxes=top, max_side=max_side)[0]
    dest = _out_file(out, "proposals.png")
    write_png(dest, to_display(ops.draw_boxes(x, boxes, thickness=1)))
    click.echo(f"wrote {dest} ({len(boxes)} boxes)")

