"""Training progress: a rich bar (loss and a running stat, img/s, ETA) on terminals, one line per epoch elsewhere
(the commands that work through many inputs use :class:`vislab.core.progress.Tracker`)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vislab.core.progress import use_bar


class EpochProgress:
    """Shows training progress of one process (the main one); silent elsewhere."""

    def __init__(self, mode: str, enabled: bool = True):
        self.enabled = enabled
        self.bar = enabled and use_bar(mode)
        self.console = Console(stderr=True)
        self._p: Progress | None = None
        self._task = None
        self._t0 = 0.0
        self._seen = 0

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        self._t0, self._seen = time.perf_counter(), 0
        if not self.bar:
            return
        self._p = Progress(
            TextColumn(f"epoch {epoch + 1}/{epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._p.start()
        self._task = self._p.add_task("train", total=steps, info="")

    def step(self, n_images: int, shown: dict[str, float]) -> None:
        """One batch done: ``n_images`` more, and the running means to show (e.g. ``{"loss": 0.41, "acc": 0.87}``)."""
        self._seen += n_images
        if self._p is None:
            return
        ips = self._seen / max(time.perf_counter() - self._t0, 1e-9)
        info = "  ".join(f"{k} {v:.4f}" if k.startswith("loss") else f"{k} {v:.3f}" for k, v in shown.items()) + f"  {ips:,.0f} img/s"
        self._p.update(self._task, advance=1, info=info)

    def end_epoch(self, line: str) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None
        if self.enabled:
            self.console.print(line, highlight=False, soft_wrap=True)

    def log(self, line: str) -> None:
        if self.enabled:
            self.console.print(line, highlight=False, soft_wrap=True)
