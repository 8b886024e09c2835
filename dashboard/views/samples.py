"""Samples: the judged answers behind a refusal rate, filtered by verdict, and compared on the same prompts between
two steps of a run or two runs.

The view lives in the URL: `/samples?run=<id>&step=40&set=harmful&verdict=answered&vs=<id>&vs_step=0`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import reads, ui
from dashboard.client import ApiConfig
from frpo_client import Json

SETS = ("harmful", "harmless")
VERDICTS = {"": "any verdict", "refused": "refused", "answered": "answered"}
EMPTY = (
    "**No samples for this run.** Runs evaluated with `eval` set keep every judged answer (prompt, answer, judge, "
    "verdict) at each evaluation step; this run kept none (an older run, or one without a safety evaluation)."
)


def _int_param(name: str) -> int | None:
    value = ui.query_value(name)
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def pick_step(config: ApiConfig, run_id: str, *, label: str, param: str, key: str, latest: bool) -> int | None:
    steps = reads.sample_steps(config.url, config.key, run_id)
    if not steps:
        return None
    wanted = _int_param(param)
    index = steps.index(wanted) if wanted in steps else (len(steps) - 1 if latest else 0)
    return st.sidebar.selectbox(label, steps, index=index, key=key)


def sample_frame(samples: list[Json]) -> pd.DataFrame:
    """One row per judged answer, keyed by the prompt's hash (the same prompt in any run or step)."""
    rows = [
        {
            "prompt_sha256": s["prompt_sha256"],
            "prompt id": s["prompt_id"],
            "prompt": s["prompt"]
            if s["prompt"] is not None
            else f"(text not stored; sha256 {s['prompt_sha256'][:12]}…)",
            "sample": s["sample_index"],
            "answer": s["answer"],
            "verdict": s["verdict"],
            "score": s["score"],
            "KL": s["kl"],
            "judge": f"{s['judge']} {s['judge_version']}",
        }
        for s in samples
    ]
    columns = ["prompt_sha256", "prompt id", "prompt", "sample", "answer", "verdict", "score", "KL", "judge"]
    return pd.DataFrame(rows, columns=columns)


def side_by_side(left: pd.DataFrame, right: pd.DataFrame, verdict: str) -> pd.DataFrame:
    """The two sides' answers to the same prompts (matched by hash and sample), `verdict` filtering the left side;
    prompts only one side evaluated are left out."""
    keep = ["prompt_sha256", "sample", "prompt", "answer", "verdict"]
    joined = left[keep].merge(right[keep[:2] + keep[3:]], on=["prompt_sha256", "sample"], suffixes=("", " (vs)"))
    if verdict:
        joined = joined[joined["verdict"] == verdict]
    joined["changed"] = joined["verdict"] != joined["verdict (vs)"]
    return joined.drop(columns=["prompt_sha256"])


def render() -> None:
    st.title("Samples: the answers behind a rate")
    config = ui.api_config()
    candidates = reads.recent_runs(config.url, config.key, ("finetune", "train", "evaluate"))
    labels = {str(j["id"]): ui.run_label(j) for j in candidates}
    run_id = ui.pick("Run", labels, param="run", key="samples_run", where=st.sidebar)
    if run_id is None:
        st.info(EMPTY)
        return
    step = pick_step(config, run_id, label="Step", param="step", key="samples_step", latest=True)
    prompt_set = st.sidebar.radio(
        "Prompts", SETS, index=SETS.index(ui.query_value("set")) if ui.query_value("set") in SETS else 0,
        key="samples_set", horizontal=True,
    )  # fmt: skip
    verdicts = list(VERDICTS)
    verdict = st.sidebar.radio(
        "Verdict", verdicts, index=verdicts.index(ui.query_value("verdict") or ""), format_func=VERDICTS.get,
        key="samples_verdict",
    )  # fmt: skip
    vs_labels = {"": "this run, at another step", **labels}
    vs = ui.pick("Compare with (same prompts)", vs_labels, param="vs", key="samples_vs", where=st.sidebar) or ""
    vs_run = vs or run_id
    vs_step = pick_step(config, vs_run, label="… at step", param="vs_step", key="samples_vs_step", latest=False)
    ui.set_query(
        run=run_id,
        step=None if step is None else str(step),
        set=prompt_set,
        verdict=verdict or None,
        vs=vs or None,
        vs_step=None if vs_step is None else str(vs_step),
    )
    if step is None:
        st.info(EMPTY)
        return
    mine = sample_frame(reads.samples(config.url, config.key, run_id, step, prompt_set))
    st.caption(
        f"{labels.get(run_id, run_id)} at step {step}: {len(mine)} judged answers to {prompt_set} prompts, "
        f"{int((mine['verdict'] == 'refused').sum())} refused."
    )
    comparing = vs_step is not None and (vs or vs_step != step)
    if comparing:
        theirs = sample_frame(reads.samples(config.url, config.key, vs_run, vs_step, prompt_set))
        shown = side_by_side(mine, theirs, verdict)
        other = labels.get(vs_run, vs_run) if vs else "the same run"
        st.subheader(f"Against {other} at step {vs_step}")
        st.caption(f"{int(shown['changed'].sum())} of {len(shown)} prompts changed verdict.")
        ui.table(shown, f"samples {run_id[:8]} step {step} vs {vs_run[:8]} step {vs_step}", key="samples-vs")
    else:
        shown = mine[mine["verdict"] == verdict] if verdict else mine
        ui.table(shown.drop(columns=["prompt_sha256"]), f"samples {run_id[:8]} step {step}", key="samples")


if __name__ == "__main__":
    ui.run_page(render)
