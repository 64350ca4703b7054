"""Building a task's model from the registry, and checking at build time that it takes the data's images."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from vislab.core.errors import ConfigError, ModelError
from vislab.models.registry import MODELS

TASK_NOUNS = {"classify": "classification", "segment": "segmentation", "detect": "detection"}


def resolve_stem(stem: str, size: tuple[int, int]) -> str:
    """``auto`` -> ``cifar`` (no early downsampling) for images up to 64 px, else ``imagenet``.

    Example:
        >>> resolve_stem("auto", (32, 32)), resolve_stem("auto", (224, 224)), resolve_stem("imagenet", (32, 32))
        ('cifar', 'imagenet', 'imagenet')
    """
    return ("cifar" if max(size) <= 64 else "imagenet") if stem == "auto" else stem


def build_registered(name: str, task: str, wanted: dict[str, Any], required: tuple[str, ...] = ()) -> tuple[nn.Module, dict[str, Any]]:
    """The registered ``task`` model ``name`` built with the entries of ``wanted`` its builder names as parameters;
    returns ``(model, args)`` -- ``args`` rebuild it from a checkpoint. ``required``: entries the user asked for
    explicitly, which the builder must take (else a :class:`ConfigError` names the option).

    Example:
        >>> m, args = build_registered("unet", "segment", {"num_classes": 3, "width": 4, "depth": 2, "not_a_param": 1})
        >>> sorted(args)
        ['depth', 'num_classes', 'width']

    Raises:
        ModelError: an unknown name (with a suggestion) or a model of another task.
        ConfigError: a ``required`` entry the builder does not take.
    """
    entry = MODELS.get(name)
    if entry.task != task:
        noun = TASK_NOUNS.get(task, task)
        raise ModelError(f"--model: expected a {noun} model ({', '.join(MODELS.list(task=task))}), got '{name}' (task {entry.task!r})")
    params = inspect.signature(entry.fn).parameters
    args = {k: v for k, v in wanted.items() if k in params and params[k].kind is not inspect.Parameter.VAR_KEYWORD}
    for k in required:
        if k not in args:
            raise ConfigError(f"--{k.replace('_', '-')}: expected a model that takes one, got '{name}' (it has its own; see `vislab models show {name}`)")
    return MODELS.build(name, **args), args


def check_input_size(model: nn.Module, name: str, in_chans: int, size: tuple[int, int]) -> None:
    """A dry forward pass on zeros, so an input the model cannot take fails now, with a clear line."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_chans, *size))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0][:160]
        raise ModelError(f"model {name}: expected inputs it can process, got {in_chans}x{size[0]}x{size[1]} images ({first}); try a larger --img-size") from None
    finally:
        model.train(was)


def load_for_inference(checkpoint: str, task: str, device: str = "auto", precision: str = "auto"):
    """A ``task`` checkpoint's model on ``device`` in eval mode (channels_last when the precision wants it).

    Returns:
        ``(model, state, device, precision)``: the checkpoint's JSON state and the resolved device and
        :class:`~vislab.core.device.Precision`.
    """
    from vislab.core.device import resolve_device, resolve_precision
    from vislab.engine.checkpoint import load_model

    model, state = load_model(checkpoint, task=task)
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    model = model.to(dev)
    if prec.channels_last:
        from vislab.core.device import channels_last_for

        model = model.to(memory_format=channels_last_for(model))
    return model, state, dev, prec


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (or the model)."""
    return getattr(model, "module", model)
