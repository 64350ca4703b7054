"""Distributed data parallel, the torchrun way.

The same command runs single-process, under ``torchrun --nproc-per-node N`` (any number of nodes:
torchrun's own rendezvous), or with ``--nproc N`` (vislab spawns N local processes and sets the same
environment torchrun would). Backend: nccl on CUDA, gloo on CPU. Collectives (sums, gathers, broadcasts)
live in :mod:`vislab.core.dist`, where metrics can use them too.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from vislab.core.dist import DistInfo, env_info


def init(device: torch.device) -> DistInfo:
    """Join the process group when launched as several processes; no-op otherwise."""
    info = env_info()
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world)
    return info


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, fn: Callable[..., Any], args: tuple) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )
    # Each process gets its share of the cores (as torchrun's OMP_NUM_THREADS default does).
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    fn(*args)


def launch(fn: Callable[..., Any], nproc: int, *args: Any) -> None:
    """Run ``fn(*args)`` in ``nproc`` local processes as one DDP job (what ``--nproc N`` does).

    Errors in a worker propagate to the caller (torch.multiprocessing re-raises them).
    """
    import torch.multiprocessing as mp

    from vislab.core import errors

    import logging

    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)  # one error line, not "terminating process ..."
    try:
        mp.spawn(_worker, args=(nproc, free_port(), fn, args), nprocs=nproc, join=True)
    except mp.ProcessRaisedException as e:
        # A worker's VislabError comes back as traceback text: re-raise it as the same error, one line.
        last = [ln for ln in str(e).strip().splitlines() if ln.strip()][-1]
        name, _, msg = last.partition(": ")
        cls = getattr(errors, name.rsplit(".", 1)[-1], None)
        if name.startswith("vislab.") and isinstance(cls, type) and issubclass(cls, errors.VislabError):
            raise _rebuild(cls, msg) from None
        raise


def _rebuild(cls: type, msg: str) -> Exception:
    err = Exception.__new__(cls)
    Exception.__init__(err, msg)
    return err
