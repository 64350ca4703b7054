"""The run folder: ``runs/<task>/<name>/`` with config, provenance, metrics and checkpoints.

Layout::

    config.yaml          the resolved config (defaults <- --config <- options)
    run.json             git revision, versions, command line, machine, precision, timings
    metrics.csv          one row per epoch (rewritten atomically from the history)
    tb/                  TensorBoard events
    checkpoints/         last.safetensors (+ .json) every epoch, best.safetensors (+ .json)
    curves.png, report.html, ... pictures the task writes
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from vislab.core.config import save_yaml
from vislab.core.errors import ConfigError
from vislab.core.io import atomic_write_text, git_revision


def next_free_name(root: Path, base: str = "exp") -> str:
    if not (root / base).exists():
        return base
    i = 2
    while (root / f"{base}{i}").exists():
        i += 1
    return f"{base}{i}"


def create_run_dir(out: str, task: str, name: str, overwrite: bool) -> Path:
    """A new run folder (the first free ``exp``, ``exp2``... when ``name`` is empty).

    Raises:
        ConfigError: the folder holds a run (and no ``overwrite``), or ``out`` cannot be written (said before training).
    """
    root = Path(out).expanduser() / task
    try:
        root.mkdir(parents=True, exist_ok=True)
        name = name or next_free_name(root)
        d = root / name
        if (d / "checkpoints").exists() and not overwrite:
            raise ConfigError(f"run folder '{d}' already holds a run; expected a new --name, --resume {d} to continue it, or --overwrite")
        (d / "checkpoints").mkdir(parents=True, exist_ok=True)
        probe = d / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"--out: expected a folder vislab can write, got '{e.filename or root}' ({e.strerror or e})") from None
    return d


class RunLock:
    """``<run>/.lock``: which process (pid, host, start time) trains into a run folder -- one writer per run.

    A lock left by a process that is gone (same host, pid not running) is stale and taken over; a lock of a live
    process (or of another host) refuses a second writer with one line.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self.held = False

    def acquire(self) -> RunLock:
        import os
        import socket

        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None:  # stale: take it over
                    self.path.unlink(missing_ok=True)
                    continue
                raise ConfigError(f"run folder '{self.path.parent}' is being written by process {holder.get('pid')} on {holder.get('host')} "
                                  f"(since {holder.get('started')}); expected one writer per run: let it finish or train into another "
                                  f"--name (if that process is gone, delete {self.path})") from None
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}, f)
            self.held = True
            return self
        raise ConfigError(f"run folder '{self.path.parent}': expected to take its lock {self.path}, got it taken again and again")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def _holder(self) -> dict[str, Any] | None:
        """The live holder's facts, or None when the lock is stale."""
        import os
        import socket

        try:
            info = json.loads(self.path.read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):  # half-written by a process killed at that moment
            try:
                return None if time.time() - self.path.stat().st_mtime > 10 else {"pid": "?", "host": "?", "started": "just now"}
            except OSError:
                return None
        if info.get("host") != socket.gethostname():
            return info  # cannot tell whether it runs: assume so
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # it runs, as another user
        return info


def environment() -> dict[str, Any]:
    import torch

    import vislab

    return {
        "vislab": vislab.__version__,
        "git": git_revision(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "command": " ".join(["vislab", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("vislab") else " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write_run_files(run_dir: Path, cfg: Any, extra: dict[str, Any] | None = None) -> None:
    save_yaml(cfg, run_dir / "config.yaml")
    info = environment()
    info.update(extra or {})
    atomic_write_text(run_dir / "run.json", json.dumps(info, indent=1, default=str))


def update_run_json(run_dir: Path, **kv: Any) -> None:
    p = run_dir / "run.json"
    info = json.loads(p.read_text()) if p.exists() else {}
    info.update(kv)
    atomic_write_text(p, json.dumps(info, indent=1, default=str))


def fit_summary(result: Any, test: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The ``summary`` block of run.json: how a :class:`~vislab.engine.trainer.FitResult` went, its last epoch's
    train/val numbers, and the final ``test`` numbers."""
    last = result.history[-1] if result.history else {}
    return {
        "epochs_run": len(result.history), "best_metric": result.best_metric, "best_value": result.best_value,
        "best_epoch": result.best_epoch + 1, "stopped_early": result.stopped_early, "train_seconds": round(result.seconds, 2),
        "total_seconds": round(seconds, 2), "images_per_second": round(result.images_per_second, 1),
        **{k: v for k, v in last.items() if k.startswith(("val_", "train_"))}, **test,
    }


def storage_error(e: OSError, task: str, run_dir: Path | None) -> Exception:
    """One line for a file-system failure during a run (a full disk, a folder gone read-only): the path, the reason,
    and whether and how the run can continue from its last good checkpoint."""
    from vislab.core.errors import TrainingError

    last = Path(run_dir) / "checkpoints" / "last.json" if run_dir is not None else None
    if last is not None and last.is_file():
        try:
            epoch = json.loads(last.read_text()).get("epoch", "?")
        except (OSError, ValueError):
            epoch = "?"
        hint = (f"; the last good checkpoint (epoch {epoch}) is intact in {last.parent}: make room and continue with "
                f"`vislab {task} train --resume {run_dir}`")
    else:
        hint = "; no checkpoint was written yet"
    return TrainingError(f"could not write '{e.filename or run_dir}': {e.strerror or e}{hint}")

