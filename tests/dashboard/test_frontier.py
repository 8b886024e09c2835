"""The Frontier page (robustness against the KL moved in RL, docs/method.md §7): its numbers, and the page under AppTest
against the real API over the frontier seed (GRPO at 3 budgets × 3 seeds, FRPO at 2 λ × 3 seeds; beside it, a sweep
with Dr. GRPO's budgets too)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.verdict import compare
from dashboard import export
from dashboard import frontier as fr
from frpo_client import Client
from testkit.dashboard import FRONTIER_DR_GRPO, FRONTIER_FRPO, FRONTIER_GRPO
from tests.dashboard.test_pages import array, figures, run, texts

integration = pytest.mark.integration
ABOVE = "FRPO λ=0.5: Δ = +0.151 in refusal rate after fine-tuning (higher is more robust) against GRPO's frontier"


# --- the numbers ----------------------------------------------------------------------------------------------------


def job(run_id: str, kind: str, status: str = "succeeded", parent: str | None = None, **tags) -> dict:
    return {"id": run_id, "kind": kind, "status": status, "parent_id": parent, "tags": tags}


def series(**by_key: list[tuple[int, float | None]]) -> dict:
    return {
        key.replace("__", "/"): {"steps": [s for s, _ in pts], "values": [v for _, v in pts]}
        for key, pts in by_key.items()
    }


def test_pipelines_come_from_finished_runs_with_the_rl_runs_budget():
    rl = [
        job("g1", "train", method="grpo", seed=0, max_steps=60, beta=0.0, learning_rate=3e-3),
        job("g2", "train", method="grpo", seed=0, max_steps=180, beta=0.0, learning_rate=3e-3),
        job("f1", "train", method="frpo", lamb=0.5, seed=0, max_steps=120),
    ]
    finetune = [
        job("g1-ft", "finetune", parent="g1", method="grpo", max_steps=60),
        job("g2-ft", "finetune", parent="g2"),
        job("f1-ft", "finetune", parent="f1"),
        job("f1-ft2", "finetune", "running", parent="f1"),
        job("f1-ft3", "finetune", "failed", parent="f1"),
        job("orphan", "finetune", parent="elsewhere"),
    ]
    refusal = [(0, 0.9), (60, None), (60, 0.5)]
    ft_series = {i: series(eval__refusal_rate=refusal) for i in ("g1-ft", "g2-ft", "f1-ft")}
    rl_series = {"g1": series(eval__kl_safety=[(30, 0.1), (60, 0.3)]), "f1": series(eval__kl_safety=[(120, 0.5)])}
    gathered = fr.gather(finetune, rl, ft_series, rl_series)
    assert gathered.left_out == {"still queued or running": 1, "failed": 1, "its RL run is not in the selection": 1}
    assert [p.finetune["id"] for p in gathered.with_kl()] == ["g1-ft", "f1-ft"]  # g2 logged no eval/kl_safety
    first = gathered.pipelines[0].result
    assert (first.kl_moved, first.refusal_after_rl, first.refusal_after_finetune) == (0.3, 0.9, 0.5)
    assert first.drop == pytest.approx(0.4)
    assert dict(first.budget) == {"steps": 60, "β": 0.0, "lr": 3e-3}

    points = fr.points_frame(gathered.pipelines, "refusal_after_finetune")
    assert points["setting"].tolist() == ["GRPO (steps 60)", "FRPO λ=0.5"]  # only the budget part that differs
    assert points[["kl_moved", "value"]].to_numpy().tolist() == [[0.3, 0.5], [0.5, 0.5]]
    assert fr.baseline_budgets(gathered.pipelines, "refusal_after_finetune") == ["steps 60, β 0, lr 0.003"]
    assert fr.points_frame(gathered.pipelines, "strongreject_after_finetune").empty  # not measured


def test_the_verdicts_and_the_csv_are_analysis_frontiers():
    grpo = {f"steps {k}": [(kl - 0.01, y + 0.01), (kl + 0.01, y - 0.01)] for k, (kl, y) in FRONTIER_GRPO.items()}
    frpo = {f"FRPO λ={lamb:g}": [(kl - 0.01, y), (kl + 0.01, y)] for lamb, (kl, y) in FRONTIER_FRPO.items()}
    result = compare(grpo, frpo)
    table = fr.verdict_frame(result)
    assert table["label"].tolist() == ["more robust", "beyond GRPO's reach (0% of seeds inside its KL range)"]
    assert table["gap"].iloc[0] == pytest.approx(0.15, abs=0.002) and pd.isna(table["gap"].iloc[1])
    assert table["share_inside"].tolist() == [1.0, 0.0] and table["gap_low_95%"].iloc[0] > 0
    assert table["verdict"].tolist() == [v.sentence for v in result.verdicts]
    points = pd.DataFrame(
        [("FRPO λ=0.5", "frpo", 0.5, "steps 120", s, f"r{s}", f"f{s}", 0.5 + 0.01 * s, 0.6) for s in range(3)],
        columns=fr.POINT_COLUMNS,
    )
    means = fr.setting_means(points)
    assert means.loc[0, "kl_moved"] == pytest.approx(0.51) and means.loc[0, "kl_moved_sd"] == pytest.approx(0.01)
    export = fr.export_frame(points, result, fr.measure_named(None))
    assert export["row"].value_counts().to_dict() == {"run": 3, "GRPO frontier": 5, "mean over seeds": 1}
    assert [x for x, _ in result.curve] == pytest.approx([0.29, 0.3, 0.5, 0.7, 0.71])  # each budget's pair pooled
    assert "refusal_after_finetune" in export.columns
    assert (
        fr.measure_named("drop").higher_is_better is False and fr.measure_named("nonsense").name == fr.DEFAULT_MEASURE
    )


def two_baselines() -> list[fr.Pipeline]:
    """GRPO and Dr. GRPO at 60 and 180 steps and FRPO λ=0.5, one seed each, every one measured."""
    plan = [("g60", "grpo", 60, 0.3, 0.4), ("g180", "grpo", 180, 0.7, 0.55), ("d60", "dr_grpo", 60, 0.35, 0.5)]
    plan += [("d180", "dr_grpo", 180, 0.75, 0.62), ("f", "frpo", 120, 0.5, 0.65)]
    rl = [job(i, "train", method=m, lamb=0.5 if m == "frpo" else None, seed=0, max_steps=n) for i, m, n, *_ in plan]
    finetune = [job(f"{i}-ft", "finetune", parent=i) for i, *_ in plan]
    ft_series = {f"{i}-ft": series(eval__refusal_rate=[(0, 0.95), (60, after)]) for i, *_, after in plan}
    rl_series = {i: series(eval__kl_safety=[(n, kl)]) for i, _, n, kl, _ in plan}
    return fr.gather(finetune, rl, ft_series, rl_series).pipelines


def test_any_baseline_present_can_trace_the_frontier_the_others_become_settings():
    pipelines = two_baselines()
    assert fr.baselines(pipelines) == ["grpo", "dr_grpo"] and fr.default_baseline(pipelines) == "grpo"
    assert fr.default_baseline([p for p in pipelines if p.result.method != "grpo"]) == "dr_grpo"  # no GRPO: next
    assert fr.default_baseline([p for p in pipelines if p.result.method == "frpo"]) == "grpo"  # none: say so
    points = fr.points_frame(pipelines, "refusal_after_finetune", "dr_grpo")
    assert points["setting"].tolist() == [
        "Dr. GRPO (steps 60)", "Dr. GRPO (steps 180)", "GRPO (steps 60)", "GRPO (steps 180)", "FRPO λ=0.5",
    ]  # fmt: skip
    assert fr.baseline_budgets(pipelines, "refusal_after_finetune", "dr_grpo") == ["steps 60", "steps 180"]
    frontier, others = fr.compare_points(pipelines, "refusal_after_finetune", "dr_grpo")
    assert frontier == {"steps 60": [(0.35, 0.5)], "steps 180": [(0.75, 0.62)]}
    assert set(others) == {"GRPO (steps 60)", "GRPO (steps 180)", "FRPO λ=0.5"}
    grpo_points = fr.points_frame(pipelines, "refusal_after_finetune")
    assert grpo_points["setting"].tolist()[:2] == ["GRPO (steps 60)", "GRPO (steps 180)"]  # the default is GRPO's


def test_a_pinned_setting_or_run_is_the_point_every_setting_is_read_against():
    points = fr.points_frame(two_baselines(), "drop")  # lower is more robust
    assert fr.pinned_point(points, None) is None and fr.pinned_point(points, "nothing of this selection") is None
    pinned = fr.pinned_point(points, "FRPO λ=0.5")
    assert pinned == fr.Pinned("FRPO λ=0.5", 0.5, pytest.approx(0.95 - 0.65))
    by_run = fr.pinned_point(points, "d60-ft")
    assert by_run == fr.pinned_point(points, "d60")  # the fine-tuning run or its RL parent: the same pipeline
    assert by_run.label == "Dr. GRPO (steps 60), seed 0 (d60-ft)" and (by_run.kl, by_run.value) == (
        0.35,
        pytest.approx(0.45),
    )
    options = fr.reference_options(points)
    assert options["FRPO λ=0.5"] == "FRPO λ=0.5 (mean over seeds)" and options["f-ft"] == "FRPO λ=0.5, seed 0 (f-ft)"
    table = fr.against_reference(points, pinned, fr.measure_named("drop")).set_index("setting")
    assert table.loc["FRPO λ=0.5", "more robust than the reference by"] == pytest.approx(0.0)
    # GRPO at 60 steps dropped 0.55 against FRPO's 0.30: less robust by 0.25, at 0.2 less KL
    assert table.loc["GRPO (steps 60)", "more robust than the reference by"] == pytest.approx(-0.25)
    assert table.loc["GRPO (steps 60)", "kl_moved − reference"] == pytest.approx(-0.2)
    export = fr.export_frame(points, None, fr.measure_named("drop"), pinned=pinned)
    assert export[export["row"] == "reference"][["setting", "kl_moved", "drop"]].to_numpy().tolist() == [
        ["FRPO λ=0.5", 0.5, pytest.approx(0.3)]
    ]


# --- the page -------------------------------------------------------------------------------------------------------


def frpo_pipeline(api, sweep: str, *, lamb: float) -> tuple[str, str]:
    """(RL run, fine-tuning run) of one FRPO λ=`lamb` pipeline of the seed's `sweep`, as the API lists them."""
    jobs = Client(api.url, api.seeded.read_key).get_sweep(api.seeded.sweeps[sweep])["jobs"]
    rl = next(j for j in jobs if j["kind"] == "train" and j["tags"].get("lamb") == lamb)
    ft = next(j for j in jobs if j.get("parent_id") == rl["id"])
    return str(rl["id"]), str(ft["id"])


