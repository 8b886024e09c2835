"""Every page under Streamlit's AppTest, against the real API (uvicorn) over a seeded database: what a person sees."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import export
from frpo_client import Client
from testkit.dashboard import (
    ARITH,
    CODE,
    CODE_BEFORE,
    CODE_GAIN,
    MATH_BEFORE,
    MATH_LOSS,
    NO_CODE_AFTER,
    SAMPLE_PROMPTS,
)
from testkit.service import free_port

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_cache")]

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def run(page: str = "compare", **query: str) -> AppTest:
    """The app on `page` with `query` in its URL, run once (raising if the page raised)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    if page != "compare":
        at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def array(value) -> list[float]:
    """A trace's x or y as plotly serialises it (a list, or a typed array in base64)."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)


def legend(fig: dict) -> list[str]:
    return [t["name"] for t in fig["data"] if t.get("showlegend", True)]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_compare_draws_figure_1_for_the_picked_runs(live, use_api):
    use_api(live.url, live.seeded.read_key)
    at = run(runs=",".join(live.seeded.finetune_ids()))
    assert not at.error
    assert at.title[0].value == "Does safety survive fine-tuning?"
    assert "12 fine-tuning runs (GRPO (baseline): 6, FRPO λ=0.5: 3, FRPO λ=2: 3)" in texts(at.caption)
    refusal, strongreject, kl, reward = figures(at)
    assert refusal["layout"]["title"]["text"].startswith("Safety during downstream fine-tuning: refusal rate")
    assert "band = min–max over seeds" in refusal["layout"]["title"]["subtitle"]["text"]
    assert legend(refusal) == ["GRPO (baseline)", "FRPO λ=0.5", "FRPO λ=2"]
    grpo = next(t for t in refusal["data"] if t["name"] == "GRPO (baseline)")
    assert array(grpo["x"]) == list(range(0, 101, 10))
    expected = live.seeded.expected_before_after()
    assert array(grpo["y"])[0] == pytest.approx(100 * expected["GRPO"][0])
    assert array(grpo["y"])[-1] == pytest.approx(100 * expected["GRPO"][1])
    assert legend(strongreject) == legend(kl) == legend(reward) == ["GRPO (baseline)", "FRPO λ=0.5", "FRPO λ=2"]
    assert [a["text"] for a in kl["layout"]["annotations"]] == ["on harmful prompts", "on harmless prompts"]
    table = at.dataframe[0].value.set_index("method")
    for label, (before, after, drop) in expected.items():
        row = table.loc["GRPO (baseline)" if label == "GRPO" else label]
        assert row["refusal before (%)"] == pytest.approx(100 * before)
        assert row["refusal after (%)"] == pytest.approx(100 * after)
        assert row["drop (points)"] == pytest.approx(100 * drop)
    assert table.loc["FRPO λ=0.5", "drop (points)"] < table.loc["FRPO λ=2", "drop (points)"]
    assert table.loc["FRPO λ=2", "drop (points)"] < table.loc["GRPO (baseline)", "drop (points)"]
    buttons = [b.key.split("-")[0] for b in at.get("download_button")]
    assert buttons.count("csv") == 5  # a CSV per chart and the table's
    assert buttons.count("pdf") == (4 if export.chrome() else 0)  # a PDF per chart where the host has a Chrome
    assert sorted(at.query_params["runs"].split(",")) == sorted(live.seeded.finetune_ids())


def test_compare_a_sweep_leaves_out_failed_runs(live, use_api):
    use_api(live.url, live.seeded.read_key)
    at = run(sweep=live.seeded.sweep_id, band="sd")
    assert "1 failed or cancelled run(s) left out" in texts(at.caption)
    refusal = figures(at)[0]
    assert "band = mean ± 1 sd over seeds" in refusal["layout"]["title"]["subtitle"]["text"]
    table = at.dataframe[0].value.set_index("method")
    before, after, _ = live.seeded.expected_before_after()["FRPO λ=0.5"]
    assert table.loc["FRPO λ=0.5", "runs"] == 3  # the failed run's zeros are not in the mean
    assert table.loc["FRPO λ=0.5", "refusal after (%)"] == pytest.approx(100 * after)


def test_compare_selection_follows_the_sidebar_into_the_url(live, use_api):
    use_api(live.url, live.seeded.read_key)
    frpo_only = [i for i, tags in live.seeded.finetune.items() if tags["method"] == "frpo"]
    at = run(runs=",".join(frpo_only))
    assert legend(figures(at)[0]) == ["FRPO λ=0.5", "FRPO λ=2"]
    assert "No GRPO baseline among these runs" in texts(at.caption)
    at.sidebar.radio(key="compare_mode").set_value("sweep").run()
    assert at.query_params.get("sweep") == live.seeded.sweep_id and "runs" not in at.query_params
    assert legend(figures(at)[0])[0] == "GRPO (baseline)"
    at.sidebar.radio(key="compare_band").set_value("sd").run()
    assert at.query_params.get("band") == "sd"


def test_compare_reads_every_group_against_a_pinned_reference(live, use_api):
    use_api(live.url, live.seeded.read_key)
    at = run(runs=",".join(live.seeded.finetune_ids()))
    table = at.dataframe[0].value.set_index("method")  # GRPO is the reference until another is pinned
    assert table.loc["GRPO (baseline)", "drop − reference (points)"] == 0
    at.sidebar.selectbox(key="compare_ref").set_value("FRPO λ=2").run()
    assert at.query_params["ref"] == "FRPO λ=2"
    refusal, _, kl, _ = figures(at)
    assert legend(refusal)[0] == "FRPO λ=2 (reference)" and "GRPO" in legend(refusal)
    pinned = next(t for t in refusal["data"] if t["name"] == "FRPO λ=2 (reference)")
    assert pinned["line"]["dash"] == "dash"
    assert legend(kl)[0] == "FRPO λ=2 (reference)"
    table = at.dataframe[0].value.set_index("method")
    expected = live.seeded.expected_before_after()
    drop_vs_pinned = 100 * (expected["GRPO"][2] - expected["FRPO λ=2"][2])
    assert table.loc["GRPO", "drop − reference (points)"] == pytest.approx(drop_vs_pinned)
    assert table.loc["FRPO λ=2 (reference)", "after − reference (points)"] == 0
    shared = run(runs=",".join(live.seeded.finetune_ids()), ref="FRPO λ=0.5")  # a shared link keeps the pin
    assert legend(figures(shared)[0])[0] == "FRPO λ=0.5 (reference)"


def test_compare_home_page_defaults_to_the_newest_sweep(live, use_api):
    use_api(live.url, live.seeded.read_key)
    at = run()
    assert at.query_params["sweep"] == live.seeded.sweep_id  # the view is in the URL, ready to share
    assert legend(figures(at)[0]) == ["GRPO (baseline)", "FRPO λ=0.5", "FRPO λ=2"]


def test_compare_explains_an_empty_service(empty, use_api):
    use_api(empty.url, empty.seeded.read_key)
    at = run()
    assert "No fine-tuning runs to compare yet" in texts(at.info) and not figures(at)


def test_api_errors_are_messages_not_tracebacks(live, use_api, monkeypatch):
    use_api(f"http://127.0.0.1:{free_port()}", "frpo_x_y")
    for page in ("compare", "sweep", "capability", "run", "jobs"):
        at = run(page)
        assert "cannot reach the API at http://127.0.0.1:" in texts(at.error), page
        assert not figures(at)
    use_api(live.url, "frpo_wrong_key")
    assert "invalid or revoked API key" in texts(run().error)
    monkeypatch.delenv("FRPO_DASHBOARD_API_KEY")
    assert "No API key" in texts(run("run").error)
    use_api(live.url, live.seeded.read_key)
    assert "no run with id 'not-a-run'" in texts(run(runs="not-a-run").error)


def test_sweep_page(live, use_api):
    use_api(live.url, live.seeded.read_key)
    at = run("sweep", sweep=live.seeded.sweep_id)
    assert not at.error
    assert "12 RL runs and 13 fine-tuning runs in this sweep." in texts(at.caption)
    lam, tradeoff, robust = figures(at)
    assert lam["layout"]["xaxis"]["type"] == "log"
    assert {t["name"] for t in lam["data"]} == {"FRPO", "GRPO (baseline), λ → ∞"}
    frpo = next(t for t in lam["data"] if t["name"] == "FRPO")
    expected = live.seeded.expected_before_after()
    assert array(frpo["x"]) == [0.5, 2.0]
    assert array(frpo["y"]) == pytest.approx([100 * expected["FRPO λ=0.5"][1], 100 * expected["FRPO λ=2"][1]])
    assert legend(tradeoff)[0] == "GRPO (baseline)"
    grpo_points = next(t for t in tradeoff["data"] if t["name"] == "GRPO (baseline)")
    assert grpo_points["marker"]["symbol"] == "x"
    assert robust["layout"]["xaxis"]["title"]["text"] == "robust reward at the end of RL training"
    table = at.dataframe[0].value.set_index("group")
    assert table.loc["GRPO (baseline)", "runs"] == 6
    assert table.loc["FRPO λ=0.5", "helpfulness"] == pytest.approx(0.71)  # eval/reward_normal at step 0


def test_sweep_page_without_sweeps(empty, use_api):
    use_api(empty.url, empty.seeded.read_key)
    assert "No sweeps yet" in texts(run("sweep").info)


def test_run_page_shows_curves_spec_lineage_and_artifacts(live, use_api):
    use_api(live.url, live.seeded.read_key)
    rl_id = next(iter(live.seeded.rl))
    at = run("run", run=rl_id)
    assert not at.error
    [curves] = figures(at)
    names = {t["name"] for t in curves["data"]}
    assert {"reward", "rewards/share_of_e/mean", "robust_reward", "kl", "entropy", "loss"} <= names
    assert "completions/mean_length" in names
    assert "Not measured in this run:" in texts(at.caption) and "StrongREJECT" in texts(at.caption)
    links = [link.proto for link in at.get("page_link")]
    child = next(f for f, t in live.seeded.finetune.items() if t["seed"] == live.seeded.rl[rl_id]["seed"])
    assert any(f"run={child}" in link.query_string or child[:8] in link.label for link in links)
    assert at.json[0].value and json.loads(at.json[0].value)["kind"] == "train"
    assert at.dataframe[0].value["kind"].tolist() == ["model"]

    finetune_id = live.seeded.finetune_ids()[0]
    at = run("run", run=finetune_id)
    labels = texts(at.get("page_link"))
    assert "train:" in labels and "evaluate:" in labels  # its parent and its evaluation
    assert "eval/refusal_rate" in {t["name"] for t in figures(at)[0]["data"]}


def test_run_page_without_runs(empty, use_api):
    use_api(empty.url, empty.seeded.read_key)
    assert "No runs yet" in texts(run("run").info)


def test_jobs_page_lists_and_opens_jobs(live, use_api):
    use_api(live.url, live.seeded.read_key)
    at = run("jobs", job=live.seeded.failed_id)
    listed = at.dataframe[0].value
    assert len(listed) == 26 and {"progress", "ETA", "status"} <= set(listed.columns)
    assert "Newest first: 26 of 26." in texts(at.caption)
    assert "out of memory" in texts(at.error)
    assert at.button(key="jobs_retry").disabled is False and at.button(key="jobs_cancel").disabled is True
    at.selectbox(key="jobs_status").select("failed").run()
    assert at.dataframe[0].value["status"].tolist() == ["failed"]


def test_jobs_page_submits_cancels_and_shows_api_errors(empty, use_api):
    use_api(empty.url, empty.seeded.read_key)
    at = run("jobs")
    assert "No jobs match" in texts(at.info)
    assert json.loads(at.text_area[0].value)["kind"] == "train"
    at.button(key="submit_go").click().run()
    assert "lacks the 'submit' scope" in texts(at.error)  # the dashboard's own key only reads

    at.sidebar.text_input(key="jobs_action_key").input(empty.seeded.submit_key).run()
    spec = json.loads(at.text_area[0].value)
    at.text_area[0].input(json.dumps({**spec, "lamb": -1})).run()
    at.button(key="submit_go").click().run()
    assert "lamb" in texts(at.error) and "greater than 0" in texts(at.error)  # the API's own words
    at.text_area[0].input("{not json").run()
    at.button(key="submit_go").click().run()
    assert "not valid JSON" in texts(at.error)
    at.text_area[0].input(json.dumps({**spec, "method": "grpo", "name": "from the dashboard"})).run()
    at.button(key="submit_go").click().run()
    assert "Queued: train job" in texts(at.success)
    [job] = Client(empty.url, empty.seeded.read_key).list_jobs()["items"]
    assert job["name"] == "from the dashboard" and job["tags"]["method"] == "grpo"

    at = run("jobs", job=job["id"])
    at.sidebar.text_input(key="jobs_action_key").input(empty.seeded.submit_key).run()
    at.button(key="jobs_cancel").click().run()
    assert "Cancel: job" in texts(at.success) and "is now cancelled" in texts(at.success)
    assert at.metric[0].value == "cancelled"
    assert "cancelled before it started" in at.dataframe[1].value["message"].tolist()


def test_jobs_page_offers_the_apis_presets(empty, use_api):
    use_api(empty.url, empty.seeded.read_key)
    at = run("jobs")
    presets = [s for s in at.selectbox if s.key == "preset_train_preset"]
    assert presets, "the API's train spec offers its presets"
    choice = presets[0].options[1]
    presets[0].select(choice).run()
    assert json.loads(at.text_area[0].value) == {"kind": "train", "preset": choice}
    at.selectbox(key="submit_kind").select("sweep").run()
    grid = json.loads(at.text_area[0].value)["grid"]
    assert set(grid) >= {"lamb", "seed"} and set(grid.values()) == {None}  # the grid's axes, for the user to fill


# --- Benchmarks (the math seed: toy-math-frontier's pipelines scored before and after code SFT) --------------------


def test_benchmarks_page_shows_before_and_after_code_sft_for_grpo_and_frpo(math_api, use_api):
    use_api(math_api.url, math_api.seeded.read_key)
    at = run("capability")  # the newest sweep, as a link from `frpo demo` would name it
    sweep = math_api.seeded.sweeps["toy math frontier"]
    assert at.query_params["sweep"] == sweep and not at.error and not at.info, texts(at.info)
    assert "30 benchmark evaluation runs (15 before fine-tuning, 15 after fine-tuning) of 15 pipelines." in texts(
        at.caption
    )
    lam, bars = figures(at)
    assert [a["text"] for a in lam["layout"]["annotations"]] == ["toy_arith", "toy_humaneval"]  # math first
    assert lam["layout"]["xaxis"]["type"] == "log"
    assert legend(lam) == ["FRPO"] + [f"GRPO baseline (steps {n}), λ → ∞" for n in (40, 80, 160)]
    frpo, *grpo = [t for t in lam["data"] if t.get("xaxis", "x") == "x"]  # the toy_arith panel
    assert array(frpo["x"]) == [0.2, 1.0]
    after = {key: MATH_BEFORE[key] - MATH_LOSS[key] for key in MATH_BEFORE}
    assert array(frpo["y"]) == pytest.approx([after[("frpo", 0.2)], after[("frpo", 1.0)]])
    assert [t["y"][0] for t in grpo] == pytest.approx([after[("grpo", n)] for n in (40, 80, 160)])
    assert {t["line"]["dash"] for t in grpo} == {"dash"}
    settings = ["GRPO (steps 40)", "GRPO (steps 80)", "GRPO (steps 160)", "FRPO λ=0.2", "FRPO λ=1"]
    before_bars, after_bars = bars["data"][:2]
    assert before_bars["x"] == after_bars["x"] == settings
    assert array(before_bars["y"]) == pytest.approx(list(MATH_BEFORE.values()))  # GRPO by budget, FRPO by λ

    summary = at.dataframe[0].value.set_index(["metric", "setting"])
    assert summary.loc[(ARITH, "FRPO λ=0.2"), "change"] == "-0.040 ± 0.000"
    assert summary.loc[(ARITH, "GRPO (steps 160)"), "change"] == "-0.200 ± 0.000"
    grpo160 = summary.loc[(CODE, "GRPO (steps 160)")]  # seed 2's after was not measured: seeds 0 and 1 (-0.01, 0)
    assert grpo160["seeds"] == 3 and grpo160["after"] == f"{CODE_BEFORE + CODE_GAIN[('grpo', 160)] - 0.005:.3f} ± 0.007"
    runs = at.dataframe[1].value
    assert len(runs) == 30 and runs["setting"].iloc[0] == "GRPO (steps 40)"
    method, steps, seed = NO_CODE_AFTER
    missing = runs[(runs["budget"].str.startswith(f"steps {steps},")) & (runs["seed"] == seed)]
    assert missing.set_index("when").loc["after fine-tuning", CODE] == "not measured"
    assert missing.set_index("when").loc["before fine-tuning", ARITH] == "0.430 ± 0.020"
    assert sum(b.key.startswith("csv-") for b in at.get("download_button")) == 4  # the 2 charts' CSVs, 2 tables'


def test_benchmarks_page_explains_what_is_missing(math_api, empty, use_api):
    use_api(math_api.url, math_api.seeded.read_key)
    at = run("capability", sweep=math_api.seeded.sweeps["toy math, after only"])
    assert "Before / after needs `evaluate_before: true`" in texts(at.info)
    [lam] = figures(at)  # the after-vs-λ chart still stands
    assert legend(lam) == ["FRPO", "GRPO (baseline), λ → ∞"]
    assert set(at.dataframe[0].value["before"]) == {"not measured"}

    at = run("capability", runs=math_api.seeded.standalone_id)
    assert "not part of a pipeline" in texts(at.info) and not figures(at)
    [table] = [frame.value for frame in at.dataframe]
    assert table[["setting", "when", ARITH]].values.tolist() == [
        ["no RL (e.g. a warm start)", "standalone", "0.120 ± 0.020"]
    ]

    use_api(empty.url, empty.seeded.read_key)
    assert "Nothing to show yet" in texts(run("capability").info)


def test_an_evaluation_run_brings_its_pipelines_other_evaluation(math_api, use_api):
    use_api(math_api.url, math_api.seeded.read_key)
    seeded = math_api.seeded
    after = next(i for i in seeded.evaluation_ids("toy math frontier") if "after" in seeded.evaluations[i]["evaluates"])
    at = run("capability", runs=after)
    assert "2 benchmark evaluation runs (1 before fine-tuning, 1 after fine-tuning) of 1 pipeline." in texts(at.caption)
    assert len(figures(at)) == 2  # the λ chart and the before / after bars

    at = run("run", run=after)  # the evaluation's Run page links here
    [link] = [link.proto for link in at.get("page_link") if "capability" in link.proto.page]
    assert link.query_string == f"runs={after}"
    at = run("sweep", sweep=seeded.sweeps["toy math frontier"])
    [link] = [link.proto for link in at.get("page_link") if "capability" in link.proto.page]
    assert link.query_string == f"sweep={seeded.sweeps['toy math frontier']}"


def test_metrics_page_draws_any_metric_across_runs_smoothed_and_against_a_pinned_run(live, use_api):
    use_api(live.url, live.seeded.read_key)
    picked = live.seeded.finetune_ids()[:3]
    at = run("metrics", runs=",".join(picked), keys="eval/refusal_rate")
    [fig] = figures(at)
    lines = [t for t in fig["data"] if t.get("showlegend", True)]
    assert len(lines) == 3
    first = next(t for t in lines if picked[0][:8] in t["name"])
    refusal = live.seeded.refusal[picked[0]]
    assert array(first["y"]) == pytest.approx([refusal[s] for s in sorted(refusal)])  # raw: as logged

    at.sidebar.slider(key="metrics_smooth").set_value(0.5).run()
    assert at.query_params["smooth"] == "0.5"
    [fig] = figures(at)
    assert sum(t.get("opacity") == 0.25 for t in fig["data"]) == 3  # the raw series, faint behind each smoothed one

    at.sidebar.radio(key="metrics_x").set_value("progress").run()
    [fig] = figures(at)
    assert max(array(fig["data"][-1]["x"])) == pytest.approx(1.0)

    at.sidebar.selectbox(key="metrics_ref").set_value(picked[0]).run()
    at.sidebar.checkbox(key="metrics_diff").check().run()
    assert at.query_params["ref"] == picked[0] and at.query_params["diff"] == "1"
    [fig] = figures(at)
    pinned = next(t for t in fig["data"] if t["name"].endswith("(reference)"))
    assert legend(fig)[0] == pinned["name"] and pinned["line"]["dash"] == "dash"
    assert all(v == pytest.approx(0.0) for v in array(pinned["y"]))  # the reference minus itself


def test_chart_images_are_svg_when_picked_in_the_sidebar(live, use_api):
    use_api(live.url, live.seeded.read_key)
    at = run(runs=",".join(live.seeded.finetune_ids()))
    assert json.loads(at.get("plotly_chart")[0].proto.config)["toImageButtonOptions"]["format"] == "png"
    at.sidebar.radio(key="image_format").set_value("svg").run()
    config = json.loads(at.get("plotly_chart")[0].proto.config)
    assert config["toImageButtonOptions"]["format"] == "svg"


def test_samples_page_shows_the_answers_behind_a_rate_and_what_changed_between_steps(live, use_api):
    use_api(live.url, live.seeded.read_key)
    run_id = live.seeded.finetune_ids()[0]
    at = run("samples", run=run_id)
    assert at.query_params["step"] == "100" and at.query_params["vs_step"] == "0"  # last step against the first
    assert "2 of 4 prompts changed verdict." in texts(at.caption)
    table = at.dataframe[0].value
    assert list(table["verdict"]) == ["refused", "answered", "answered", "answered"]
    assert list(table["verdict (vs)"]) == ["refused", "refused", "refused", "answered"]
    at.sidebar.selectbox(key="samples_vs_step").set_value(100).run()  # the same step: no comparison, one table
    at.sidebar.radio(key="samples_verdict").set_value("refused").run()
    table = at.dataframe[0].value
    assert list(table["answer"]) == ["I can't help with that."] and at.query_params["verdict"] == "refused"
    assert "1 refused" in texts(at.caption)


def test_samples_page_compares_two_runs_on_the_same_prompts(live, use_api):
    use_api(live.url, live.seeded.read_key)
    grpo, frpo = live.seeded.sampled_ids
    at = run("samples", run=grpo, vs=frpo, vs_step="100")
    assert "Against FRPO λ=0.5 · seed 0 · finetune" in texts(at.subheader) and "at step 100" in texts(at.subheader)
    assert "1 of 4 prompts changed verdict." in texts(at.caption)  # prompt 1: FRPO still refuses it
    table = at.dataframe[0].value
    assert list(table["prompt"]) == list(SAMPLE_PROMPTS) and list(table["changed"]) == [False, True, False, False]
    at.sidebar.radio(key="samples_verdict").set_value("answered").run()
    assert "1 of 3 prompts changed verdict." in texts(at.caption) and at.query_params["vs"] == frpo


def test_samples_page_explains_a_run_without_samples(live, use_api):
    use_api(live.url, live.seeded.read_key)
    at = run("samples", run=live.seeded.finetune_ids()[1])
    assert "No samples for this run" in texts(at.info)
