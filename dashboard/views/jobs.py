"""Jobs: submit a train / finetune / evaluate / pipeline / sweep, watch the list, and cancel, retry or read a job.

The submit form is generated from the API's own job-spec schema (OpenAPI), and the API validates what is sent: its
error names the field and the fix. Reading needs only the dashboard's read key; submitting, cancelling and retrying
need a key with the submit scope, entered in the sidebar for this browser session only (`?job=<id>` opens a job).
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import reads, specform, ui
from dashboard.client import ApiConfig, client_for
from frpo_client import ApiError, Json

REFRESH_S = 5  # the job list refreshes itself this often while any job is queued or running
STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]
KINDS = ["train", "finetune", "evaluate"]
PAGE = 50
SOURCE_FIELD = {"finetune": "parent_id", "evaluate": "run_id"}  # the run a finetune / evaluate starts from


def action_config(config: ApiConfig) -> ApiConfig:
    """The key used for submit / cancel / retry: one pasted in the sidebar (kept in this session only), else the
    dashboard's own key (a read key, which the API will refuse, and the page says so)."""
    pasted = st.sidebar.text_input(
        "API key for actions",
        type="password",
        key="jobs_action_key",
        help="Submitting, cancelling and retrying need a key with the submit scope (`frpo keys create --scope "
        "submit`). It is kept in this browser session only, never in the URL.",
    )
    return config.with_key(pasted.strip()) if pasted.strip() else config


def _forget_jobs() -> None:
    for fn in (reads.jobs, reads.job_page, reads.job, reads.children, reads.sweeps, reads.runs_of, reads.events):
        fn.clear()


# --- the list -------------------------------------------------------------------------------------------------------


def job_list(config: ApiConfig) -> list[Json]:
    """Filters, then the list; it reruns itself every few seconds while anything is queued or running."""
    cols = st.columns(3)
    status = cols[0].selectbox("Status", [None, *STATUSES], format_func=lambda s: s or "any", key="jobs_status")
    kind = cols[1].selectbox("Kind", [None, *KINDS], format_func=lambda s: s or "any", key="jobs_kind")
    method = cols[2].selectbox("Method", [None, "grpo", "frpo"], format_func=lambda s: s or "any", key="jobs_method")
    filters = dict(status=status, kind=kind, method=method, limit=PAGE, offset=0)
    first = reads.job_page(config.url, config.key, **filters)
    active = any(j["status"] in ("queued", "running") for j in first["items"])

    @st.fragment(run_every=REFRESH_S if active else None)
    def table() -> None:
        page = reads.job_page(config.url, config.key, **filters)
        if not page["items"]:
            st.info(
                "**No jobs match.** Submit one in the *Submit* tab; the smallest is a `train` job with the defaults "
                "(the tiny offline model trains in under a minute)."
                if not any((status, kind, method))
                else "No jobs match these filters."
            )
            return
        st.dataframe(
            ui.jobs_table(page["items"]),
            hide_index=True,
            width="stretch",
            column_config={
                "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
                "id": st.column_config.TextColumn("id", width="small"),
                "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm:ss"),
                "finished": st.column_config.DatetimeColumn("finished", format="YYYY-MM-DD HH:mm:ss"),
            },
        )
        note = f" Refreshing every {REFRESH_S} s while jobs run." if active else ""
        st.caption(f"Newest first: {len(page['items'])} of {page['total']}.{note}")

    table()
    return first["items"]


# --- one job --------------------------------------------------------------------------------------------------------


def job_detail(config: ApiConfig, actions: ApiConfig, listed: list[Json]) -> None:
    st.subheader("A job")
    job_id = ui.pick("Job", {str(j["id"]): ui.run_label(j) for j in listed}, param="job", key="jobs_pick")
    if job_id is None:
        st.caption("No job to show.")
        return
    ui.set_query(job=job_id)
    job = reads.job(config.url, config.key, job_id)
    cols = st.columns(4)
    cols[0].metric("status", job["status"] + (" (cancel requested)" if job.get("cancel_requested") else ""))
    cols[1].metric("progress", f"{100 * float(job.get('progress') or 0):.0f}%")
    cols[2].metric("ETA", ui.fmt_eta(job.get("eta_seconds")) or "—")
    cols[3].metric("attempts", job.get("attempts", 0))
    if job.get("error"):
        st.error(f"Error: {job['error']}")
    buttons = st.columns([1, 1, 4])
    can_cancel = job["status"] in ("queued", "running") and not job.get("cancel_requested")
    can_retry = job["status"] in ("failed", "cancelled")
    if buttons[0].button("Cancel", key="jobs_cancel", disabled=not can_cancel, icon=":material/cancel:"):
        _act(lambda: client_for(actions).cancel_job(job_id), "cancel")
    if buttons[1].button("Retry", key="jobs_retry", disabled=not can_retry, icon=":material/replay:"):
        _act(lambda: client_for(actions).retry_job(job_id), "retry")
    buttons[2].page_link("views/run.py", label="Curves, spec and lineage on the Run page", query_params={"run": job_id})
    st.markdown("**Log (events)**")
    events = reads.events(config.url, config.key, job_id)
    if events:
        frame = pd.DataFrame(events)[["time", "level", "message", "data"]]
        frame["data"] = frame["data"].map(lambda d: json.dumps(d) if d else "")
        st.dataframe(frame, hide_index=True, width="stretch")
    else:
        st.caption("No events yet.")
    with st.expander("Spec"):
        st.json(job["spec"])


