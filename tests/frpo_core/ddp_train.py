"""Run as `torchrun --nproc_per_node 2 --module tests.frpo_core.ddp_train` by test_trainer_ddp.py: FRPO with one
prompt group split over two ranks.

Each rank checks, over the gathered batch, that every group holds exactly num_generations completions of one prompt,
then trains; rank 0 writes the parameter checksums of every rank so the test can see DDP kept them in sync.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from frpo_core import FRPOTrainer
from frpo_core.toy.quickstart import toy_config, toy_trainer


class CheckingTrainer(FRPOTrainer):
    def _compute_loss(self, model, inputs):
        ids = self.accelerator.gather(inputs["group_ids"])
        prompts = self.accelerator.gather(inputs["prompt_ids"] * inputs["prompt_mask"])
        for gid in ids.unique():
            rows = (ids == gid).nonzero().flatten()
            assert rows.numel() == self.num_generations, f"group {gid} has {rows.numel()} members"
            assert (prompts[rows] == prompts[rows[0]]).all(), f"group {gid} mixes prompts"
        local = inputs["group_ids"]
        assert local.unique().numel() == 1 and (ids == local[0]).sum() > local.numel(), "group should span ranks"
        return super()._compute_loss(model, inputs)


def main(model_path: str, output_dir: str) -> None:
    # One prompt group of 8 per optimiser step, 4 completions on each of the two ranks.
    config = toy_config(
        output_dir, per_device_train_batch_size=4, max_completion_length=8, max_steps=3, learning_rate=1e-3
    )
    trainer = toy_trainer(model_path, config, trainer_class=CheckingTrainer)
    trainer.train()
    checksum = torch.stack([p.detach().double().sum() for p in trainer.model.parameters()])
    checksums = [torch.zeros_like(checksum) for _ in range(dist.get_world_size())]
    dist.all_gather(checksums, checksum)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    if dist.get_rank() == 0:
        result = {"world": dist.get_world_size(), "checksums": [c.tolist() for c in checksums], "losses": losses}
        Path(output_dir, "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
