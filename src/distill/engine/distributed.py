"""Training on several processes with torch.distributed (launched by ``torchrun``).

Nothing is home-made here: processes join the group torchrun describes in the environment
(``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...), gloo on CPUs and NCCL on GPUs; the student is
wrapped in DistributedDataParallel, which averages gradients across processes. Every process
walks the same batches in the same order (same seed) and takes its share of each, so
``batch_size`` stays the global batch and a run matches a single-process one.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Group:
    rank: int
    world: int

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world


def current() -> Group | None:
    """The group this process already belongs to (several processes), or None."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Group(dist.get_rank(), dist.get_world_size())
    return None


def join(device: str) -> Group | None:
    """This process's place in the torchrun group (joining it on first use), or None when
    training runs in one process."""
    import torch.distributed as dist

    if (dist.is_available() and not dist.is_initialized()
            and int(os.environ.get("WORLD_SIZE", "1")) > 1):
        backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return current()


def wrap(model: nn.Module, device: str) -> nn.Module:
    """The student as DDP sees it: gradients all-reduced at every backward pass. Unused
    parameters are allowed (a transformer's pooler under a loss that does not read it)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index] if torch.device(device).type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def is_main() -> bool:
    """Whether this process writes the shared files (rank 0, or the only process)."""
    group = current()
    return group is None or group.main


def barrier() -> None:
    import torch.distributed as dist

    if current() is not None:
        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block (e.g. writes a cache), then the others run it (and find it)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def sharded_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` trained with FSDP (``fully_shard``): each process holds a share of
    every parameter, gradient and optimizer state; transformer blocks (the children of module
    lists) are sharded one by one, the rest as one unit. The user's model stays a plain module
    that :func:`copy_back` refreshes: one full copy of the weights per process, the gradients
    and optimizer states (three times the weights with Adam) divided among them."""
    from torch.distributed.fsdp import fully_shard

    hooked = [n for n, m in model.named_modules() if m._forward_hooks or m._forward_pre_hooks]
    if hooked:
        raise ValueError(f"distributed='fsdp' trains a sharded copy, which the hooks on "
                         f"{hooked[:2]} (layer losses) would not see; use distributed='ddp'")
    sharded = copy.deepcopy(model)
    for lists in [m for m in sharded.modules() if isinstance(m, nn.ModuleList)]:
        for block in lists:
            fully_shard(block)
    fully_shard(sharded)
    return sharded


def copy_back(sharded: nn.Module, model: nn.Module) -> None:
    """The trained weights gathered from every process into ``model`` (a collective call)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(sharded, options=StateDictOptions(full_state_dict=True))
    with torch.no_grad():
        model.load_state_dict(full)
