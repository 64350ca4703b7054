"""Starting a training run, for any task: the run folder, processes, device, precision.

``launch(task, cfg, worker)`` creates (or reopens, on ``--resume``) ``runs/<task>/<name>/``, runs
``worker(cfg, run_dir)`` in-process, in ``--nproc`` spawned processes, or as one rank under torchrun,
and removes the folder again if the run fails before its first checkpoint. Inside the worker,
``start(task, cfg, run_dir)`` sets threads, device, process group, precision and writes the run files.
``cfg`` is any task config with ``train`` (:class:`TrainConfig`) and ``run`` (:class:`RunConfig`) sections.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vislab.core.device import Precision, resolve_device, resolve_precision
from vislab.core import dist as cd
from vislab.engine import distributed as D
from vislab.engine.run import RunLock, create_run_dir, write_run_files


def resolve_run_config(cls: type, config_path: str | None, typed: dict[str, Any]) -> Any:
    """A task's training config: defaults <- (the resumed run's config.yaml) <- --config YAML <- typed options."""
    from vislab.core import config as C
    from vislab.engine.checkpoint import resolve_path

    base = cls()
    resume = typed.get("resume") or (C.load_yaml(config_path).get("resume") if config_path else None)
    if resume:
        ck = resolve_path(resume, prefer="last")
        run_dir = ck.parent.parent
        saved = run_dir / "config.yaml"
        if saved.is_file():
            base = C.from_dict(cls, C.load_yaml(saved))
            base.run.name, base.run.out = run_dir.name, str(run_dir.parent.parent)
    cfg = C.from_dict(cls, C.load_yaml(config_path), base=base) if config_path else base
    return C.from_dict(cls, typed, base=cfg)


def launch(task: str, cfg: Any, worker: Callable[[Any, str | None], Path]) -> Path:
    """Run ``worker`` for a training run of ``task``; returns the run folder."""
    from vislab.engine.checkpoint import resolve_path

    info = cd.env_info()
    if cfg.run.resume:
        run_dir: Path | None = resolve_path(cfg.run.resume, prefer="last").parent.parent
    elif info.enabled:  # under torchrun: the worker's rank 0 creates the folder and tells the others
        run_dir = None
    else:
        run_dir = create_run_dir(cfg.run.out, task, cfg.run.name, cfg.run.overwrite)
    lock = RunLock(run_dir).acquire() if run_dir is not None else None  # refused: nothing is touched (not even cleaned up)
    fresh = run_dir is not None and not cfg.run.resume
    try:
        if cfg.train.nproc > 1 and not info.enabled:
            D.launch(worker, cfg.train.nproc, cfg, str(run_dir))
            return run_dir  # type: ignore[return-value]
        return worker(cfg, str(run_dir) if run_dir else None)
    except BaseException:
        if fresh:
            remove_if_no_checkpoint(run_dir)  # type: ignore[arg-type]
        raise
    finally:
        if lock is not None:
            lock.release()


def remove_if_no_checkpoint(run_dir: Path) -> None:
    """A run that failed before its first checkpoint leaves no folder behind (nothing is lost)."""
    if not any((run_dir / "checkpoints").glob("*.safetensors")):
        shutil.rmtree(run_dir, ignore_errors=True)


@dataclass
class WorkerContext:
    device: torch.device
    dist: cd.DistInfo
    precision: Precision
    run_dir: Path


def start(task: str, cfg: Any, run_dir_s: str | None) -> WorkerContext:
    """Set up this process of a run (call ``distributed.shutdown()`` when done)."""
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device, cd.env_info().local_rank)
    dist = D.init(device)
    if run_dir_s is None:  # torchrun: rank 0 creates the run folder and tells the others
        made = str(create_run_dir(cfg.run.out, task, cfg.run.name, cfg.run.overwrite)) if dist.is_main else None
        run_dir_s = cd.broadcast_object(made)
    precision = resolve_precision(tc.precision, device)
    if tc.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    run_dir = Path(run_dir_s)
    if dist.is_main:
        write_run_files(run_dir, cfg, {"task": task, "precision": precision.name, "channels_last": precision.channels_last,
                                       "device": str(device), "world_size": dist.world})
    return WorkerContext(device, dist, precision, run_dir)