def trace(fig: dict, name: str) -> dict:
    return next(t for t in fig["data"] if t["name"] == name)


@integration
@pytest.mark.usefixtures("fresh_cache")
def test_frontier_page_draws_grpos_frontier_and_a_verdict_per_lambda(frontier_api, use_api):
    use_api(frontier_api.url, frontier_api.seeded.read_key)
    sweep = frontier_api.seeded.sweeps["frontier"]
    at = run("frontier", sweep=sweep)
    assert not at.error and not at.warning
    assert at.title[0].value == "Robustness against the KL moved in RL"
    assert "15 finished pipelines (RL → fine-tuning) in this selection." in texts(at.caption)
    [fig] = figures(at)
    assert fig["layout"]["xaxis"]["title"]["text"].startswith("KL moved during RL")
    assert fig["layout"]["yaxis"]["title"]["text"] == "refusal rate after fine-tuning (higher is more robust)"
    grpo, frpo = frontier_api.seeded.points("frontier")
    curve = trace(fig, "GRPO frontier (best over its budgets)")
    assert list(zip(array(curve["x"]), array(curve["y"]), strict=True)) == compare(grpo, frpo).curve
    grpo_runs = trace(fig, "GRPO runs (one per seed)")
    assert len(array(grpo_runs["x"])) == 3 and grpo_runs["marker"]["opacity"] < 0.5  # one budget's seeds, faint
    assert sum(t["name"] == "GRPO budgets (mean over seeds)" for t in fig["data"]) == 3
    above = trace(fig, "FRPO λ=0.5")
    assert array(above["x"]) == pytest.approx([0.5]) and array(above["y"]) == pytest.approx([0.65])
    assert above["error_x"]["visible"] and above["error_y"]["visible"]  # the seed spread, both ways
    frpo_runs = trace(fig, "FRPO λ=0.5 runs")
    assert "RL run %{customdata[2]} → fine-tuning %{customdata[3]}" in frpo_runs["hovertemplate"]
    assert {row[1] for row in frpo_runs["customdata"]} == {0, 1, 2}  # seeds
    shaded = [s for s in fig["layout"]["shapes"] if s["type"] == "rect"]
    assert shaded[-1]["x0"] == pytest.approx(0.71) and shaded[-1]["x1"] > 0.9  # beyond GRPO's largest run
    assert shaded[0]["x1"] == pytest.approx(0.29)  # and below its smallest
    assert [a["text"] for a in fig["layout"]["annotations"]] == ["outside GRPO's range"]

    verdicts = texts(at.markdown)
    outside = compare(grpo, frpo).verdicts[1].sentence
    assert outside.startswith("FRPO λ=2: no gap to GRPO's frontier without extrapolating (0 of 3 seeds (0%) inside")
    assert outside.endswith("further than any GRPO point) → beyond GRPO's reach (0% of seeds inside its KL range).")
    assert outside in verdicts and ABOVE in verdicts
    assert "3 of 3 seeds (100%) inside GRPO's KL range" in verdicts and "→ more robust." in verdicts
    table = at.dataframe[0].value
    assert table["label"].tolist()[0] == "more robust" and table["seeds"].tolist() == [3, 3]
    pdf = ["Download PDF"] if export.chrome() else []  # drawn by the host's Chrome, where there is one
    assert [b.proto.label for b in at.get("download_button")] == ["Download CSV", *pdf, "Download verdicts (CSV)"]
    links = {link.proto.label: link.proto for link in at.get("page_link")}
    assert links["The same runs on Compare"].query_string == f"sweep={sweep}"


