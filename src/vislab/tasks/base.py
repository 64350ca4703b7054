"""The task interface: a :class:`TaskSpec` per task, and the one training run that serves them all.

A task package (``vislab/tasks/<name>/``) declares one ``SPEC = TaskSpec(...)``:

* ``config``: its training config, a dataclass of sections ``data``, ``model``, ``train``
  (:class:`~vislab.engine.config.TrainConfig`) and ``run`` (:class:`~vislab.engine.config.RunConfig`);
* ``setup(cfg, ctx) -> TrainJob``: load the splits, build the model(s), the batch streams and the trainer hooks
  (the training step(s), metrics and monitor: see :mod:`vislab.engine.trainer`) in this process of the run;
* ``validate(cfg)``: the task's own checks, after :func:`validate_train`'s shared ones (before anything is written);
* ``modes``: its other commands (eval, predict, export, explain, ...), each a config dataclass, a function
  and how to print its result -- the CLI is generated from them;
* ``summary`` / ``report_files``: what ``train`` prints when it is done.

:func:`train` runs any spec: it creates (or reopens) the run folder, launches the processes
(:func:`vislab.engine.launch.launch`) and, in each, calls ``setup``, prepares the model(s), fits them, lets the
job compute its final numbers (:meth:`TrainJob.finish`), writes the ``summary`` into ``run.json`` and the
report (:meth:`TrainJob.report`) on the main process.

Adding a task is one package with its ``SPEC`` and one ``register_task`` line in :mod:`vislab.tasks`
(``docs/architecture.md`` walks through the 2-D GAN task, :mod:`vislab.tasks.gan2d`, as the example).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vislab.core import config as C
from vislab.core.errors import ConfigError, VislabError
from vislab.engine.launch import WorkerContext
from vislab.engine.trainer import Callback, FitResult, Trainer


@dataclass
class TrainJob:
    """What a task's ``setup`` hands the training run. Subclass it for :meth:`configure`, :meth:`finish` and
    :meth:`report` (their defaults do nothing), keeping what they need (splits, normalisation) as fields.

    Attributes:
        hooks: the trainer hooks (:class:`~vislab.engine.trainer.TaskHooks`).
        model: the model, or a dict of models by name; built (weights loaded), not yet on its device.
        train, val: batch streams (``val`` None: nothing held out, the best checkpoint is the lowest training loss).
        ckpt_state: JSON facts stored in every checkpoint: ``task``, ``model``, ``model_args`` (to rebuild it),
            classes, normalisation, image size, the resolved ``config``...
        log: lines printed before the first epoch (what trains on what, where).
        callbacks: trainer callbacks of the task's own.
        resume_keys: ``ckpt_state`` entries a resumed checkpoint must agree with.
        cfg, ctx: the run's config and this process's :class:`~vislab.engine.launch.WorkerContext`.
        best: the best checkpoint's model(s), once :meth:`test_best` has loaded them.
    """

    hooks: Any
    model: Any
    train: Any
    val: Any
    ckpt_state: dict[str, Any]
    log: list[str] = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)
    resume_keys: tuple[str, ...] = ("task", "model", "num_classes")
    cfg: Any = None
    ctx: WorkerContext | None = None
    best: Any = None

    def test_best(self, trainer: Trainer, model: Any, stream: Any, shown: tuple[str, ...] | None = None) -> tuple[Any, dict[str, Any]]:
        """Load the best checkpoint into :attr:`best` and, when ``stream`` is given, its metrics there (e.g. the test
        split): ``(metrics, {"test_<name>": value})``, with one log line of the ``shown`` ones (default: all)."""
        from vislab.engine.checkpoint import load_best
        from vislab.engine.evaluate import run_eval

        self.best = load_best(model, self.ctx.run_dir)
        if stream is None:
            return None, {}
        metrics = run_eval(self.hooks, self.best, stream, self.ctx.precision)
        out = {f"test_{k}": v for k, v in metrics.compute().items()}
        trainer.progress.log("test: " + "  ".join(f"{k} {v:.4f}" for k, v in out.items() if shown is None or k in shown))
        return metrics, out

    def configure(self, trainer: Trainer, model: Any) -> None:
        """After the model is on its device, before training: e.g. set ``trainer.param_groups`` (fine-tuning)."""

    def finish(self, trainer: Trainer, model: Any, result: FitResult) -> dict[str, Any]:
        """After training, on every process: the final numbers for the ``summary`` of ``run.json`` (e.g. ``test_*``)."""
        return {}

    def report(self, trainer: Trainer, model: Any, result: FitResult, final: dict[str, Any]) -> None:
        """On the main process when ``--report``: pictures and ``report.html`` (default: the learning curves)."""
        from vislab.report.plots import plot_curves

        if result.history:
            plot_curves(result.history, trainer.run_dir / "curves.png", title=f"{trainer.run_dir.name}: learning curves")


@dataclass(frozen=True)
class Mode:
    """One command of a task besides ``train``: ``vislab <task> <name> ARGS [--options]``.

    The fields of ``config`` declared with ``cli=False`` are the positional ``ARGS``, in their order (a list
    field takes one or more values); every other field is an option.
    """

    name: str
    config: type
    run: Callable[[Any], Any]  # config -> result
    show: Callable[[Any, Any], list[str]]  # (config, result) -> lines to print
    help: str


def _no_checks(cfg: Any) -> None:
    return None


def _done(summary: dict[str, Any]) -> str:
    return "done"


@dataclass(frozen=True)
class TaskSpec:
    """Everything vislab needs to know about a task (see the module docstring). Its functions are module-level ones
    (no lambdas): ``--nproc`` sends the spec to the processes it starts."""

    name: str
    config: type
    setup: Callable[[Any, WorkerContext], TrainJob]
    help: str  # the task's command group: one line, then more
    train_help: str  # `vislab <task> train --help`, with examples
    monitor: str  # the metric its best checkpoint is chosen by, unless the hooks say otherwise (`vislab tune`'s default)
    validate: Callable[[Any], None] = _no_checks
    modes: tuple[Mode, ...] = ()
    summary: Callable[[dict[str, Any]], str] = _done
    report_files: tuple[str, ...] = ("report.html", "curves.png", "checkpoints/best.safetensors")
    lr_find: bool = True  # one optimizer: the learning-rate range test applies

    def mode(self, name: str) -> Mode:
        for m in self.modes:
            if m.name == name:
                return m
        raise ConfigError(f"{self.name}: expected one of the modes {', '.join(m.name for m in self.modes)}, got '{name}'")


# --------------------------------------------------------------------------------------------
# Checks every training config gets
# --------------------------------------------------------------------------------------------
_RANGES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("epochs", lambda v: v >= 1, ">= 1"),
    ("lr", lambda v: v > 0, "> 0"),
    ("batch_size", lambda v: v >= 1, ">= 1"),
    ("eval_batch_size", lambda v: v >= 0, ">= 0"),
    ("accumulate", lambda v: v >= 1, ">= 1"),
    ("nproc", lambda v: v >= 1, ">= 1"),
    ("val_split", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("test_split", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("ema_decay", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("label_smoothing", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("grad_clip", lambda v: v >= 0, ">= 0"),
    ("threads", lambda v: v >= 0, ">= 0"),
)


def check_all(checks: list[tuple[bool, str, str, Any]]) -> None:
    """Raise a :class:`ConfigError` for the first ``(ok, option, expected, got)`` that is not ``ok``.

    Example:
        >>> check_all([(3 >= 1, "--width", ">= 1", 3), (0 > 1, "--depth", ">= 1", 0)])
        Traceback (most recent call last):
        ...
        vislab.core.errors.ConfigError: --depth: expected >= 1, got 0
    """
    for ok, name, expected, got in checks:
        if not ok:
            raise ConfigError(f"{name}: expected {expected}, got {got}")


def validate_train(cfg: Any) -> None:
    """The range checks shared by every task's training config (by leaf name, where the config has it).

    Raises:
        ConfigError: ``--epochs: expected >= 1, got 0`` and the like.
    """
    values = C.flat_dict(cfg)
    check_all([(ok(values[name]), f"--{name.replace('_', '-')}", expected, values[name]) for name, ok, expected in _RANGES if name in values])


# --------------------------------------------------------------------------------------------
# The one training run
# --------------------------------------------------------------------------------------------
def train(spec: TaskSpec, cfg: Any, callbacks: list[Callback] | None = None, folder: str | None = None) -> Path:
    """Train ``spec``'s task as ``cfg`` says; returns the run folder ``<out>/<folder or task>/<name>``.

    Launches ``--nproc`` processes when asked. ``callbacks`` (trainer :class:`~vislab.engine.trainer.Callback` s,
    e.g. a tuner's pruning hook) need ``--nproc 1``.
    """
    from vislab.engine.launch import launch

    validate_train(cfg)
    spec.validate(cfg)
    if callbacks and cfg.train.nproc > 1:
        raise ConfigError(f"--nproc: expected 1 when training with callbacks, got {cfg.train.nproc}")
    return launch(folder or spec.name, cfg, functools.partial(_worker, spec, list(callbacks or [])))


def _worker(spec: TaskSpec, callbacks: list[Callback], cfg: Any, run_dir_s: str | None) -> Path:
    from vislab.engine import distributed as D
    from vislab.engine.launch import start
    from vislab.engine.run import storage_error

    t0 = time.perf_counter()
    ctx = None
    try:
        ctx = start(spec.name, cfg, run_dir_s)
        return _run(spec, callbacks, cfg, ctx, t0)
    except OSError as e:  # a full disk, a folder gone read-only: one line, and how to continue
        if isinstance(e, VislabError):
            raise
        raise storage_error(e, spec.name, ctx.run_dir if ctx is not None else run_dir_s) from None
    finally:
        D.shutdown()


def _run(spec: TaskSpec, callbacks: list[Callback], cfg: Any, ctx: WorkerContext, t0: float) -> Path:
    """Setup, fit, finish, summary and report of one process of a run."""
    from vislab.engine.run import fit_summary, update_run_json

    job = spec.setup(cfg, ctx)
    trainer = Trainer(cfg.train, job.hooks, device=ctx.device, precision=ctx.precision, dist=ctx.dist, run_dir=ctx.run_dir,
                      ckpt_state=job.ckpt_state, progress=cfg.run.progress, tensorboard=cfg.run.tensorboard,
                      callbacks=[*callbacks, *job.callbacks], resume_keys=job.resume_keys)
    model = trainer.prepare(job.model)
    for line in job.log:
        trainer.progress.log(line)
    job.configure(trainer, model)
    result = trainer.fit(model, job.train, job.val, resume=cfg.run.resume or None)
    final = job.finish(trainer, model, result)
    if ctx.dist.is_main:
        update_run_json(ctx.run_dir, summary=fit_summary(result, final, time.perf_counter() - t0))
        if cfg.run.report:
            job.report(trainer, model, result, final)
    return ctx.run_dir
