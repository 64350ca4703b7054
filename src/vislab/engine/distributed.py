"""Distributed data parallel, the torchrun way.

The same command runs single-process, under ``torchrun --nproc-per-node N`` (any number of nodes:
torchrun's own rendezvous), or with ``--nproc N`` (vislab spawns N local processes and sets the same
environment torchrun would). Backend: nccl on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def env_info() -> DistInfo:
    """Rank / world size from the environment torchrun sets (1 process when absent)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


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


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over processes (in place; identity when single-process)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if dist.is_available() and dist.is_initialized():
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]
    return obj


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


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
