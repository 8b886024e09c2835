"""Specs from the command line: a file, a preset and `--set FIELD=VALUE` overrides, typed as YAML."""

from __future__ import annotations

import pytest
import typer

from cli.specs import build_spec


def test_a_file_a_preset_and_overrides_make_one_spec(tmp_path):
    file = tmp_path / "spec.yaml"
    file.write_text("kind: train\nlamb: 0.2\ntrl: {temperature: 1.0}\n")
    spec = build_spec(file, "toy-safety", ["lamb=0.5", "trl.top_p=0.9", "grid.seed=[0, 1]", "parent_id=null"])
    assert spec == {
        "kind": "train",
        "preset": "toy-safety",
        "lamb": 0.5,
        "trl": {"temperature": 1.0, "top_p": 0.9},
        "grid": {"seed": [0, 1]},
        "parent_id": None,
    }


def test_a_preset_alone_is_a_spec():
    assert build_spec(None, "toy-frontier", ["base.train.parent_id=abc"]) == {
        "preset": "toy-frontier",
        "base": {"train": {"parent_id": "abc"}},
    }


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["lamb"], "write FIELD=VALUE"),
        (["=1"], "write FIELD=VALUE"),
        (["trl=1", "trl.top_p=0.9"], "trl is 1, not a mapping"),
        (["grid.seed=[0, 1"], "not valid YAML"),
    ],
)
def test_a_malformed_override_names_itself_and_the_fix(sets, message):
    with pytest.raises(typer.BadParameter, match=message):
        build_spec(None, None, sets)


def test_nothing_given_is_refused_naming_what_to_give():
    with pytest.raises(typer.BadParameter, match="give a spec file, --preset or --set"):
        build_spec(None, None, None)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path):
    file = tmp_path / "spec.yaml"
    file.write_text("- kind: train\n")
    with pytest.raises(typer.BadParameter, match="must hold a mapping"):
        build_spec(file, None, None)
    with pytest.raises(typer.BadParameter, match="cannot read"):
        build_spec(tmp_path / "missing.yaml", None, None)
