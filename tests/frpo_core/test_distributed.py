"""Two gloo processes under DDP give the single-process gradient when prompt groups are split across ranks."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from frpo_core.loss import frpo_loss
from testkit.service import free_port

B, T, D = 16, 5, 3
CASES = [
    dict(lamb=0.3, jackknife=True, baseline=True, scale="authors", beta=0.05),
    dict(lamb=2.0, jackknife=False, baseline=True, scale="lambda", clip="sign_aware", beta=0.0),
    dict(lamb=0.1, jackknife=True, baseline=False, scale="lambda", clip="sign_aware", beta=0.1),
]


class TokenLogProbs(torch.nn.Module):
    """A stand-in policy: per-token log-probs −softplus(x·w), so a shared parameter receives every row's gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.linspace(-1.0, 1.0, D, dtype=torch.float64))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return -torch.nn.functional.softplus(features @ self.w)


def make_data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    # 4 groups of 4; rank 0 takes rows 0-7 and rank 1 rows 8-15, so every group has members on both ranks.
    group_ids = torch.tensor([7, 3, 9, 1, 3, 7, 1, 9, 9, 1, 7, 3, 1, 9, 3, 7])
    rewards = torch.rand(B, generator=g, dtype=torch.float64)
    means = {int(k): rewards[group_ids == k].mean() for k in group_ids.unique()}
    advantages = rewards - torch.stack([means[int(k)] for k in group_ids])
    features = torch.randn(B, T, D, generator=g, dtype=torch.float64)
    with torch.no_grad():
        logps = TokenLogProbs()(features)
    lengths = torch.tensor([5, 3, 4, 5, 2, 5, 1, 4, 5, 5, 3, 2, 4, 5, 5, 1])
    return dict(
        features=features,
        group_ids=group_ids,
        advantages=advantages,
        old=logps + 0.3 * torch.randn(B, T, generator=g, dtype=torch.float64),
        ref=logps + 0.2 * torch.randn(B, T, generator=g, dtype=torch.float64),
        mask=(torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).long(),
    )


def gradient(data: dict[str, torch.Tensor], rows: slice, case: dict, distributed: bool, wrap=lambda m: m):
    model = TokenLogProbs()
    policy = wrap(model)
    loss = frpo_loss(
        policy(data["features"][rows]),
        data["old"][rows],
        data["advantages"][rows],
        data["mask"][rows],
        data["group_ids"][rows],
        ref_per_token_logps=data["ref"][rows],
        distributed=distributed,
        **case,
    )
    loss.backward()
    return model.w.grad.clone()


def _rank_main(rank: int, world: int, port: int, queue) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        data = make_data()
        rows = slice(rank * B // world, (rank + 1) * B // world)
        # DDP averages the ranks' gradients, as in real multi-GPU training.
        grads = [gradient(data, rows, case, distributed=True, wrap=DistributedDataParallel) for case in CASES]
        if rank == 0:
            queue.put([g.tolist() for g in grads])
        dist.barrier()  # neither rank tears gloo down while the other still talks to it (that aborts the process)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_process_gradients():
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    mp.start_processes(_rank_main, args=(2, free_port(), queue), nprocs=2, join=True, start_method="spawn")
    return [torch.tensor(g, dtype=torch.float64) for g in queue.get()]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_two_ranks_match_one_process(two_process_gradients, index):
    data = make_data()
    expected = gradient(data, slice(None), CASES[index], distributed=False)
    torch.testing.assert_close(two_process_gradients[index], expected, rtol=1e-10, atol=1e-12)


def test_without_gathering_the_split_groups_are_wrong():
    """The check above has teeth: each rank's half-groups alone give a different gradient."""
    data = make_data()
    halves = [gradient(data, rows, CASES[0], distributed=False) for rows in (slice(0, 8), slice(8, 16))]
    expected = gradient(data, slice(None), CASES[0], distributed=False)
    assert not torch.allclose((halves[0] + halves[1]) / 2, expected)
