"""Run: one run in full — training curves, the spec it ran, where it came from and what came of it, its files.

`?run=<id>` selects it.
"""

from __future__ import annotations

import fnmatch

import pandas as pd
import streamlit as st

from dashboard import charts, reads, ui
from dashboard.client import ApiConfig
from frpo_client import Json

INDENT = "\u2003\u2003"  # em spaces: leading plain spaces would turn a label into a markdown code block
# (panel title, key patterns): what a person looks at first in an RL or fine-tuning run.
PANELS: list[tuple[str, list[str]]] = [
    ("reward per function", ["reward", "rewards/*/mean"]),
    ("math: share of sampled answers right, and with one boxed answer", ["math/accuracy", "math/format"]),
    ("robust reward (worst case in the KL ball)", ["robust_reward"]),
    ("KL to the reference (nats)", ["kl"]),
    ("entropy (nats per token)", ["entropy"]),
    ("loss", ["loss"]),
    ("completion length (tokens)", ["completions/mean_length"]),
    ("refusal rate (0–1)", ["eval/refusal_rate", "eval/refusal_rate_normal"]),
    ("KL to the starting model (nats per sequence)", ["eval/kl_safety", "eval/kl_normal"]),
    ("StrongREJECT score (0–1)", ["eval/strongreject"]),
    ("reward on evaluation prompts", ["eval/reward_normal", "eval/reward_safety"]),
]


def panels_for(keys: list[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The panels this run has data for (patterns expanded to its keys), and the titles of those it has none for."""
    present, missing = [], []
    for title, patterns in PANELS:
        matched = [k for pattern in patterns for k in sorted(keys) if fnmatch.fnmatchcase(k, pattern)]
        if matched:
            present.append((title, list(dict.fromkeys(matched))))
        else:
            missing.append(title)
    return present, missing


def _choose_run(config: ApiConfig) -> str | None:
    recent = reads.jobs(config.url, config.key, limit=200)
    run_id = ui.pick("Run", {str(j["id"]): ui.run_label(j) for j in recent}, param="run", key="run_pick")
    if run_id is not None:
        ui.set_query(run=run_id)
    return run_id


def lineage(config: ApiConfig, job: Json) -> None:
    """train → finetune → evaluate: the run's ancestors and descendants, each a link to its own page."""
    chain = [job]
    while chain[0].get("parent_id") and len(chain) < 10:
        chain.insert(0, reads.job(config.url, config.key, str(chain[0]["parent_id"])))
    below: list[tuple[int, Json]] = []
    frontier = [(1, job)]
    while frontier and len(below) < 50:
        depth, node = frontier.pop(0)
        for child in reads.children(config.url, config.key, str(node["id"])):
            below.append((depth, child))
            frontier.append((depth + 1, child))
    st.subheader("Lineage")
    st.caption("Where this run started from, and the runs that started from it (train → finetune → evaluate).")
    for depth, node in enumerate(chain):
        prefix = f"{INDENT * depth}{'↳ ' if depth else ''}"
        text = f"{node['kind']}: {ui.run_label(node)} — {node['status']}"
        if node["id"] == job["id"]:
            st.markdown(f"{prefix}**{text} (this run)**")
        else:
            st.page_link("views/run.py", label=prefix + text, query_params={"run": str(node["id"])})
    offset = len(chain) - 1
    for depth, node in below:
        label = f"{INDENT * (offset + depth)}↳ {node['kind']}: {ui.run_label(node)} — {node['status']}"
        st.page_link("views/run.py", label=label, query_params={"run": str(node["id"])})
    if len(chain) == 1 and not below:
        st.caption("No parent and no children yet.")


def curves(config: ApiConfig, job: Json) -> None:
    st.subheader("Training curves")
    keys = reads.metric_keys(config.url, config.key, str(job["id"]))
    if not keys:
        st.info("No metrics logged yet." if job["status"] in ("queued", "running") else "This run logged no metrics.")
        return
    present, missing = panels_for(keys)
    shown = {k for _, ks in present for k in ks}
    extra = st.multiselect("More series", [k for k in keys if k not in shown], key="run_extra_keys")
    if extra:
        present.append(("more series", extra))
    if present:
        wanted = tuple(k for _, ks in present for k in ks)
        series = reads.series(config.url, config.key, (str(job["id"]),), wanted, 2000)[str(job["id"])]
        fig = charts.run_curves_figure(series, present, title=f"Training curves of {ui.run_label(job)}")
        frame = pd.DataFrame(
            [
                {"key": k, "step": s, "value": v}
                for k, one in series.items()
                for s, v in zip(one["steps"], one["values"], strict=True)
            ]
        )
        ui.chart(fig, f"run {ui.short_id(job['id'])} curves", frame, key="run-curves")
    if missing:
        st.caption("Not measured in this run: " + "; ".join(missing) + ".")


def render() -> None:
    st.title("Run")
    config = ui.api_config()
    run_id = _choose_run(config)
    if run_id is None:
        st.info("**No runs yet.** Submit one on the **Jobs** page; its curves, spec and lineage appear here.")
        return
    job = reads.job(config.url, config.key, run_id)
    cols = st.columns(5)
    cols[0].metric("status", job["status"])
    cols[1].metric("kind", job["kind"])
    cols[2].metric("progress", f"{100 * float(job.get('progress') or 0):.0f}%")
    cols[3].metric("ETA", ui.fmt_eta(job.get("eta_seconds")) or "—")
    cols[4].metric("attempts", job.get("attempts", 0))
    if job.get("error"):
        st.error(f"This run failed: {job['error']}")
    curves(config, job)
    lineage(config, job)
    left, right = st.columns(2)
    with left:
        st.subheader("Spec")
        st.caption("The full spec, defaults filled in: enough to rerun it (`POST /api/v1/jobs`).")
        st.json(job["spec"], expanded=False)
        st.caption("Tags: " + ", ".join(f"{k}={v}" for k, v in (job.get("tags") or {}).items()))
    with right:
        st.subheader("Artifacts")
        files = reads.artifacts(config.url, config.key, run_id)
        if files:
            st.dataframe(
                pd.DataFrame(files)[["kind", "path", "size_bytes", "step", "sha256", "created_at"]],
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption("No artifacts recorded yet.")
    st.page_link("views/jobs.py", label="Events, cancel and retry on the Jobs page", query_params={"job": run_id})
    if job["kind"] == "evaluate" and (job.get("tags") or {}).get("benchmarks"):
        ui.view_link("capability", {"runs": run_id})  # its pipeline's other evaluation comes along


if __name__ == "__main__":
    ui.run_page(render)
