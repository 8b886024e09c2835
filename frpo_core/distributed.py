"""Cross-rank gathering for losses whose groups span processes.

FRPO's log-mean is over a whole prompt group, and TRL spreads a group's completions over ranks. Each rank gathers the
per-sequence scalars of every rank, but only its own entries carry gradient: the loss is then multiplied by the world
size so that DDP/ZeRO gradient averaging yields the gradient of the global objective (docs/method.md §2.2 step 6, §6.2).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when a torch.distributed process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_local_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's (B, ...) tensor in rank order; gradient flows only into this rank's slice.

    Ranks must hold the same number of rows (TRL gives every rank the same per-device batch). A mismatch is an error
    rather than a hang inside all_gather.
    """
    world, rank = dist.get_world_size(), dist.get_rank()
    rows = torch.tensor([tensor.shape[0]], device=tensor.device)
    all_rows = [torch.empty_like(rows) for _ in range(world)]
    dist.all_gather(all_rows, rows)
    if any(int(r) != tensor.shape[0] for r in all_rows):
        raise ValueError(
            f"per-rank batch sizes differ ({[int(r) for r in all_rows]}); FRPO gathers per-sequence terms and needs "
            "the same per_device_train_batch_size on every rank."
        )
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor.detach().contiguous())
    parts[rank] = tensor
    return torch.cat(parts)
