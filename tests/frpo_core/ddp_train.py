"""Run under `torchrun --nproc_per_node 2` by test_trainer_ddp.py: FRPO with one prompt group split over two ranks.

Each rank checks, over the gathered batch, that every group holds exactly num_generations completions of one prompt,
then trains; rank 0 writes the parameter checksums of every rank so the test can see DDP kept them in sync.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import PrinterCallback

from frpo_core import FRPOConfig, FRPOTrainer
from frpo_core.quickstart import prompt_dataset, share_of_e


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
    config = FRPOConfig(
        output_dir=output_dir,
        loss_type="frpo",
        lamb=0.5,
        scale_rewards="none",
        learning_rate=1e-3,
        per_device_train_batch_size=4,
        num_generations=8,
        max_completion_length=8,
        max_steps=3,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        log_level="error",
    )
    trainer = CheckingTrainer(model=model_path, reward_funcs=[share_of_e], args=config, train_dataset=prompt_dataset())
    trainer.remove_callback(PrinterCallback)
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
