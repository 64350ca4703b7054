"""Start a model from existing weights: local files, vislab runs, or cached torchvision / timm tags.

Sources :func:`read_weights` accepts:

* a vislab run folder or checkpoint (``runs/classify/exp``, ``.../best.safetensors``): the ``model.*``
  tensors, and the run's classes, mean / std and model name from its JSON state;
* a plain ``.safetensors`` file (timm's ``model.safetensors`` and the like); ``mean`` / ``std`` are read
  from its metadata when present (JSON lists);
* a ``.pth`` / ``.pt`` / ``.bin`` file holding a state dict, read with ``torch.load(weights_only=True)``
  (never unpickles code); a dict wrapping it under ``state_dict`` / ``model`` / ``model_state_dict`` /
  ``state_dict_ema`` is unwrapped, and its ``mean`` / ``std`` entries are kept.

:func:`load_into` then fits the tensors to the model: it strips ``module.`` / ``_orig_mod.`` prefixes,
adds or drops the ``model.`` prefix of vislab's timm adapter, maps a foreign classifier (``fc``,
``classifier``...) onto the model's head, leaves out the head when the class count (or, for vislab runs,
the class list) differs -- the head stays freshly initialised for the new classes -- and leaves out any
other tensor of another shape. Everything left out is in the returned :class:`WeightsReport`.

:func:`resolve_pretrained` turns a tag (``resnet18``, ``ResNet18_Weights.IMAGENET1K_V1``,
``timm:resnet18.a1_in1k``) into a file in the local torch-hub / Hugging Face cache; it never downloads
unless asked to (``allow_download``), and says in one line what to pass when the file is not there.

Example:
    >>> import torch, tempfile, os
    >>> from vislab.models.registry import create_model
    >>> src = create_model("small_cnn", num_classes=4, width=8)
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pth")
    >>> torch.save(src.state_dict(), path)
    >>> dst = create_model("small_cnn", num_classes=3, width=8)
    >>> rep = load_into(dst, read_weights(path))
    >>> rep.head_reset, len(rep.missing), len(rep.unexpected)
    (True, 0, 0)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vislab.core.errors import CheckpointError

_WRAPPERS = ("state_dict", "model_state_dict", "model", "state_dict_ema", "module")
_STRIP = ("module.", "_orig_mod.")
_HEAD_NAMES = ("fc", "head", "classifier", "head.fc", "classifier.1", "classifier.6", "last_linear", "model.fc", "model.head",
               "model.classifier", "model.head.fc")


@dataclass
class Weights:
    """Tensors read from a weights source, and what the source says about itself.

    Attributes:
        tensors: name -> tensor (CPU).
        source: where they came from (for messages).
        mean, std: the normalisation the weights were trained with (0..1 scale), when known.
        classes: the source's class names (vislab runs only).
        model: the source's model name (vislab runs only).
    """

    tensors: dict[str, torch.Tensor]
    source: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    classes: list[str] | None = None
    model: str | None = None


@dataclass
class WeightsReport:
    """What :func:`load_into` did."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model tensors the source has none for (left as initialised)
    unexpected: list[str] = field(default_factory=list)  # source tensors the model has no place for
    reshaped: list[str] = field(default_factory=list)  # "name: (src) -> (model)", left as initialised
    head_reset: bool = False
    renamed: dict[str, str] = field(default_factory=dict)  # prefix mappings applied

    def lines(self) -> list[str]:
        """A short human-readable report (first few names of each list)."""

        def few(xs: list[str]) -> str:
            return ", ".join(xs[:4]) + (f", ... (+{len(xs) - 4})" if len(xs) > 4 else "")

        out = [f"weights {self.source}: loaded {len(self.loaded)} tensors"
               + (" (head replaced for the new classes)" if self.head_reset else "")]
        if self.renamed:
            out.append("  renamed: " + ", ".join(f"{a or '<root>'} -> {b or '<root>'}" for a, b in self.renamed.items()))
        for name, xs in (("missing (left as initialised)", self.missing), ("unexpected (ignored)", self.unexpected),
                         ("reshaped (left as initialised)", self.reshaped)):
            if xs:
                out.append(f"  {len(xs)} {name}: {few(xs)}")
        return out

    def as_dict(self, limit: int | None = None) -> dict[str, Any]:
        """JSON-able summary (lists cut to ``limit`` names)."""
        return {"source": self.source, "loaded": len(self.loaded), "missing": self.missing[:limit],
                "unexpected": self.unexpected[:limit], "reshaped": self.reshaped[:limit], "head_reset": self.head_reset,
                "counts": {"missing": len(self.missing), "unexpected": len(self.unexpected), "reshaped": len(self.reshaped)}}


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def read_weights(path: str | Path) -> Weights:
    """Read tensors (and normalisation metadata) from a file or a vislab run folder.

    Raises:
        CheckpointError: missing file, unreadable file, or a file that is not a state dict.
    """
    p = Path(path).expanduser()
    if p.is_dir() or (p.suffix == ".safetensors" and _is_vislab(p)):
        return _read_vislab(p)
    if not p.is_file():
        raise CheckpointError(f"--weights: expected an existing .pth/.pt/.safetensors file or a vislab run folder, got '{p}' (not found)")
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(str(p), "pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(str(p))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"--weights '{p}': expected a safetensors file, got an unreadable one ({e})") from None
        return Weights(tensors, str(p), _stats(meta.get("mean")), _stats(meta.get("std")))
    import pickle
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's note on the pickle protocol: the error below says it all
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not _is_pickle(p):
            raise CheckpointError(f"--weights '{p}': expected a state dict (.pth / .pt / .safetensors), got an unreadable file") from None
        raise CheckpointError(  # weights_only refuses anything that would run code or build an arbitrary object
            f"--weights: refused '{p}': it is a pickle that needs code execution to load; vislab loads only safetensors or "
            "weights-only checkpoints. If you trust the file, convert it once: python -c \"import torch, safetensors.torch as s; "
            f"s.save_file(torch.load('{p}', weights_only=False), '{p.with_suffix('.safetensors')}')\" (a state dict of tensors)") from None
    except Exception as e:  # noqa: BLE001 - a broken or foreign file: one clear line for all
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"--weights '{p}': expected a state dict loadable with weights_only=True, got {first}") from None
    meta: dict[str, Any] = {}
    for _ in range(2):  # unwrap {"state_dict": {...}, "mean": ...} (at most two levels)
        if isinstance(obj, dict) and not _is_state_dict(obj):
            inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            meta.update({k: v for k, v in obj.items() if k in ("mean", "std")})
            obj = inner
    if not (isinstance(obj, dict) and _is_state_dict(obj)):
        raise CheckpointError(f"--weights '{p}': expected a state dict (name -> tensor), got {type(obj).__name__}")
    return Weights({k: v for k, v in obj.items() if torch.is_tensor(v)}, str(p), _stats(meta.get("mean")), _stats(meta.get("std")))


