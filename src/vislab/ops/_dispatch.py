"""Backend choice: OpenCV per plane on CPU for speed, pure torch for CUDA and autograd.

An op runs on OpenCV when the input is a CPU float32 tensor that needs no gradient (the usual
preprocessing / augmentation case); otherwise it runs its torch implementation, which works on
any device and is differentiable. Both give the same numbers (within the tolerances in
``docs/ops.md``); tests force each backend with :func:`backend`.

A contiguous ``(B, C, H, W)`` tensor is ``B*C`` contiguous ``(H, W)`` float32 planes: OpenCV reads
and writes them in place through numpy views (no copies) and releases the GIL, so a small thread
pool over planes uses every core.

Example:
    >>> import torch
    >>> with backend("torch"):
    ...     use_opencv(torch.zeros(1, 1, 2, 2))
    False
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from vislab.core.errors import ConfigError

BACKENDS = ("auto", "torch", "opencv")
_state = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def get_backend() -> str:
    """The backend in force in this thread: ``auto`` (default), ``torch`` or ``opencv``."""
    return getattr(_state, "backend", "auto")


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    """Force a backend inside a ``with`` block (``torch`` everywhere, or ``opencv`` where possible).

    ``opencv`` still falls back to torch for inputs OpenCV cannot take (CUDA tensors, tensors that
    require grad, dtypes other than float32).
    """
    if name not in BACKENDS:
        raise ConfigError(f"backend: expected one of {BACKENDS}, got {name!r}")
    old = get_backend()
    _state.backend = name
    try:
        yield
    finally:
        _state.backend = old


def use_opencv(*xs: torch.Tensor) -> bool:
    """True when every tensor can go to OpenCV: CPU, float32, no grad needed, backend not ``torch``."""
    if get_backend() == "torch":
        return False
    grad = torch.is_grad_enabled()
    return all(x.device.type == "cpu" and x.dtype == torch.float32 and not (grad and x.requires_grad) for x in xs)


def num_workers() -> int:
    """Threads for the plane pool: the cores torch may use (``VISLAB_THREADS`` overrides)."""
    env = os.environ.get("VISLAB_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(num_workers(), 1), thread_name_prefix="vislab-ops")
        return _pool


def parallel_for(n: int, work: Callable[[int], None], threads: int | None = None) -> None:
    """Run ``work(i)`` for ``i < n``, split in contiguous chunks over the pool."""
    t = min(threads or num_workers(), n)
    if t <= 1 or threading.current_thread().name.startswith("vislab-ops"):
        for i in range(n):
            work(i)
        return
    bounds = np.linspace(0, n, t + 1).astype(int)

    def chunk(j: int) -> None:
        for i in range(bounds[j], bounds[j + 1]):
            work(i)

    futures = [_get_pool().submit(chunk, j) for j in range(1, t)]
    chunk(0)
    for f in futures:
        f.result()


def planes(x: torch.Tensor) -> np.ndarray:
    """The ``(B*C, H, W)`` numpy view of a contiguous CPU tensor (shares memory)."""
    x = x.detach()
    b, c, h, w = x.shape
    return x.numpy().reshape(b * c, h, w)


def map_planes(fn: Callable[[np.ndarray, np.ndarray], object], x: torch.Tensor,
               out_hw: tuple[int, int] | None = None, threads: int | None = None) -> torch.Tensor:
    """Apply ``fn(src_plane, dst_plane)`` to every ``(H, W)`` plane of ``x``; returns the new tensor.

    ``fn`` must write its result into ``dst_plane`` (OpenCV's ``dst=`` argument does this).
    """
    x = x.detach().contiguous()
    b, c, h, w = x.shape
    oh, ow = out_hw or (h, w)
    out = torch.empty((b, c, oh, ow), dtype=x.dtype)
    src, dst = planes(x), planes(out)

    def work(i: int) -> None:
        r = fn(src[i], dst[i])
        if isinstance(r, np.ndarray) and r is not dst[i] and r.shape == dst[i].shape and not np.shares_memory(r, dst[i]):
            dst[i][...] = r

    parallel_for(b * c, work, threads)
    return out


def map_images(fn: Callable[[np.ndarray], np.ndarray], x: torch.Tensor, threads: int | None = None) -> torch.Tensor:
    """Apply ``fn(hwc) -> hwc`` (or ``hw``) to each image of ``x`` as a contiguous HWC float array.

    The first image fixes the output shape and dtype; the rest run on the pool and write in place.
    """
    x = x.detach().contiguous()
    src = x.numpy()

    def call(i: int) -> np.ndarray:
        r = fn(np.ascontiguousarray(src[i].transpose(1, 2, 0)))
        return r[:, :, None] if r.ndim == 2 else r

    first = call(0)
    oh, ow, oc = first.shape
    out = torch.empty((x.shape[0], oc, oh, ow), dtype=torch.from_numpy(first[:0, :0]).dtype)
    o = out.numpy()
    o[0] = first.transpose(2, 0, 1)

    def work(i: int) -> None:
        o[i + 1] = call(i + 1).transpose(2, 0, 1)

    parallel_for(x.shape[0] - 1, work, threads)
    return out
