"""Progress of the commands that work through many inputs (predict, eval, explain, export, image apply): a rich
bar with rate and ETA on a terminal, a line every ``LINE_EVERY`` seconds elsewhere, nothing with ``--progress off``."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def use_bar(mode: str) -> bool:
    """A live bar: ``on``, or ``auto`` with stderr on a terminal."""
    return mode == "on" or (mode == "auto" and sys.stderr.isatty())


_command_mode = "auto"  # the running command's --progress (set_command_mode); "auto" for the Python API
LINE_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal
PROGRESS_HELP = "progress over the inputs: auto (a bar with ETA on a terminal, a line every 10 s elsewhere), on, off"


def set_command_mode(mode: str) -> None:
    """``--progress`` of the command being run: auto (a bar on terminals, a line every ``LINE_EVERY`` seconds
    elsewhere), on (a bar), off (nothing)."""
    global _command_mode
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"progress: expected auto, on or off, got '{mode}'")
    _command_mode = mode


def _eta(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Tracker:
    """Progress of one command over ``total`` items (``None``: unknown): a rich bar with rate and ETA on a terminal,
    or, when stderr is not one, a line every ``LINE_EVERY`` seconds (``predict: 120/1000 images  41/s  eta 0:21``)
    and nothing for work shorter than that; nothing with ``--progress off``.

    Example:
        >>> with Tracker("predict", total=3, mode="off") as p:
        ...     for _ in range(3):
        ...         p.advance()
        >>> p.done
        3
    """

    def __init__(self, label: str, total: int | None, unit: str = "images", mode: str | None = None):
        self.label, self.total, self.unit = label, total, unit
        mode = mode or _command_mode
        self.off = mode == "off"
        self.bar = not self.off and use_bar(mode)
        self.done = 0
        self._p: Progress | None = None
        self._t0 = self._last = 0.0

    def __enter__(self) -> Tracker:
        self._t0 = self._last = time.perf_counter()
        if self.bar:
            self._p = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TextColumn(self.unit),
                               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                               console=Console(stderr=True), transient=True)
            self._p.start()
            self._task = self._p.add_task(self.label, total=self.total, rate="")
        return self

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        rate = self.done / max(now - self._t0, 1e-9)
        if self._p is not None:
            self._p.update(self._task, advance=n, rate=f"{rate:,.1f}/s")
        elif not self.off and now - self._last >= LINE_EVERY:
            self._last = now
            of = f"/{self.total}" if self.total else ""
            left = f"  eta {_eta((self.total - self.done) / max(rate, 1e-9))}" if self.total else ""
            print(f"{self.label}: {self.done}{of} {self.unit}  {rate:,.1f}/s{left}", file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None


def track(items, label: str, unit: str = "images", total: int | None = None, mode: str | None = None):
    """Iterate ``items`` with a :class:`Tracker` (``total`` defaults to ``len(items)`` when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    with Tracker(label, total, unit, mode) as p:
        for item in items:
            yield item
            p.advance()