@integration
@pytest.mark.usefixtures("fresh_cache")
def test_frontier_measure_follows_the_sidebar_into_the_url(frontier_api, use_api):
    use_api(frontier_api.url, frontier_api.seeded.read_key)
    at = run("frontier", sweep=frontier_api.seeded.sweeps["frontier"], measure="drop")
    assert at.sidebar.selectbox(key="frontier_measure").value == "drop"
    [fig] = figures(at)
    assert fig["layout"]["yaxis"]["title"]["text"] == "drop in refusal rate during fine-tuning (lower is more robust)"
    assert array(trace(fig, "FRPO λ=0.5")["y"]) == pytest.approx([0.95 - 0.65])
    assert "FRPO λ=0.5: Δ = +0.151 in drop in refusal rate" in texts(at.markdown)  # lower drop = more robust
    assert "→ more robust." in texts(at.markdown)
    at.sidebar.selectbox(key="frontier_measure").select("strongreject_after_finetune").run()
    assert at.query_params["measure"] == "strongreject_after_finetune"
    assert "in StrongREJECT score after fine-tuning" in texts(at.markdown)
    at.sidebar.selectbox(key="frontier_measure").select("refusal_after_finetune").run()
    assert "measure" not in at.query_params  # the default is left out of the link


@integration
@pytest.mark.usefixtures("fresh_cache")
def test_frontier_page_explains_what_is_missing(frontier_api, use_api):
    use_api(frontier_api.url, frontier_api.seeded.read_key)
    sweeps = frontier_api.seeded.sweeps
    at = run("frontier", sweep=sweeps["no-eval"])
    assert "The KL moved during RL was not measured" in texts(at.info) and "need `eval` set" in texts(at.info)
    assert not figures(at)
    at = run("frontier", sweep=sweeps["frpo-only"])
    assert "No GRPO budgets" in texts(at.info) and "`grpo_budgets`" in texts(at.info)
    assert "`toy-frontier`" in texts(at.info)
    assert len(figures(at)) == 1  # FRPO's points are still drawn, without a verdict
    at = run("frontier", sweep=sweeps["one-budget"])
    assert "Only one GRPO budget" in texts(at.warning)
    assert "FRPO λ=2: no gap to GRPO's frontier without extrapolating" in texts(at.markdown)


