"""The evaluation loop every task uses: training-time validation, the test split after training, ``eval`` commands.

``run_eval(hooks, model, stream, precision)`` runs ``hooks.eval_step(model, batch, metrics)`` over the
stream's batches (a process's empty share of the last batch is skipped) in inference mode, then sums the
metric state over processes (``metrics.sync()``) and hands it back for ``compute()`` and whatever else the
task reads from it (confusion matrices, per-class tables, COCO results). ``model`` is one module or a dict of
them by name; each is put in eval mode for the loop and back in its previous mode after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from vislab.core.device import Precision


@contextlib.contextmanager
def eval_mode(model: nn.Module | Mapping[str, nn.Module]) -> Iterator[None]:
    """``model`` (or each of a dict of models) in eval mode inside, back in its previous mode after."""
    modules = list(model.values()) if isinstance(model, Mapping) else [model]
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, w in zip(modules, was, strict=True):
            m.train(w)


@torch.no_grad()
def run_eval(hooks: Any, model: nn.Module | Mapping[str, nn.Module], stream: Any, precision: Precision | None = None, epoch: int = 0,
             progress: Any = None) -> Any:
    """``hooks.new_metrics()`` filled by ``hooks.eval_step`` over ``stream.epoch(epoch)`` and synced; returns it.
    ``progress`` (a :class:`~vislab.core.progress.Tracker`) advances by each batch's samples."""
    metrics = hooks.new_metrics()
    autocast = precision.autocast if precision is not None else contextlib.nullcontext
    with eval_mode(model):
        for batch in stream.epoch(epoch):
            if len(batch) == 0:
                continue
            with autocast():
                hooks.eval_step(model, batch, metrics)
            if progress is not None:
                progress.advance(len(batch))
    metrics.sync()
    return metrics
