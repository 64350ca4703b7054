"""Build click commands from config dataclasses: one option per leaf field, ``--config run.yaml``.

Precedence: defaults (the dataclass) <- ``--config`` YAML <- options the user typed. Options left
untyped do not override the YAML, so a CLI default never silently wins over a file.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import click

from vislab.core import config as C


def _click_type(leaf: C.Leaf) -> Any:
    if leaf.choices:
        return click.Choice(list(leaf.choices))
    tp = leaf.type
    if typing.get_origin(tp) in (list, tuple):
        return str  # comma-separated, coerced by the config layer
    if typing.get_origin(tp) is typing.Union or type(tp).__name__ == "UnionType":
        tp = [a for a in typing.get_args(tp) if a is not type(None)][0]
    return {int: int, float: float, str: str}.get(tp, str)


def config_options(cfg_cls: type, skip: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Decorator adding ``--config`` and one option per leaf of ``cfg_cls``."""

    defaults = C.flat_dict(cfg_cls())  # the task's own defaults (a section factory may override a field's)

    def deco(f: Callable) -> Callable:
        for leaf in reversed(C.leaves(cfg_cls)):
            if not leaf.cli or leaf.name in skip:
                continue
            flag = "--" + leaf.name.rstrip("_").replace("_", "-")  # a field `class_` is the option --class
            flags = (flag, "-" + leaf.name) if len(leaf.name) == 1 else (flag,)  # a one-letter field also takes -k 8
            value = defaults[leaf.name]
            shown = ",".join(map(str, value)) if isinstance(value, list | tuple) else value
            help_ = f"{leaf.help} [default: {shown}]" if shown not in ("", None) else leaf.help
            if leaf.type is bool:
                f = click.option(f"{flag}/--no-{flag[2:]}", leaf.name, default=None, help=help_)(f)
            else:
                f = click.option(*flags, leaf.name, type=_click_type(leaf), default=None, help=help_, metavar=None)(f)
        f = click.option(
            "--config", "config_path", type=click.Path(dir_okay=False), default=None,
            help="YAML file of options (nested by section or flat); options typed here override it",
        )(f)
        return f

    return deco


def build_config(cfg_cls: type, config_path: str | None, options: dict[str, Any]) -> Any:
    """Resolve the config from defaults, the YAML file and the options the user typed."""
    typed = {k: v for k, v in options.items() if v is not None}
    return C.resolve(cfg_cls, config_path, typed)


def typed_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}
