"""Process facts and collectives that every layer may use: rank / world from the environment, sums and
gathers over processes. Each is the identity in a single process, so callers need no ``if distributed``.

Joining and leaving the process group, and spawning processes, is the engine's
(:mod:`vislab.engine.distributed`); this module only talks to a group that is already there.
"""

from __future__ import annotations

import os
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


def active() -> bool:
    """Whether a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over processes (in place; identity when single-process)."""
    if dist.is_available() and dist.is_initialized():
        if t.device.type == "cpu" and dist.get_backend() == "nccl":  # NCCL reduces only GPU tensors: through the GPU and back
            g = t.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(g, op=dist.ReduceOp.SUM)
            t.copy_(g.cpu())
        else:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_list(items: list[Any]) -> list[Any]:
    """Every process's ``items`` concatenated in rank order (``items`` itself when single-process)."""
    if not active():
        return items
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, items)
    return [it for part in gathered for it in part]


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if dist.is_available() and dist.is_initialized():
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]
    return obj


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def gather_global(x: torch.Tensor, n_global: int) -> torch.Tensor:
    """The whole global batch from every process's strided share ``x = batch[rank::world]``, in the global order,
    with gradients flowing back to each process's share (``torch.distributed.nn`` all-gather); ``x`` itself when
    single-process. A loss over pairs of the global batch (metric learning) is then the same in 1 and N processes.

    Example:
        >>> gather_global(torch.arange(3.0), 3).tolist()
        [0.0, 1.0, 2.0]
    """
    if not active():
        return x
    import torch.distributed.nn.functional as dnn

    world = dist.get_world_size()
    per = -(-n_global // world)  # the largest share: every process pads to it
    pad = x.new_zeros((per - len(x), *x.shape[1:]))
    parts = dnn.all_gather(torch.cat([x, pad]))  # world x (per, ...), rank order
    return torch.stack(list(parts), 1).reshape(per * world, *x.shape[1:])[:n_global]  # position l * world + r
