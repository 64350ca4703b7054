"""Typed configuration: dataclasses are the single source of defaults.

A task's config is a dataclass whose fields are *sections* (themselves dataclasses: data, model,
train, run). Every leaf field has a unique name across sections, so it maps 1:1 onto a CLI option
(``lr`` -> ``--lr``) and onto a YAML key, nested by section or flat::

    train: {lr: 0.05, epochs: 3}      # nested
    lr: 0.05                          # flat, same thing

Unknown keys are an error with a "did you mean". No ``exec``, no class names looked up from YAML.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Opt:
    ...     lr: float = opt(0.1, "learning rate")
    ...     optimizer: str = opt("sgd", "optimizer", choices=("sgd", "adam"))
    >>> from_dict(Opt, {"lr": "0.5"}).lr
    0.5
    >>> from_dict(Opt, {"optimizer": "adma"})
    Traceback (most recent call last):
    ...
    vislab.core.errors.ConfigError: config 'optimizer': expected one of sgd, adam, got 'adma' (did you mean 'adam'?)
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vislab.core.errors import ConfigError, did_you_mean

T = TypeVar("T")


def opt(default: Any, help: str, *, choices: tuple[str, ...] | None = None, cli: bool = True, optional: bool = False) -> Any:
    """A config field with its help text (and allowed values), shown by ``--help``; ``cli=False``: a positional
    argument of the command (``optional``: it may be left out)."""
    meta = {"help": help, "choices": choices, "cli": cli, "optional": optional}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Leaf:
    """A leaf field of a config: where it lives and what it accepts."""

    name: str  # unique across sections: the CLI option and flat YAML key
    path: tuple[str, ...]  # section names leading to it
    type: Any
    default: Any
    help: str
    choices: tuple[str, ...] | None
    cli: bool


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def leaves(cls: type, _path: tuple[str, ...] = ()) -> list[Leaf]:
    """Every leaf field of a (nested) config dataclass, in declaration order."""
    out: list[Leaf] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(leaves(tp, _path + (f.name,)))
            continue
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        out.append(
            Leaf(f.name, _path, tp, default, f.metadata.get("help", ""), f.metadata.get("choices"), f.metadata.get("cli", True))
        )
    names = [leaf.name for leaf in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"{cls.__name__}: expected unique field names across sections, got duplicates {sorted(dup)}")
    return out


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
                return False
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if tp is str:
            if isinstance(value, dict | list):
                raise ValueError
            return str(value)
        if origin in (list, tuple):
            items = value.split(",") if isinstance(value, str) else list(value)
            items = [i for i in items if i != ""] if isinstance(value, str) else items
            conv = [_coerce(v, args[0], key) for v in items]
            return conv if origin is list else tuple(conv)
    except (TypeError, ValueError):
        name = getattr(tp, "__name__", str(tp))
        raise ConfigError(f"config '{key}': expected {name}, got {value!r}") from None
    return value


def _check_choice(leaf: Leaf, value: Any) -> None:
    if leaf.choices and value not in leaf.choices:
        raise ConfigError(
            f"config '{leaf.name}': expected one of {', '.join(leaf.choices)}, got {value!r}{did_you_mean(str(value), leaf.choices)}"
        )


def from_dict(cls: type[T], data: Mapping[str, Any] | None = None, base: T | None = None) -> T:
    """Build ``cls`` from a nested or flat mapping, over ``base`` (or the defaults).

    Raises:
        ConfigError: an unknown key (with a suggestion), a value of the wrong type or not in its choices.
    """
    by_name = {leaf.name: leaf for leaf in leaves(cls)}
    sections = {f.name for f in dataclasses.fields(cls) if dataclasses.is_dataclass(_hints(cls)[f.name])}
    flat: dict[str, Any] = {}

    def walk(d: Mapping[str, Any], where: str) -> None:
        for k, v in d.items():
            k = str(k).replace("-", "_")
            if k in sections and isinstance(v, Mapping):
                walk(v, k)
            elif k in by_name:
                flat[k] = v
            else:
                raise ConfigError(
                    f"unknown config key '{k}'{' in ' + where if where else ''}{did_you_mean(k, list(by_name) + list(sections))}"
                )

    walk(data or {}, "")
    cfg = dataclasses.replace(base) if base is not None else cls()
    cfg = _deepcopy(cfg)
    for k, v in flat.items():
        leaf = by_name[k]
        value = _coerce(v, leaf.type, k)
        _check_choice(leaf, value)
        obj = cfg
        for p in leaf.path:
            obj = getattr(obj, p)
        setattr(obj, k, value)
    for leaf in by_name.values():  # defaults too must respect choices
        _check_choice(leaf, get_value(cfg, leaf))
    return cfg


def _deepcopy(cfg: T) -> T:
    import copy

    return copy.deepcopy(cfg)


def get_value(cfg: Any, leaf: Leaf) -> Any:
    obj = cfg
    for p in leaf.path:
        obj = getattr(obj, p)
    return getattr(obj, leaf.name)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The nested plain-dict form of a config (YAML/JSON ready)."""
    return dataclasses.asdict(cfg)


def flat_dict(cfg: Any) -> dict[str, Any]:
    """``{leaf_name: value}`` for every leaf (for logs, hparams and comparisons)."""
    return {leaf.name: get_value(cfg, leaf) for leaf in leaves(type(cfg))}


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file: expected an existing YAML file, got '{p}' (not found)")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file '{p}': expected valid YAML, got a parse error: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{p}': expected a mapping of keys to values, got {type(data).__name__}")
    return data


def resolve(cls: type[T], yaml_path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> T:
    """Defaults <- YAML file <- explicit overrides (CLI options the user typed)."""
    cfg = from_dict(cls, load_yaml(yaml_path)) if yaml_path else cls()
    return from_dict(cls, overrides or {}, base=cfg)


def save_yaml(cfg: Any, path: str | Path) -> None:
    from vislab.core.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
