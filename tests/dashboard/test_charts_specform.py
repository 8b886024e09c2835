"""The figures say what they show, and the submit form comes from the API's own schema (read from the real app)."""

from __future__ import annotations

import json

import pytest

from api.main import create_app
from dashboard import charts, specform
from dashboard.aggregate import BANDS, band_frame, long_frame
from dashboard.ui import image_config
from store.settings import Settings
from store.specs import JOB_SPEC, SweepSpec


def _banded():
    runs, data = [], {}
    for i, (method, lamb) in enumerate([("frpo", 2.0), ("grpo", None), ("frpo", 0.5)]):
        runs.append({"id": str(i), "status": "succeeded", "tags": {"method": method, "lamb": lamb, "seed": 0}})
        data[str(i)] = {"k": {"steps": [0, 10], "values": [0.9, 0.5 + 0.1 * i]}}
    return band_frame(long_frame(runs, data, "k"), "minmax")


def test_curves_figure_names_groups_pins_grpo_and_states_the_band():
    fig = charts.curves_figure(
        _banded(),
        title="T",
        subtitle="S",
        x_title="downstream fine-tuning step",
        y_title="refusal (%)",
        band_text=BANDS["minmax"],
        percent=True,
    )
    lines = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in lines] == ["GRPO (baseline)", "FRPO λ=0.5", "FRPO λ=2"]  # GRPO first, then by λ
    assert lines[0].line.dash == "dash" and lines[0].legendrank == 1 and lines[1].line.dash == "solid"
    assert list(lines[0].y) == pytest.approx([90.0, 60.0])  # percent
    assert "min–max over seeds" in fig.layout.title.subtitle.text
    assert fig.layout.xaxis.title.text == "downstream fine-tuning step" and fig.layout.yaxis.title.text == "refusal (%)"
    assert "runs:" in lines[0].hovertemplate
    assert charts.legend_name("GRPO (steps=300)") == "GRPO baseline (steps=300)"  # GRPO at several budgets
    assert charts.group_colors(["GRPO (steps=100)", "GRPO (steps=300)", "FRPO λ=1"]) == {
        "GRPO (steps=100)": charts.GREYS[0],
        "GRPO (steps=300)": charts.GREYS[1],
        "FRPO λ=1": charts.PALETTE[0],
    }


def test_image_export_is_named_and_png_unless_svg_is_picked():
    config = image_config("Refusal rate vs fine-tuning step")
    assert config["toImageButtonOptions"] == {
        "format": "png",
        "filename": "refusal-rate-vs-fine-tuning-step",
        "scale": 2,
    }


def test_lambda_figure_is_log_scaled_with_grpo_as_reference():
    import pandas as pd

    summary = pd.DataFrame(
        {
            "group": ["GRPO", "FRPO λ=0.5", "FRPO λ=2"],
            "family": ["GRPO", "FRPO", "FRPO"],
            "order": [0, 1, 2],
            "method": ["grpo", "frpo", "frpo"],
            "lamb": [None, 0.5, 2.0],
            "runs": [3, 3, 3],
            "after": [30.0, 80.0, 60.0],
            "after_sd": [1.0, 2.0, 3.0],
        }
    )
    fig = charts.lambda_figure(summary, [("after", "refusal after", "%")], title="T", subtitle="S")
    assert fig.layout.xaxis.type == "log"
    names = [t.name for t in fig.data]
    assert names == ["FRPO", "GRPO (baseline), λ → ∞"] and list(fig.data[1].y) == [30.0, 30.0]


@pytest.fixture(scope="module")
def openapi(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("openapi"))
    app = create_app(settings=settings, engine=None, enqueue=lambda *_: None, broker_check=lambda: None)
    return json.loads(json.dumps(app.openapi()))  # as the dashboard receives it


@pytest.mark.parametrize("kind", ["train", "pipeline"])
def test_prefilled_specs_are_valid_as_they_stand(openapi, kind):
    body = specform.prefill(openapi, kind)
    assert body["kind"] == kind
    assert JOB_SPEC.validate_python(body).kind == kind


def test_prefill_leaves_required_fields_to_the_user(openapi):
    finetune = specform.prefill(openapi, "finetune")
    assert finetune["kind"] == "finetune" and finetune["dataset"] and finetune["max_steps"] >= 1
    # an optional nested spec without a schema default (eval: a default factory) is the API's to fill
    assert "eval" not in finetune and finetune["parent_id"] is None
    evaluate = specform.prefill(openapi, "evaluate")
    assert evaluate["run_id"] in ("", None)  # required: left for the user (the form offers finished runs)
    sweep = specform.prefill(openapi, "sweep")
    assert sweep["base"]["kind"] == "train" and set(sweep["grid"]) >= {"lamb", "seed"}
    sweep.update(name="grid", grid={"lamb": [0.5, 2.0]})
    assert len(SweepSpec.model_validate(sweep).points()) == 3
    rows = {r["field"]: r for r in specform.field_rows(openapi, "train")}
    assert rows["method"]["type"].startswith("frpo | grpo | dr_grpo") and "loss" in rows["method"]["description"]
    assert rows["lamb"]["default"] == "1.0"


def test_presets_come_from_the_schema_and_start_a_minimal_body(openapi):
    fields = dict(specform.preset_fields(openapi, "train"))
    assert ("preset",) in fields, "the API's train spec offers its presets"
    choice = fields[("preset",)][0]
    assert all(isinstance(c, str) for c in fields[("preset",)])
    body = specform.body_for(openapi, "train", {("preset",): choice})
    assert body == {"kind": "train", "preset": choice}  # written-out defaults would override the preset
    assert specform.body_for(openapi, "train", {("preset",): None}) == specform.prefill(openapi, "train")
    pipeline = dict(specform.preset_fields(openapi, "pipeline"))
    assert ("train", "preset") in pipeline
    assert specform.body_for(openapi, "pipeline", {("train", "preset"): choice})["train"] == {"preset": choice}