def _is_pickle(p: Path) -> bool:
    """Whether ``p`` is a pickle (plain, or the ``data.pkl`` of torch's zip format), read without running any of it."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                data = z.read(name) if name else b""
        else:
            data = p.read_bytes()
        for _ in pickletools.genops(data):
            pass
        return bool(data)
    except Exception:  # noqa: BLE001 - anything that does not parse is not a pickle
        return False


def _is_state_dict(d: dict) -> bool:
    return bool(d) and all(isinstance(k, str) for k in d) and sum(torch.is_tensor(v) for v in d.values()) >= max(1, len(d) // 2)


def _is_vislab(p: Path) -> bool:
    from safetensors import safe_open

    try:
        with safe_open(str(p), "pt") as f:
            return "vislab" in (f.metadata() or {})
    except Exception:  # noqa: BLE001 - unreadable: let the plain reader report it
        return False


def _read_vislab(p: Path) -> Weights:
    from vislab.engine import checkpoint as ckpt

    tensors, state = ckpt.load(ckpt.resolve_path(p, prefer="best"))
    return Weights(ckpt.part(tensors, "model"), str(p), _stats(state.get("mean")), _stats(state.get("std")),
                   list(state["classes"]) if "classes" in state else None, state.get("model"))


def _stats(v: Any) -> tuple[float, ...] | None:
    if v is None:
        return None
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except json.JSONDecodeError:
            return None
    if torch.is_tensor(v):
        v = v.tolist()
    try:
        return tuple(float(x) for x in v)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# fitting to the model
# --------------------------------------------------------------------------------------------
def _head_prefix(model: nn.Module) -> str | None:
    """The qualified name of the model's classifier module + '.', e.g. ``head.`` or ``model.fc.``."""
    get = getattr(model, "get_classifier", None)
    if get is None:
        return None
    head = get()
    for name, m in model.named_modules():
        if m is head and name:
            return name + "."
    return None