@integration
@pytest.mark.usefixtures("fresh_cache")
def test_compare_and_sweep_link_to_the_frontier_with_their_selection(live, use_api):
    use_api(live.url, live.seeded.read_key)
    sweep = live.seeded.sweep_id

    def frontier_link(at) -> str:
        [link] = [link.proto for link in at.get("page_link") if "frontier" in link.proto.page]
        return link.query_string

    assert frontier_link(run(sweep=sweep)) == f"sweep={sweep}"
    assert frontier_link(run("sweep", sweep=sweep)) == f"sweep={sweep}"
    runs = live.seeded.finetune_ids()[:2]
    assert frontier_link(run(runs=",".join(runs))) == f"runs={'%2C'.join(runs)}"
    at = run("frontier", runs=",".join(runs))
    assert "2 finished pipelines" in texts(at.caption)
    assert "The KL moved during RL was not measured" in texts(at.info)  # this seed's RL runs have no eval


@integration
@pytest.mark.usefixtures("fresh_cache")
def test_frontier_is_traced_by_the_baseline_picked_in_the_sidebar(frontier_api, use_api):
    use_api(frontier_api.url, frontier_api.seeded.read_key)
    at = run("frontier", sweep=frontier_api.seeded.sweeps["baselines"])
    picker = at.sidebar.selectbox(key="frontier_baseline")
    assert picker.options == ["GRPO", "Dr. GRPO"] and picker.value == "grpo"
    assert "GRPO frontier (best over its budgets)" in {t["name"] for t in figures(at)[0]["data"]}
    assert "Dr. GRPO (steps 60): Δ =" in texts(at.markdown)  # the other baseline is judged like FRPO
    picker.set_value("dr_grpo").run()
    assert at.query_params["baseline"] == "dr_grpo"
    [fig] = figures(at)
    grpo, others = frontier_api.seeded.points("baselines", "dr_grpo")
    expected = compare(grpo, others, reference="Dr. GRPO")
    curve = trace(fig, "Dr. GRPO frontier (best over its budgets)")
    assert list(zip(array(curve["x"]), array(curve["y"]), strict=True)) == expected.curve
    assert [x for x, _ in expected.curve][-1] == pytest.approx(FRONTIER_DR_GRPO[180][0] + 0.01)
    assert sum(t["name"] == "Dr. GRPO budgets (mean over seeds)" for t in fig["data"]) == 3
    assert {"GRPO (steps 60)", "GRPO (steps 180)", "FRPO λ=0.5"} <= {t["name"] for t in fig["data"]}
    assert at.dataframe[0].value["setting"].tolist() == list(others)
    assert "against Dr. GRPO's frontier" in texts(at.markdown)
    shared = run("frontier", sweep=frontier_api.seeded.sweeps["baselines"], baseline="dr_grpo")
    assert shared.sidebar.selectbox(key="frontier_baseline").value == "dr_grpo"  # a shared link keeps it


