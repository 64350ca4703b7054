"""Checkpoints: one safetensors file per checkpoint, written atomically.

The file holds the tensors (``model.*``, ``ema.*``, ``optim.*``) and, in its safetensors metadata, the
JSON state (epoch, step, config, model name and arguments, classes, history, optimizer settings). A task
with several models saves them as one ``nn.ModuleDict`` (``model.G.*``, ``model.D.*``, the same for ``ema``)
and its optimizers by name (``optim.G.*`` with ``state["optimizers"]["G"]``); a task with one model and one
optimizer writes exactly what vislab 0.1 wrote (``model.*``, ``optim.<i>.*``, ``state["optimizer"]``). A
readable ``<name>.json`` copy of that state is written beside it. Because both live in one file that
replaces the old one in a single rename, a kill at any moment leaves either the old or the new
checkpoint, never a mix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vislab.core.errors import CheckpointError
from vislab.core.io import atomic_path, atomic_write_text

FORMAT = "vislab-checkpoint-1"


def _flatten_optimizer(sd: dict[str, Any], prefix: str = "optim") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any], prefix: str = "optim") -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in part(tensors, prefix).items():
        idx, k = key.split(".", 1)
        if idx.isdigit():
            state.setdefault(int(idx), {})[k] = v
    for idx, sc in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(sc)
    return {"state": state, "param_groups": meta["param_groups"]}


def state_dict_cpu(module: nn.Module) -> dict[str, torch.Tensor]:
    sd = module.state_dict()
    return {k: v.detach().cpu().contiguous() for k, v in sd.items()}


def save(
    path: str | Path,
    model: nn.Module,
    state: dict[str, Any],
    optimizer: torch.optim.Optimizer | dict[str, torch.optim.Optimizer] | None = None,
    ema: nn.Module | None = None,
    keep_previous: str | None = None,
) -> Path:
    """Write a checkpoint atomically; returns its path. ``state`` must be JSON-serialisable; ``optimizer`` is one
    optimizer or several by name; ``keep_previous``: the name the checkpoint being replaced keeps (``previous.safetensors``)."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {f"model.{k}": v for k, v in state_dict_cpu(model).items()}
    state = dict(state, format=FORMAT)
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in state_dict_cpu(ema).items()})
    if isinstance(optimizer, dict):
        state["optimizers"] = {}
        for name, opt in optimizer.items():
            t, state["optimizers"][name] = _flatten_optimizer(opt.state_dict(), f"optim.{name}")
            tensors.update(t)
    elif optimizer is not None:
        t, meta = _flatten_optimizer(optimizer.state_dict())
        tensors.update(t)
        state["optimizer"] = meta
    text = json.dumps(state, default=_jsonable)
    with atomic_path(path, keep_previous) as tmp:
        save_file(tensors, str(tmp), metadata={"vislab": text})
    atomic_write_text(path.with_suffix(".json"), json.dumps(state, indent=1, default=_jsonable))
    return path


def _jsonable(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if torch.is_tensor(o):
        return o.tolist()
    if isinstance(o, tuple | set):
        return list(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def load(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint: ``(tensors, state)``.

    Raises:
        CheckpointError: missing, unreadable, or not a vislab checkpoint.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = resolve_path(path)
    state = read_state(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint '{path}': expected a safetensors file, got an unreadable one ({e})") from None
    return tensors, state


def read_state(path: str | Path) -> dict[str, Any]:
    """The JSON state of a checkpoint (a file or run folder) from the file's header alone, without its tensors: what
    a command needs to know first (``state["task"]``, classes, image size) before it builds the model.

    Raises:
        CheckpointError: missing, unreadable, or not a vislab checkpoint.
    """
    from safetensors import SafetensorError, safe_open

    path = resolve_path(path)
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint '{path}': expected a safetensors file, got an unreadable one ({e})") from None
    if "vislab" not in meta:
        raise CheckpointError(f"checkpoint '{path}': expected a vislab checkpoint, got a safetensors file without vislab state")
    return json.loads(meta["vislab"])


def resolve_path(path: str | Path, prefer: str = "best") -> Path:
    """Accept a checkpoint file or a run folder (-> its checkpoints/<prefer>.safetensors, else last)."""
    p = Path(path).expanduser()
    if p.is_dir():
        for name in (prefer, "last", "previous", "best"):
            c = p / "checkpoints" / f"{name}.safetensors"
            if c.is_file():
                return c
        raise CheckpointError(f"checkpoint: expected {p}/checkpoints/{prefer}.safetensors, got a folder without checkpoints")
    if not p.is_file():
        raise CheckpointError(f"checkpoint: expected an existing file or run folder, got '{p}' (not found)")
    return p


def part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], where: str) -> None:
    """Load a state dict strictly; a mismatch is a CheckpointError saying what differs."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    reshaped = sorted(k for k in set(own) & set(weights) if own[k].shape != weights[k].shape)
    if missing or unexpected or reshaped:
        bits = []
        if reshaped:
            k = reshaped[0]
            bits.append(f"{len(reshaped)} tensor(s) of another shape, e.g. {k}: expected {tuple(own[k].shape)}, got {tuple(weights[k].shape)}")
        if missing:
            bits.append(f"{len(missing)} missing, e.g. {missing[0]}")
        if unexpected:
            bits.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
        raise CheckpointError(f"checkpoint {where}: weights do not fit the model ({'; '.join(bits)})")
    model.load_state_dict(weights)


def optimizer_state(tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> dict[str, Any] | None:
    """The state dict of a checkpoint's one optimizer (None when it holds none)."""
    meta = state.get("optimizer")
    return _unflatten_optimizer(tensors, meta) if meta else None


def optimizer_states(tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The state dicts of a checkpoint's optimizers by name (a task with several)."""
    return {name: _unflatten_optimizer(tensors, meta, f"optim.{name}") for name, meta in (state.get("optimizers") or {}).items()}


def load_best(model: Any, run_dir: str | Path) -> Any:
    """The weights of ``run_dir``'s best checkpoint in a copy of ``model`` (``model`` itself when there is none);
    ``model`` is one module or a dict of them by name (then a dict comes back)."""
    import copy

    p = Path(run_dir) / "checkpoints" / "best.safetensors"
    if not p.exists():
        return model
    tensors, _ = load(p)
    best = copy.deepcopy(nn.ModuleDict(model) if isinstance(model, dict) else model)
    best.load_state_dict(part(tensors, "model"))
    return dict(best) if isinstance(model, dict) else best


def load_model(path: str | Path, task: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint was trained as and load its weights (eval mode).

    Raises:
        CheckpointError: unreadable file, another task's checkpoint, or weights that do not fit.
    """
    from vislab.core.errors import ModelError
    from vislab.models.registry import create_model

    p = resolve_path(path)
    tensors, state = load(p)
    if task and state.get("task") != task:
        raise CheckpointError(f"checkpoint '{p}': expected a {task} checkpoint, got one of task {state.get('task')!r}")
    try:
        model = create_model(state["model"], **state.get("model_args", {}))
    except (ModelError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint '{p}': cannot rebuild its model {state.get('model')!r} ({e})") from None
    load_weights(model, part(tensors, "model"), f"'{p}'")
    model.eval()
    state["path"] = str(p)
    return model, state