def _best_prefix_map(src: set[str], own: set[str]) -> tuple[str, str]:
    """The (drop, add) prefix pair that makes the most source names match the model's."""
    cands = [("", "")]
    for k in own:
        if "." in k:
            cands.append(("", k.split(".", 1)[0] + "."))
    for k in src:
        if "." in k:
            cands.append((k.split(".", 1)[0] + ".", ""))
    best, score = ("", ""), -1
    for drop, add in dict.fromkeys(cands):
        n = sum(1 for k in src if k.startswith(drop) and add + k[len(drop):] in own)
        if n > score:
            best, score = (drop, add), n
    return best


def load_into(model: nn.Module, weights: Weights, classes: list[str] | None = None) -> WeightsReport:
    """Copy the tensors of ``weights`` that fit into ``model``; returns what was loaded and left out.

    Args:
        model: the model to start (built with the *new* class count).
        weights: from :func:`read_weights` or :func:`resolve_pretrained`.
        classes: the new task's class names; a vislab source with other classes gets its head replaced
            even when the class count agrees.

    Raises:
        CheckpointError: no tensor of the source fits the model (the wrong model for these weights).
    """
    own = model.state_dict()
    report = WeightsReport(weights.source)
    src = dict(weights.tensors)
    for pre in _STRIP:
        if src and all(k.startswith(pre) for k in src):
            src = {k[len(pre):]: v for k, v in src.items()}
            report.renamed[pre] = ""
    drop, add = _best_prefix_map(set(src), set(own))
    if drop or add:
        src = {(add + k[len(drop):] if k.startswith(drop) else k): v for k, v in src.items()}
        report.renamed[drop] = add
    head = _head_prefix(model)
    if head and not any(k.startswith(head) for k in src):  # a foreign classifier name: fc / classifier / ...
        hw = own.get(head + "weight")
        for name in _HEAD_NAMES:
            w = src.get(name + ".weight")
            if w is not None and hw is not None and w.ndim == 2 and w.shape[1] == hw.shape[1]:
                src = {(head + k[len(name) + 1:] if k.startswith(name + ".") else k): v for k, v in src.items()}
                report.renamed[name + "."] = head
                break
    replace_head = classes is not None and weights.classes is not None and list(classes) != list(weights.classes)
    if head:
        mismatched = any(k.startswith(head) and k in own and own[k].shape != v.shape for k, v in src.items())
        if replace_head or mismatched:
            src = {k: v for k, v in src.items() if not k.startswith(head)}
            report.head_reset = True
    fit: dict[str, torch.Tensor] = {}
    for k, v in src.items():
        if k not in own:
            report.unexpected.append(k)
        elif own[k].shape != v.shape:
            report.reshaped.append(f"{k}: {tuple(v.shape)} -> {tuple(own[k].shape)}")
        else:
            fit[k] = v.to(own[k].dtype)
    report.missing = [k for k in own if k not in fit and not (report.head_reset and head and k.startswith(head))]
    if not fit:
        eg = next(iter(weights.tensors), "<none>")
        raise CheckpointError(
            f"weights {weights.source}: expected tensors named like the model's (e.g. {next(iter(own), '?')}), "
            f"got none that fit (e.g. {eg}); are they for another model?"
        )
    model.load_state_dict(fit, strict=False)
    report.loaded = sorted(fit)
    return report