@integration
@pytest.mark.usefixtures("fresh_cache")
def test_frontier_marks_a_pinned_reference_and_reads_every_setting_against_it(frontier_api, use_api):
    use_api(frontier_api.url, frontier_api.seeded.read_key)
    at = run("frontier", sweep=frontier_api.seeded.sweeps["frontier"], ref="FRPO λ=0.5")
    assert at.sidebar.selectbox(key="frontier_ref").value == "FRPO λ=0.5"
    [fig] = figures(at)
    star = trace(fig, "FRPO λ=0.5 (reference)")
    assert array(star["x"]) == pytest.approx([0.5]) and array(star["y"]) == pytest.approx([0.65])
    assert star["marker"]["symbol"] == "star-open"
    crosshairs = [s for s in fig["layout"]["shapes"] if s["type"] == "line"]
    assert len(crosshairs) == 2 and crosshairs[0]["line"]["dash"] == "dot"
    assert "Against the reference: FRPO λ=0.5" in [h.value for h in at.subheader]
    against = at.dataframe[0].value.set_index("setting")
    assert against.loc["FRPO λ=2", "kl_moved − reference"] == pytest.approx(0.4)
    assert against.loc["FRPO λ=2", "more robust than the reference by"] == pytest.approx(-0.05)
    assert at.dataframe[1].value["label"].tolist()[0] == "more robust"  # the verdicts are still GRPO's frontier's

    rl_run, ft_run = frpo_pipeline(frontier_api, "frontier", lamb=2.0)
    at.sidebar.selectbox(key="frontier_ref").set_value(ft_run).run()
    assert at.query_params["ref"] == ft_run
    [star] = [t for t in figures(at)[0]["data"] if t["name"].endswith("(reference)")]
    assert star["name"].startswith("FRPO λ=2, seed ") and ft_run[:8] in star["name"]
    assert run("frontier", sweep=frontier_api.seeded.sweeps["frontier"], ref=rl_run).subheader  # its RL run too
    at.sidebar.selectbox(key="frontier_ref").set_value("").run()
    assert "ref" not in at.query_params and not any(t["name"].endswith("(reference)") for t in figures(at)[0]["data"])
