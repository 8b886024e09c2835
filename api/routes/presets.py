"""Presets: the named settings a spec's `preset` may give (the paper's and the toy task's), listed for clients."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ReadKey
from api.schemas import PresetList, PresetOut
from store.presets import PRESETS

router = APIRouter(prefix="/presets", tags=["presets"])


@router.get("", response_model=PresetList)
def list_presets(_: ReadKey) -> PresetList:
    """Every preset by name, with its kind, what it is for, the fields it sets, the fields it still needs, and what
    it keeps from the paper or departs from it (notes)."""
    items = [
        PresetOut(
            name=name,
            kind=preset.kind,
            description=preset.description,
            values=preset.values,
            requires=preset.requires,
            notes=list(preset.notes),
        )
        for name, preset in sorted(PRESETS.items())
    ]
    return PresetList(items=items)