# --------------------------------------------------------------------------------------------
# tags: torchvision / timm, from the local cache
# --------------------------------------------------------------------------------------------
def resolve_pretrained(tag: str, allow_download: bool = False) -> Weights:
    """Weights for a torchvision or timm tag, from the local cache (or downloaded when allowed).

    Args:
        tag: ``resnet18`` (torchvision's default weights), ``ResNet18_Weights.IMAGENET1K_V1``,
            ``resnet18.IMAGENET1K_V1``, or ``timm:<name>[.<pretrained tag>]``.
        allow_download: fetch missing files (needs network); otherwise a missing file is an error.

    Raises:
        CheckpointError: unknown tag, or no cached file and downloading not allowed (one line saying what to pass).
    """
    if tag.startswith("timm:"):
        return _timm_pretrained(tag[5:], allow_download)
    return _tv_pretrained(tag, allow_download)


def _offline(tag: str, where: str) -> CheckpointError:
    return CheckpointError(
        f"--pretrained {tag}: expected cached weights at {where}, got none (vislab does not download unless "
        f"--pretrained-download is given); pass --weights PATH to a local .pth/.safetensors file or a vislab run"
    )


def _tv_pretrained(tag: str, allow_download: bool) -> Weights:
    import torchvision.models as tvm

    try:
        if "_Weights." in tag:
            w = tvm.get_weight(tag)
        elif "." in tag:
            arch, which = tag.split(".", 1)
            w = getattr(tvm.get_model_weights(arch), which)
        else:
            w = tvm.get_model_weights(tag).DEFAULT
    except (ValueError, KeyError, AttributeError) as e:
        raise CheckpointError(f"--pretrained: expected a torchvision weights tag (e.g. resnet18, ResNet18_Weights.IMAGENET1K_V1) or timm:<name>, got '{tag}' ({e})") from None
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(w.url).name
    if not path.is_file():
        if not allow_download:
            raise _offline(tag, str(path))
        w.get_state_dict(progress=False)
    t = w.transforms()
    out = read_weights(path)
    out.source, out.mean, out.std = f"{tag} ({path})", tuple(t.mean), tuple(t.std)
    return out


def _timm_pretrained(tag: str, allow_download: bool) -> Weights:
    import timm

    name = tag.split(".", 1)[0]
    if not timm.is_model(name):
        raise CheckpointError(f"--pretrained timm:{tag}: expected a timm model name (timm.list_models()), got '{name}'")
    cfg = timm.models.get_pretrained_cfg(tag) or timm.models.get_pretrained_cfg(name)
    hub = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not hub:
        raise CheckpointError(f"--pretrained timm:{tag}: expected a tag with Hugging Face weights, got none; pass --weights PATH")
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    path = None
    for fname in ("model.safetensors", "pytorch_model.bin"):
        hit = try_to_load_from_cache(hub, fname)
        if isinstance(hit, str):
            path = hit
            break
    if path is None:
        if not allow_download:
            raise _offline(f"timm:{tag}", f"the Hugging Face cache ({hub})")
        path = hf_hub_download(hub, "model.safetensors")
    out = read_weights(path)
    out.source, out.mean, out.std = f"timm:{tag} ({path})", tuple(cfg.mean), tuple(cfg.std)
    return out
