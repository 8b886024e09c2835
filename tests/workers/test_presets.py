"""Every preset's pass-through TRL options, and every option the spec allows or refuses, are options TRL's GRPOConfig
has: a typo would fail only on a GPU (or refuse nothing)."""

from __future__ import annotations

import dataclasses

import pytest
from trl import GRPOConfig

from frpo_core.config import FRPOConfig
from store.presets import PRESETS
from store.specs import REFUSED_TRL_OPTIONS, TrainSpec, TrlOptions


@pytest.mark.parametrize("name", [name for name, preset in PRESETS.items() if preset.kind == "train"])
def test_trl_options_exist(name):
    fields = {field.name for field in dataclasses.fields(GRPOConfig)}
    assert set(PRESETS[name].values.get("trl", {})) <= fields


def test_the_allowed_and_refused_trl_options_are_trainer_config_fields():
    fields = {field.name for field in dataclasses.fields(FRPOConfig)}
    assert set(TrlOptions.model_fields) <= fields
    assert set(REFUSED_TRL_OPTIONS) - fields <= set(TrainSpec.model_fields)  # a TRL option now the spec's own
