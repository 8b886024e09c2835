"""The SFTConfig options a fine-tuning spec may pass through (`sft`): an allow-list, typed and bounded, as `trl` is
for RL (store.specs.trl).

Options not listed are refused: the spec's own fields (steps, batch, learning rate and schedule, LoRA, length,
masking, seed, saving), the `gpu` settings, and options that read files or run code (a chat template path,
`trust_remote_code`, `model_init_kwargs`) or reach the Hub each have their one place, or none. `num_train_epochs` is
not passed through: a spec's own `epochs` (store.specs.finetune) is turned into steps when the job starts, so that a
run's progress, evaluation and checkpoints stay counted in steps and its length is recorded before it trains.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from store.specs.base import STRICT
from store.specs.trl import MAX_DATALOADER_WORKERS

MAX_DATASET_PROCESSES = 16


class SftOptions(BaseModel):
    """Further SFTConfig options; unset (null) options keep the trainer's defaults. Unknown names are refused."""

    model_config = STRICT

    # optimiser and learning-rate schedule beyond the spec's own fields
    lr_scheduler_kwargs: dict[Annotated[str, Field(max_length=64)], Annotated[float, Field(ge=-1e6, le=1e6)]] | None = (
        Field(None, max_length=8, description="Numeric arguments of the schedule, e.g. {'min_lr_rate': 0.1}.")
    )
    optim: Literal["adamw_torch", "adamw_torch_fused", "adafactor", "sgd"] | None = None
    adam_beta1: float | None = Field(None, ge=0, lt=1)
    adam_beta2: float | None = Field(None, ge=0, lt=1)
    adam_epsilon: float | None = Field(None, gt=0, le=1)
    neftune_noise_alpha: float | None = Field(None, ge=0, le=100, description="NEFTune's noise on the embeddings.")
    # data
    packing: bool | None = Field(None, description="Pack several examples into each sequence of max_length.")
    packing_strategy: Literal["bfd", "wrapped"] | None = None
    padding_free: bool | None = None
    truncation_mode: Literal["keep_start", "keep_end"] | None = None
    shuffle_dataset: bool | None = None
    dataset_num_proc: int | None = Field(None, ge=1, le=MAX_DATASET_PROCESSES)
    dataloader_num_workers: int | None = Field(None, ge=0, le=MAX_DATALOADER_WORKERS)
    # the loss, logging and checkpoints
    loss_type: Literal["nll", "dft"] | None = Field(None, description="'nll', or 'dft' (dynamic fine-tuning).")
    logging_first_step: bool | None = None
    save_total_limit: int | None = Field(None, ge=1, le=1000)

    @model_serializer(mode="wrap")
    def _set_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """Only the options given: a stored spec (and the trainer's config) leaves the others to TRL's defaults."""
        return {name: value for name, value in handler(self).items() if value is not None}
