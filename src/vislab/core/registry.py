"""Name -> builder registries (models, datasets, ...): the class; the registries themselves live with what
they hold (:data:`vislab.models.registry.MODELS`, :data:`vislab.data.classify.source.DATASETS`).

A builder is registered with a decorator; the function name is the registered name.
Duplicate names raise. ``list_models`` filters with shell-style patterns.

Example:
    >>> reg = Registry("widget")
    >>> @reg.register(task="demo")
    ... def tiny_widget(size: int = 3):
    ...     return [0] * size
    >>> reg.list("tiny*")
    ['tiny_widget']
    >>> reg.build("tiny_widget", size=2)
    [0, 0]
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vislab.core.errors import ModelError, did_you_mean


@dataclass(frozen=True)
class Entry:
    """One registered builder and what is known about it without calling it."""

    name: str
    fn: Callable[..., Any]
    task: str = ""
    family: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0] if self.fn.__doc__ else ""


class Registry:
    """A named collection of builders.

    Prefix handlers resolve open-ended names such as ``timm:convnext_tiny``.
    """

    def __init__(self, kind: str, error: type[Exception] = ModelError, loader: Callable[[], None] | None = None):
        self.kind = kind
        self.error = error
        self._entries: dict[str, Entry] = {}
        self._prefixes: dict[str, Callable[..., Any]] = {}
        self._loader = loader  # imports the modules that register entries, on first lookup
        self._loaded = loader is None

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True
            assert self._loader is not None
            self._loader()

    def register(
        self, fn: Callable[..., Any] | None = None, *, name: str | None = None, task: str = "", family: str = "", **meta: Any
    ):
        """Decorator registering ``fn`` under its own name (or ``name``)."""

        def deco(f: Callable[..., Any]) -> Callable[..., Any]:
            key = name or f.__name__
            if key in self._entries:
                raise self.error(f"{self.kind} '{key}' is already registered; expected a unique name")
            self._entries[key] = Entry(key, f, task, family or f.__module__.rsplit(".", 1)[-1], dict(meta))
            return f

        return deco(fn) if fn is not None else deco

    def register_prefix(self, prefix: str, fn: Callable[..., Any]) -> None:
        """Resolve names ``'<prefix>:<rest>'`` with ``fn(rest, **kwargs)``."""
        self._prefixes[prefix] = fn

    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        return name in self._entries or name.split(":", 1)[0] in self._prefixes and ":" in name

    def get(self, name: str) -> Entry:
        self._ensure_loaded()
        if name in self._entries:
            return self._entries[name]
        hint = "a registered name (see `vislab models list`)" if self.kind == "model" else f"one of {sorted(self._entries)}"
        raise self.error(f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)}; expected {hint}")

    def build(self, name: str, **kwargs: Any) -> Any:
        self._ensure_loaded()
        if ":" in name and name not in self._entries:
            prefix, rest = name.split(":", 1)
            if prefix in self._prefixes:
                return self._prefixes[prefix](rest, **kwargs)
        return self.get(name).fn(**kwargs)

    def list(self, pattern: str = "*", task: str | None = None) -> list[str]:
        """Registered names matching ``pattern`` (and ``task`` when given), sorted."""
        self._ensure_loaded()
        pats = [p for p in pattern.split(",") if p] or ["*"]
        return sorted(
            n
            for n, e in self._entries.items()
            if any(fnmatch.fnmatch(n, p) for p in pats) and (task is None or e.task == task)
        )

    def entries(self) -> list[Entry]:
        self._ensure_loaded()
        return [self._entries[n] for n in sorted(self._entries)]