def _act(call, verb: str) -> None:
    try:
        result = call()
    except ApiError as exc:
        ui.show_error(exc, verb)
        return
    _forget_jobs()
    st.session_state["jobs_flash"] = f"{verb.capitalize()}: job {ui.short_id(result['id'])} is now {result['status']}."
    st.rerun()  # redraw the job with its new state; the message survives the rerun


# --- submit ---------------------------------------------------------------------------------------------------------


def submit_form(config: ApiConfig, actions: ApiConfig) -> None:
    st.markdown(
        "Pick a kind; the spec below is the API's own schema with every default filled in. Edit the JSON and "
        "submit: the API checks it and, if something is wrong, says which field and how to fix it."
    )
    openapi = reads.openapi(config.url, config.key)
    kind = st.selectbox("Kind", list(specform.KINDS), key="submit_kind")
    chosen: dict[tuple[str, ...], str | None] = {}
    for path, choices in specform.preset_fields(openapi, kind):
        where = " · ".join(path[:-1]) or kind
        chosen[path] = st.selectbox(
            f"Preset ({where})",
            [None, *choices],
            format_func=lambda c: c or "(none: the defaults below)",
            key=f"preset_{kind}_{'.'.join(path)}",
            help="A named configuration from the API (e.g. the paper's); fields you add to the JSON override it.",
        )
    body = specform.body_for(openapi, kind, chosen)
    preset_name = "+".join(str(v) for v in chosen.values() if v)
    source = SOURCE_FIELD.get(kind)
    source_id = ""
    if source:
        done = reads.jobs(config.url, config.key, status="succeeded", limit=200)
        done = [j for j in done if j["kind"] in (("train",) if kind == "finetune" else ("train", "finetune"))]
        labels = {str(j["id"]): ui.run_label(j) for j in done}
        source_id = (
            st.selectbox(
                f"Start from ({source})",
                [None, *labels],
                format_func=lambda i: labels.get(i, i) if i else "(choose a finished run)",
                key=f"source_{kind}",
                help="The succeeded run whose final model this job starts from.",
            )
            or ""
        )
        if source_id:
            body[source] = source_id
    text = st.text_area(
        "Spec (JSON)", json.dumps(body, indent=2), height=420, key=f"spec_{kind}_{preset_name}_{source_id}"
    )
    with st.expander("Fields of this spec"):
        st.dataframe(pd.DataFrame(specform.field_rows(openapi, kind)), hide_index=True, width="stretch")
    if st.button("Submit", type="primary", key="submit_go", icon=":material/send:"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            st.error(f"The spec is not valid JSON: {exc}")
            return
        client = client_for(actions)
        try:
            result = client.submit_sweep(spec) if kind == "sweep" else client.submit_job(spec)
        except ApiError as exc:
            ui.show_error(exc, f"submit the {kind}")
            return
        _forget_jobs()
        if kind == "sweep":
            st.success(f"Sweep {result['name']} queued: {len(result['job_ids'])} jobs (id {result['id']}).")
        else:
            st.success(f"Queued: {result['kind']} job {result['id']}.")
            st.page_link("views/run.py", label="Open it on the Run page", query_params={"run": str(result["id"])})


def render() -> None:
    st.title("Jobs")
    config = ui.api_config()
    actions = action_config(config)
    if flash := st.session_state.pop("jobs_flash", None):
        st.success(flash)
    listing, submitting = st.tabs(["Job list", "Submit a job"])
    with listing:
        listed = job_list(config)
        job_detail(config, actions, listed)
    with submitting:
        submit_form(config, actions)


if __name__ == "__main__":
    ui.run_page(render)
