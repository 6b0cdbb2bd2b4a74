"""torchrun process groups and device choice; a single process is a world of size 1."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from depth_unet_ros.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we initialised the process group, so we destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def select_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto``: this rank's GPU when CUDA is present, else the CPU."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda":
        preference = f"cuda:{local_rank}"
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"run.device={preference!r} but this PyTorch has no CUDA device; "
                          "use run.device=cpu or auto")
    return torch.device(preference)


def init_distributed(device: torch.device) -> DistContext:
    """Join the torchrun process group from RANK/WORLD_SIZE/LOCAL_RANK; a no-op without them."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    owns = not dist.is_initialized()
    if owns:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        _import_dynamo_first()
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world_size, local_rank, owns)


def _import_dynamo_first() -> None:
    """Import ``torch._dynamo`` before the process group exists, so the group can be freed.

    DDP's constructor imports it; when that first import happens while a group exists, the
    group is never freed (torch 2.13): destroy_process_group leaves its gloo worker threads,
    which hold the work and its tensors, running into the interpreter's teardown, the likely
    cause of a rank that aborted at exit about once in 80 two-rank runs ("terminate called
    without an active exception"; too rare to reproduce on demand). Imported first, the group
    and its worker threads go when destroyed.
    """
    import torch._dynamo  # noqa: F401
