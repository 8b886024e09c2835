"""A job or sweep spec from the command line: a YAML/JSON file (or `-` for stdin), a preset, and `--set` overrides.

    frpo submit spec.yaml --set lamb=0.5 --set trl.temperature=0.7
    frpo sweeps submit --preset toy-frontier --set base.train.parent_id=<warm start> --set grid.seed=[0,1,2]

Values after `=` are read as YAML, so numbers, lists and `null` arrive typed; the API checks the result like any
other spec and names the field and the fix when something is wrong.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

SpecFile = Annotated[
    Path | None, typer.Argument(help="A spec file (YAML or JSON), or - for stdin; optional with --preset.")
]
PresetOption = Annotated[str | None, typer.Option(help="Start from this preset (see `frpo presets`).")]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="FIELD=VALUE, a dotted path and a YAML value (repeatable); wins over file and preset."),
]


def build_spec(file: Path | None, preset: str | None, sets: list[str] | None) -> dict[str, Any]:
    """The spec: the file's mapping (or {}), `preset` set on it, then each `--set` applied in order."""
    spec = _read(file) if file is not None else {}
    if preset is not None:
        spec["preset"] = preset
    for assignment in sets or []:
        _assign(spec, assignment)
    if not spec:
        raise typer.BadParameter("give a spec file, --preset or --set FIELD=VALUE")
    return spec


def _read(file: Path) -> dict[str, Any]:
    text = sys.stdin.read() if str(file) == "-" else _text(file)
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise typer.BadParameter(f"{file} is not valid YAML or JSON: {error}") from error
    if not isinstance(spec, dict):
        raise typer.BadParameter(f"{file} must hold a mapping of spec fields (kind: train, ...)")
    return spec


def _text(file: Path) -> str:
    try:
        return file.read_text()
    except OSError as error:
        raise typer.BadParameter(f"cannot read {file}: {error.strerror}") from error


def _assign(spec: dict[str, Any], assignment: str) -> None:
    path, sep, raw = assignment.partition("=")
    if not sep or not path.strip():
        raise typer.BadParameter(f"--set {assignment!r}: write FIELD=VALUE, e.g. --set lamb=0.5 or grid.seed=[0,1]")
    *parents, leaf = path.strip().split(".")
    node = spec
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise typer.BadParameter(f"--set {assignment!r}: {part} is {child!r}, not a mapping of fields")
        node = child
    try:
        node[leaf] = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise typer.BadParameter(f"--set {assignment!r}: the value is not valid YAML ({error})") from error
