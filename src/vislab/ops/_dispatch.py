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
import itertools
import os
import threading
import weakref
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
    """Run ``work(i)`` for ``i < n`` on the calling thread plus up to ``threads - 1`` pool threads.

    Items are handed out one at a time from a shared counter, so a thread that gets no CPU (other
    processes on the machine) never holds back the others: the caller finishes what is left.
    """
    t = min(threads or num_workers(), n)
    if t <= 1 or threading.current_thread().name.startswith("vislab-ops"):
        for i in range(n):
            work(i)
        return
    counter = itertools.count()  # next() on it is atomic under the GIL

    def runner() -> None:
        while (i := next(counter)) < n:
            work(i)

    futures = [_get_pool().submit(runner) for _ in range(t - 1)]
    runner()
    for f in futures:
        f.result()


class _OutputPool:
    """A small cache of large CPU output buffers, like torch's CUDA caching allocator.

    A fresh 50 MB tensor costs tens of milliseconds of page faults each time (glibc returns
    allocations that large to the OS on free), more than a fast OpenCV filter itself takes. Outputs
    of the OpenCV path are views of pooled buffers; when the tensor dies, its buffer comes back
    here. At most ``VISLAB_POOL_MB`` (default 512, 0 disables) is kept idle.
    """

    min_bytes = 1 << 22

    def __init__(self) -> None:
        self.free: dict[int, list[np.ndarray]] = {}
        self.idle = 0
        self.lock = threading.Lock()

    @staticmethod
    def cap() -> int:
        return int(os.environ.get("VISLAB_POOL_MB", "512")) << 20

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        npdtype = np.dtype(torch.empty(0, dtype=dtype).numpy().dtype)
        nbytes = int(np.prod(shape)) * npdtype.itemsize
        if nbytes < self.min_bytes or self.cap() <= 0:
            return torch.empty(shape, dtype=dtype)
        with self.lock:
            stack = self.free.get(nbytes)
            base = stack.pop() if stack else None
            if base is not None:
                self.idle -= nbytes
        if base is None:
            base = np.empty(nbytes, np.uint8)
        view = base.view(npdtype).reshape(shape)
        weakref.finalize(view, self._release, base)
        return torch.from_numpy(view)

    def _release(self, base: np.ndarray) -> None:
        with self.lock:
            if self.idle + base.nbytes <= self.cap():
                self.free.setdefault(base.nbytes, []).append(base)
                self.idle += base.nbytes


_outputs = _OutputPool()


def empty(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised CPU tensor, from the output pool when large (see :class:`_OutputPool`)."""
    return _outputs.empty(tuple(int(s) for s in shape), dtype)


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
    out = empty((b, c, oh, ow), x.dtype)
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
    out = empty((x.shape[0], oc, oh, ow), torch.from_numpy(first[:0, :0]).dtype)
    o = out.numpy()
    o[0] = first.transpose(2, 0, 1)

    def work(i: int) -> None:
        o[i + 1] = call(i + 1).transpose(2, 0, 1)

    parallel_for(x.shape[0] - 1, work, threads)
    return out


def _scratch(key: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A per-thread scratch array, reused across calls (fresh buffers cost page faults)."""
    bufs = getattr(_state, "scratch", None)
    if bufs is None:
        bufs = _state.scratch = {}
    a = bufs.get(key)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = bufs[key] = np.empty(shape, dtype)
    return a


def map_pixels(fn: Callable[[np.ndarray, np.ndarray], object], x: torch.Tensor, out_channels: int | None = None,
               threads: int | None = None) -> torch.Tensor:
    """Apply a per-pixel OpenCV function ``fn(src_hwc, dst_hwc)`` (e.g. ``cvtColor``) to planar ``x``.

    OpenCV wants interleaved ``(H, W, C)`` pixels, the tensor holds planes: each image is cut into
    row blocks that stay in cache, interleaved with ``cv2.merge`` into a reused buffer, converted
    into another, and split straight into the output planes, on the pool. ``fn`` must write its
    result into ``dst_hwc`` (OpenCV's ``dst=``). No full-size transposed copy is ever made, and a
    channels-last input (``x.contiguous(memory_format=torch.channels_last)``) is converted in place
    of its memory, with no interleaving at all (the output is channels-last too).
    """
    import cv2

    x = x.detach()
    b, c, h, w = x.shape
    oc = out_channels or c
    if c > 1 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        # channels-last memory already is (B, H, W, C) pixels: no interleaving needed
        src_l = x.permute(0, 2, 3, 1).numpy()
        out_l = empty((b, h, w, oc), x.dtype)
        dst_l = out_l.numpy()
        parallel_for(b, lambda i: fn(src_l[i], dst_l[i]), threads)
        return out_l.permute(0, 3, 1, 2)
    x = x.contiguous()
    out = empty((b, oc, h, w), x.dtype)
    src, dst = x.numpy(), out.numpy()
    rows = max(1, min(h, 16384 // max(w, 1)))
    nblk = (h + rows - 1) // rows

    def work(i: int) -> None:
        n, r0 = divmod(i, nblk)
        r0 *= rows
        r1 = min(h, r0 + rows)
        inb = _scratch("in", (r1 - r0, w, c), src.dtype)
        outb = _scratch("out", (r1 - r0, w, oc), dst.dtype)
        cv2.merge([src[n, j, r0:r1] for j in range(c)], inb)
        fn(inb, outb)
        cv2.split(outb, [dst[n, j, r0:r1] for j in range(oc)])  # writes into the output rows

    parallel_for(b * nblk, work, threads)
    return out
