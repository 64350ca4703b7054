"""Tasks: one package per task (``classify/``, ``segment/``, ``detect/``, ...), each with a ``SPEC``
(:class:`~vislab.tasks.base.TaskSpec`), and the registry below -- the one list of them. ``vislab --help`` and
the CLI's task groups come from it; this module imports nothing heavy, so listing the tasks stays fast.

Example:
    >>> "classify" in task_names()
    True
    >>> get_spec("segment").config.__name__
    'SegmentConfig'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from vislab.core.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class TaskEntry:
    name: str
    module: str  # the package defining SPEC
    summary: str  # one line for `vislab --help`


_TASKS: dict[str, TaskEntry] = {}


def register_task(name: str, module: str, summary: str) -> None:
    """Add a task: ``module`` is the package that defines its ``SPEC``; ``summary`` shows in ``vislab --help``."""
    if name in _TASKS:
        raise ConfigError(f"task '{name}' is already registered; expected a unique name")
    _TASKS[name] = TaskEntry(name, module, summary)


def task_names() -> list[str]:
    return list(_TASKS)


def task_entries() -> list[TaskEntry]:
    return list(_TASKS.values())


def get_spec(name: str) -> Any:
    """The :class:`~vislab.tasks.base.TaskSpec` of task ``name`` (imports its package).

    Raises:
        ConfigError: an unknown task name (with a suggestion).
    """
    if name not in _TASKS:
        raise ConfigError(f"task: expected one of {', '.join(_TASKS)}, got '{name}'{did_you_mean(name, _TASKS)}")
    return importlib.import_module(_TASKS[name].module).SPEC


register_task("classify", "vislab.tasks.classify", "image classification: train | eval | predict | explain | export | lr-find")
register_task("segment", "vislab.tasks.segment", "semantic segmentation: train | eval | predict | explain | export | lr-find")
register_task("detect", "vislab.tasks.detect", "object detection: train | eval | predict | explain | export | import | lr-find")
register_task("gan2d", "vislab.tasks.gan2d", "a GAN on 2-D points, the two-model example task: train | eval | sample")
register_task("embed", "vislab.tasks.embed", "metric learning, verification, retrieval: train | eval | embed | index | search | verify | cluster | fewshot | explain | lr-find")
register_task("generate", "vislab.tasks.generate", "image synthesis (AE, VAE, GANs, diffusion): train | sample | interpolate | reconstruct | denoise | eval | export")
register_task("translate", "vislab.tasks.translate", "image-to-image (pix2pix, CycleGAN, colorization, super-resolution, denoising): train | eval | predict | export")
register_task("style", "vislab.tasks.style", "neural style transfer: train | transfer | texture | apply")
register_task("video", "vislab.tasks.video", "video understanding (3-D CNNs, CNN+RNN, two-stream, optical flow, frame by frame): train | eval | predict | frames | flow | explain | export | lr-find")
