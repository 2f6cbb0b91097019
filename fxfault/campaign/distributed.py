"""Sharding a sweep over ``torchrun`` ranks.

Under ``torchrun --nproc_per_node=N`` every process runs the same sweep. The pending
(BER, trial) pairs are dealt round-robin over the ranks; after each round every rank's
record is gathered (``all_gather_object``), so rank 0 appends each finished trial to the
result file as it comes in and every rank returns the same :class:`~.results.SweepResult`.

The process group is created only when the ``WORLD_SIZE`` environment variable says there
is more than one process (gloo for CPU sweeps, nccl for CUDA ones) and destroyed at the end;
a group the caller created is used as it is and left alone.

Example::

    >>> with Workers.start(torch.device("cpu")) as w:   # a single process: no group, rank 0
    ...     w.rank, w.world
    (0, 1)
"""

from __future__ import annotations

import logging
import os
from types import TracebackType
from typing import Any, TypeVar

import torch

__all__ = ["Workers", "env_world_size", "local_device"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset), as set by ``torchrun``."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return max(1, int(raw))
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be an integer, got {raw!r}") from None


class Workers:
    """This process's place among the sweep's processes, and the collectives it needs."""

    def __init__(self, rank: int = 0, world: int = 1, *, owns_group: bool = False) -> None:
        self.rank = rank
        self.world = world
        self.owns_group = owns_group

    @classmethod
    def start(cls, device: torch.device) -> Workers:
        """Join (or create, under ``torchrun``) the default process group, if there is one."""
        import torch.distributed as dist

        if not dist.is_available():
            if env_world_size() > 1:
                raise RuntimeError(
                    "WORLD_SIZE > 1 but this torch build has no torch.distributed; run the sweep "
                    "as a single process"
                )
            return cls()
        if dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        if env_world_size() == 1:
            return cls()
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        log.info("rank %d of %d joined the %s process group", dist.get_rank(),
                 dist.get_world_size(), backend)
        return cls(dist.get_rank(), dist.get_world_size(), owns_group=True)

    @property
    def main(self) -> bool:
        """Whether this is rank 0 (the one that writes files and shows progress)."""
        return self.rank == 0

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box: list[Any] = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[no-any-return]

    def all_gather(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self.owns_group = False

    def __enter__(self) -> Workers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def local_device(device: torch.device) -> torch.device:
    """Under several processes, a CUDA device without an index becomes ``cuda:LOCAL_RANK``."""
    if device.type == "cuda" and device.index is None and env_world_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device
