"""What every spec shares: the names of the offline defaults, the error that names a field, and presets."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from store.presets import PRESETS, apply_preset, preset_names

TINY_MODEL = "tiny"
WARM_START_MODEL = "toy-warm-start"  # the shipped toy safety warm start (frpo_core/toy/warm_start.py)
QUICKSTART_DATASET = "toy"  # the RL dataset name of the quickstart's prompts (frpo_core.toy.quickstart)
# frpo_core.data.sources.NAMED's streamed sets: read the first N rows
STREAMED_DATASETS = frozenset({"opencodeinstruct"})
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PAPER_MAX_PROMPT_LENGTH = 1024  # the authors' bound on prompt tokens (docs/method.md §2.3)
MAX_PROMPT_TOKENS = 131_072  # the longest context of the models the paper names (and then some)
MAX_STEPS = 1_000_000  # a bound on every step count: far beyond any run, well inside a 64-bit column
MAX_EPOCHS = 1000  # a bound on a fine-tuning's passes over its data: far beyond any downstream SFT
MAX_SEED = 2**32 - 1  # numpy's seeds (transformers' set_seed) must fit in 32 bits
MAX_SOURCE_LENGTH = 1000  # a name, hub id or path

# the values a sweep varies, bounded alike in a spec and in a sweep's axes
Lamb = Annotated[float, Field(gt=0, le=1e6)]
Beta = Annotated[float, Field(ge=0, le=1e6)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
LearningRate = Annotated[float, Field(gt=0, le=1)]
Steps = Annotated[int, Field(ge=1, le=MAX_STEPS)]

STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
"""Every spec model's config: unknown fields are refused (a typo is not silently ignored) and so are NaN and
±Infinity (JSON has neither; Python's parser accepts them, and a NaN learning rate fails only hours later)."""


def source_field(default: str | None, description: str) -> Any:
    """A field naming a model, data set or judge: a name, hub id or path, bounded in length."""
    return Field(default, max_length=MAX_SOURCE_LENGTH, description=description)


def max_prompt_length_field(where: str) -> Any:
    """The `max_prompt_length` field of a spec whose prompts are `where`: bounded, with help text."""
    return Field(
        PAPER_MAX_PROMPT_LENGTH,
        ge=16,
        le=MAX_PROMPT_TOKENS,
        description=f"{where} longer than this many tokens (counted after the model's chat template) are cut from "
        "the left inside their text, the template's start and end kept (the authors: 1024); the count is recorded as "
        "an event on the run. null: no bound (one long prompt can make a step many times slower, or run a GPU out "
        "of memory).",
    )


def overlong_prompts_field() -> Any:
    """The `overlong_prompts` field: what happens to a prompt over `max_prompt_length`."""
    return Field(
        "truncate",
        description="Prompts over max_prompt_length: 'truncate' (cut from the left, as TRL's old max_prompt_length "
        "did) or 'drop' (left out of the data; the count is recorded as an event on the run).",
    )


Tracker = Literal["wandb", "mlflow", "trackio", "tensorboard"]
# TRL 1.16's GRPO loss types, each a baseline FRPO can be compared against; "frpo" is this project's (frpo_core.loss).
Baseline = Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"]
Method = Literal["frpo", "grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"]


def report_to_field() -> Any:
    """The `report_to` field: outside trackers the trainer also logs to (the store always gets everything)."""
    return Field(
        [],
        max_length=4,
        description="Trackers the trainer also reports to, beside this service's store: wandb, mlflow, trackio, "
        "tensorboard (each must be installed on the worker; configured by its own environment variables there, "
        "e.g. WANDB_MODE=offline, MLFLOW_TRACKING_URI; tensorboard writes event files into the run's folder).",
    )


class SpecError(ValueError):
    """A spec that validates as a shape but cannot run here; `field` names what to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def preset_help(kind: str) -> str:
    names = ", ".join(name for name, preset in PRESETS.items() if preset.kind == kind)
    return f"Start from a named preset ({names}); fields given here override it."


def preset_enum(kind: str) -> dict[str, Any]:
    """The preset names as the field's JSON-schema enum, so forms (the dashboard's) can offer them."""
    return {"enum": [*preset_names(kind), None]}


def preset_field(kind: str) -> Any:
    """The `preset` field of a spec of `kind`: a preset's name, offered as an enum."""
    return Field(None, max_length=100, description=preset_help(kind), json_schema_extra=preset_enum(kind))


def preset_tags(name: str | None) -> dict[str, Any]:
    """A preset's name and its notes (every difference it keeps from the paper or between methods) as tags."""
    if name is None:
        return {}
    notes = PRESETS[name].notes
    return {"preset": name, **({"preset_notes": list(notes)} if notes else {})}


class FromPreset(BaseModel):
    """A spec that may start from a named preset (`store.presets`) of its `preset_kind`: the preset's values fill
    in beneath what the spec gives itself, before validation."""

    preset_kind: ClassVar[str]

    def __init_subclass__(cls, preset_kind: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if preset_kind is not None:
            cls.preset_kind = preset_kind

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, value: Any) -> Any:
        return apply_preset(cls.preset_kind, value)


def job_kind(value: Any) -> str:
    """A body without "kind" is a training job, so `{"method": "frpo"}` alone is a valid submission."""
    return value.get("kind", "train") if isinstance(value, dict) else getattr(value, "kind", "train")
