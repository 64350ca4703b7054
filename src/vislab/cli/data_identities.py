"""``vislab data generate-identities``: generated identities on disk, as identity folders or in LFW's layout."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from vislab.cli.data import group


@group.command(name="generate-identities")
@click.argument("dst")
@click.option("--identities", default=30, show_default=True, help="identities (one folder each)")
@click.option("--per", default=12, show_default=True, help="images per identity")
@click.option("--size", default=32, show_default=True, help="image size (pixels)")
@click.option("--layout", type=click.Choice(("folders", "lfw")), default="folders", show_default=True,
              help="folders: DST/<identity>/<n>.png; lfw: DST/lfw/<Name>/<Name>_0001.jpg and DST/pairs.txt (10 folds of matched and mismatched pairs)")
@click.option("--pairs", default=20, show_default=True, help="--layout lfw: matched (and as many mismatched) pairs per fold")
@click.option("--seed", default=0, show_default=True, help="random seed")
def generate_identities(dst: str, identities: int, per: int, size: int, layout: str, pairs: int, seed: int) -> None:
    """Write generated identities (random glyphs in random colours, places and sizes) to DST, for `vislab embed`."""
    from PIL import Image

    from vislab.core.errors import ConfigError
    from vislab.core.io import atomic_write_text
    from vislab.data.synthetic.identities import generate_identities as generate

    if identities < 2 or per < 1 or size < 8:
        raise ConfigError(f"generate-identities: expected --identities >= 2, --per >= 1, --size >= 8, got {identities}, {per}, {size}")
    d = generate(identities, per, size, seed)
    root = Path(dst) / ("lfw" if layout == "lfw" else "")
    names = [f"Person_{c:03d}" for c in range(identities)] if layout == "lfw" else d["classes"]
    counts = [0] * identities
    for img, lab in zip(d["images"], d["labels"].tolist(), strict=True):
        counts[lab] += 1
        folder = root / names[lab]
        folder.mkdir(parents=True, exist_ok=True)
        a = img.permute(1, 2, 0).numpy()
        if layout == "lfw":
            Image.fromarray(a).save(folder / f"{names[lab]}_{counts[lab]:04d}.jpg", quality=95)
        else:
            Image.fromarray(a).save(folder / f"{counts[lab]:04d}.png")
    if layout == "lfw":
        if per < 2:
            raise ConfigError(f"--per: expected >= 2 for matched pairs, got {per}")
        rng = np.random.default_rng(seed + 1)
        lines = [f"10\t{pairs}"]
        for _ in range(10):  # LFW's pairs.txt: per fold, the matched lines, then the mismatched ones
            for _ in range(pairs):
                c = int(rng.integers(identities))
                a, b = rng.choice(per, 2, replace=False) + 1
                lines.append(f"{names[c]}\t{a}\t{b}")
            for _ in range(pairs):
                c1, c2 = rng.choice(identities, 2, replace=False)
                lines.append(f"{names[c1]}\t{int(rng.integers(per)) + 1}\t{names[c2]}\t{int(rng.integers(per)) + 1}")
        atomic_write_text(Path(dst) / "pairs.txt", "\n".join(lines) + "\n")
    click.echo(f"wrote {identities} identities x {per} images -> {root}" + (f" (and {Path(dst) / 'pairs.txt'}: 10 folds x {2 * pairs} pairs)" if layout == "lfw" else ""))
