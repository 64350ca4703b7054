"""Device choice and the precision / performance policy.

``--precision auto`` picks, measured on real hardware rather than assumed:

* CUDA: bf16 autocast where the GPU supports it, else fp16 autocast with a gradient scaler;
* CPU with AVX-512-BF16 or AMX: bf16 autocast **and** channels_last (about 3x faster than fp32 for a
  ResNet-18 on such a CPU; bf16 *without* channels_last is slower than fp32, so the two go together);
* anything else: fp32.

Parameters, BatchNorm statistics and the loss stay in fp32 (autocast never casts parameters, and the
task computes its loss on ``logits.float()``).

Example:
    >>> p = resolve_precision("fp32", torch.device("cpu"))
    >>> (p.name, p.dtype, p.channels_last)
    ('fp32', None, False)
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from dataclasses import dataclass

import torch

from vislab.core.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> cuda (this process's local rank), else mps, else cpu."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise ConfigError(f"--device: expected one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device: expected a visible CUDA GPU for {name!r}, got none (torch.cuda.is_available() is False)")
        return torch.device(name) if ":" in name else torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device: expected an available Apple MPS device, got none")
    return torch.device(name)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags from /proc/cpuinfo (empty where unavailable)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 matrix instructions (AVX-512-BF16 or AMX-BF16)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


@dataclass(frozen=True)
class Precision:
    """What ``--precision`` resolved to on this device."""

    name: str  # fp32 | bf16 | fp16
    dtype: torch.dtype | None  # autocast dtype, None for fp32
    channels_last: bool
    scaler: bool  # use a gradient scaler (fp16)
    device_type: str

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """Turn ``auto|fp32|bf16|fp16`` into a concrete policy for ``device``; falls back with a warning."""
    if requested not in PRECISIONS:
        raise ConfigError(f"--precision: expected one of {', '.join(PRECISIONS)}, got {requested!r}")
    dt = device.type
    if requested == "auto":
        if dt == "cuda":
            requested = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif dt == "cpu" and cpu_has_fast_bf16():
            requested = "bf16"
        else:
            requested = "fp32"
    if requested == "fp32":
        return Precision("fp32", None, False, False, dt)
    if requested == "bf16":
        if dt == "cpu" and not cpu_has_fast_bf16():
            warnings.warn("bf16 requested but this CPU has no AVX-512-BF16/AMX: it would be slower; using fp32", stacklevel=2)
            return Precision("fp32", None, False, False, dt)
        if dt == "cuda" and not torch.cuda.is_bf16_supported():
            warnings.warn("bf16 requested but this GPU does not support it; using fp16 with a gradient scaler", stacklevel=2)
            return Precision("fp16", torch.float16, True, True, dt)
        return Precision("bf16", torch.bfloat16, dt in ("cpu", "cuda"), False, dt)
    # fp16
    if dt == "mps":
        return Precision("fp16", torch.float16, False, False, dt)
    return Precision("fp16", torch.float16, dt == "cuda", True, dt)


def channels_last_for(model: torch.nn.Module) -> torch.memory_format:
    """The channels-last format that fits ``model``'s weights: ``channels_last_3d`` when it has 5-D ones (3-D
    convolutions: video models), else ``channels_last`` (``model.to(memory_format=channels_last)`` fails on 5-D weights).

    Example:
        >>> channels_last_for(torch.nn.Conv3d(1, 2, 3)), channels_last_for(torch.nn.Conv2d(1, 2, 3))
        (torch.channels_last_3d, torch.channels_last)
    """
    return torch.channels_last_3d if any(p.dim() == 5 for p in model.parameters()) else torch.channels_last
