"""Which process this is: one alone, or one rank of several started by a launcher (``accelerate launch``, ``torchrun``).

Why here, in the lowest layer: the cache (:mod:`elasticity_lab.core.cache`) and the progress bars must know whether
they run on the main rank, and they may not import anything above ``core``. The training side (wrapping a model
for data parallelism or FSDP, each rank's share of a batch) lives in :mod:`elasticity_lab.lm.distributed`.

A process is *launched* when ``$WORLD_SIZE`` is above 1. Its process group is set up on first use, through
accelerate's ``PartialState`` (so the backend follows the launch config: NCCL on GPUs, one card per local rank;
gloo on a machine without CUDA, where the same torchrun-style launch runs its ranks on the CPU). Without a launcher every function here is a no-op: rank 0 of 1, :func:`broadcast`
returns its argument, :func:`barrier` returns at once, nothing is imported.

The rule the library keeps under a launcher: **every rank runs the same control flow**. Whatever decides a branch
(a cache hit, the hub answering) is decided on the main rank and :func:`broadcast`, so the collectives inside
training (gradient all-reduce, FSDP all-gathers) line up rank for rank.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

WORLD_SIZE_ENV_VAR = "WORLD_SIZE"


def launched() -> bool:
    """Whether a launcher started this process as one of several (``$WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get(WORLD_SIZE_ENV_VAR, "1") or 1) > 1
    except ValueError:
        return False


def setup() -> bool:
    """Join the launcher's process group if this process was launched and has not joined yet; returns
    :func:`launched`. Idempotent, and a no-op (no import of torch or accelerate) without a launcher."""
    if not launched():
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        import torch
        from accelerate import PartialState

        # the launch config decides the backend and this rank's card; a machine without CUDA joins over gloo (MULTI_CPU)
        PartialState(cpu=not torch.cuda.is_available())
    return True


def distributed() -> bool:
    """Whether this process is one of several in a set-up process group (sets it up if launched)."""
    if not setup():
        return False
    import torch.distributed as dist

    return dist.get_world_size() > 1


def world_size() -> int:
    """The number of ranks (1 without a launcher)."""
    if not distributed():
        return 1
    import torch.distributed as dist

    return int(dist.get_world_size())


def rank() -> int:
    """This process's rank (0 without a launcher)."""
    if not distributed():
        return 0
    import torch.distributed as dist

    return int(dist.get_rank())


def is_main() -> bool:
    """Whether this process is rank 0 (the one that writes files and prints); always true without a launcher."""
    return rank() == 0


def broadcast(obj: Any) -> Any:
    """The main rank's ``obj`` on every rank (pickled; small things: decisions, tables, JSON); ``obj`` itself alone."""
    if not distributed():
        return obj
    import torch.distributed as dist

    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait until every rank gets here (nothing without a launcher)."""
    if distributed():
        import torch.distributed as dist

        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Run the block on the main rank first, then on the others (for idempotent work that writes files the others
    then find, e.g. building the stand-ins once). The others hold no lock while they wait here."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def shutdown() -> None:
    """Leave the process group after a final barrier (at the end of a launched command; nothing otherwise)."""
    if distributed():
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
