"""``vislab data ...``: look at and convert datasets.

Subcommands live in their own modules (each defines click commands and registers them on ``group``
when imported); a missing module simply contributes nothing.
"""

from __future__ import annotations

import importlib

import click


@click.group(name="data")
def group() -> None:
    """Datasets: preview augmented samples, convert and validate annotation formats, write generated ones."""


for _mod in ("vislab.cli.data_preview", "vislab.cli.data_convert", "vislab.cli.data_identities"):
    try:
        importlib.import_module(_mod)
    except ModuleNotFoundError as e:  # only the module itself may be absent, not its dependencies
        if e.name != _mod:
            raise
