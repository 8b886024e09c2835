"""What every page shares: the API connection (explained when missing), errors shown as messages, charts with CSV
and PNG, SVG or PDF export, the selection kept in the URL (and a pinned reference), and labels for runs."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import export, reads
from dashboard.aggregate import group_of
from dashboard.client import ApiConfig
from frpo_client import ApiError, Json

logger = logging.getLogger(__name__)

NO_KEY = (
    "**No API key.** The dashboard reads everything through the API with a read-scoped key. Create one with "
    "`frpo keys create --scope read` and start the dashboard with `FRPO_DASHBOARD_API_KEY=<key>` (or "
    "`FRPO_API_KEY`). The API it talks to is `{url}` (set `FRPO_API_URL` to change it)."
)


def api_config() -> ApiConfig:
    """The API to read from, from the environment; stops the page with an explanation when there is no key."""
    config = ApiConfig.from_env()
    if not config.key:
        st.error(NO_KEY.format(url=config.url))
        st.stop()
    return config


def show_error(error: ApiError, doing: str = "") -> None:
    prefix = f"Could not {doing}: " if doing else ""
    st.error(f"{prefix}{error}")


def run_page(render: Callable[[], None]) -> None:
    """Run a page; an API error or a bug ends it with a message on the page, never a traceback."""
    try:
        render()
    except ApiError as exc:
        show_error(exc, "load this page")
    except Exception as exc:  # a bug: say so in words, keep the traceback for the server log
        logger.exception("dashboard page failed")
        st.error(f"The dashboard hit an unexpected error ({type(exc).__name__}: {exc}). The server log has details.")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "chart"


IMAGE_FORMATS = {"png": "PNG (2× scale, for slides)", "svg": "SVG (vector, for papers)"}


def image_format_picker() -> None:
    """The sidebar's choice of what the charts' camera button saves; kept for the session, on every page."""
    st.sidebar.radio("Chart images", list(IMAGE_FORMATS), format_func=IMAGE_FORMATS.get, key="image_format")


def image_config(name: str) -> dict[str, Any]:
    """Plotly's modebar camera button saves the chart under this name, as PNG (2× for slides) or SVG (vector, drawn
    by plotly.js in the browser, nothing to install), as picked in the sidebar."""
    image = st.session_state.get("image_format", "png")
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": image, "filename": slug(name), "scale": 2 if image == "png" else 1},
    }


def chart(fig: go.Figure, name: str, data: pd.DataFrame, *, key: str, note: str = "") -> None:
    """A chart, and its numbers as CSV; PNG or SVG through the chart's camera button (top right), PDF drawn on the
    server when its button is clicked (a second or two: deferred, so no page pays for a PDF nobody asked for)."""
    st.plotly_chart(fig, config=image_config(name), key=f"chart-{key}", width="stretch")
    left, middle, right = st.columns([1, 1, 3])
    left.download_button(
        "Download CSV",
        data.to_csv(index=False).encode(),
        file_name=f"{slug(name)}.csv",
        mime="text/csv",
        key=f"csv-{key}",
        icon=":material/download:",
    )
    pdf = ""
    if export.chrome():
        middle.download_button(
            "Download PDF",
            lambda: export.pdf(fig),
            file_name=f"{slug(name)}.pdf",
            mime="application/pdf",
            key=f"pdf-{key}",
            icon=":material/picture_as_pdf:",
            on_click="ignore",
        )
    else:
        pdf = f" {export.NO_CHROME}."
    image = st.session_state.get("image_format", "png").upper()
    right.caption(f"{image}: the camera icon at the chart's top right (PNG or SVG: sidebar).{pdf} {note}".strip())


def table(
    shown: pd.DataFrame,
    name: str,
    *,
    key: str,
    export: pd.DataFrame | None = None,
    column_config: Mapping[str, Any] | None = None,
) -> None:
    """A table, and its numbers as CSV: `export` where the table shows text made of numbers ("0.41 ± 0.02")."""
    st.dataframe(shown, hide_index=True, width="stretch", column_config=column_config)
    st.download_button(
        "Download CSV",
        (shown if export is None else export).to_csv(index=False).encode(),
        file_name=f"{slug(name)}.csv",
        mime="text/csv",
        key=f"csv-{key}",
        icon=":material/download:",
    )


# --- the selection in the URL ---------------------------------------------------------------------------------------


def query_value(name: str) -> str | None:
    value = st.query_params.get(name)
    return value.strip() or None if isinstance(value, str) else None


def query_list(name: str) -> list[str]:
    value = query_value(name)
    return [part for part in (value or "").split(",") if part.strip()] if value else []


def set_query(**values: str | Sequence[str] | None) -> None:
    """Write the view's selection into the URL (None removes a parameter) so the view can be shared."""
    for name, value in values.items():
        if value is None or value == "" or (not isinstance(value, str) and not value):
            if name in st.query_params:
                del st.query_params[name]
            continue
        text = value if isinstance(value, str) else ",".join(value)
        if st.query_params.get(name) != text:
            st.query_params[name] = text


def pick(label: str, labels: Mapping[str, str], *, param: str, key: str, where: Any = st) -> str | None:
    """A selectbox over `labels` (id → label) that starts at the URL's `param`: kept even when it is not listed (a
    shared link may name an old run), else the first. None when there is nothing to pick."""
    url_value = query_value(param)
    options = list(labels)
    if url_value and url_value not in labels:
        options.insert(0, url_value)
    if not options:
        return None
    return where.selectbox(
        label,
        options,
        index=options.index(url_value) if url_value in options else 0,
        format_func=lambda i: labels.get(i, i),
        key=key,
    )


def pin_reference(
    options: Mapping[str, str], *, key: str, unpinned: str, label: str = "Reference", help: str | None = None
) -> str | None:
    """The sidebar's pinned reference (`ref=` in the URL, so a shared link keeps it): one of `options` (value →
    label: a group, a setting or a run), or None for the page's own baseline (`unpinned` names it). A pin the
    selection no longer holds is dropped."""
    pinned = query_value("ref")
    choices = ["", *options]
    chosen = st.sidebar.selectbox(
        label,
        choices,
        index=choices.index(pinned) if pinned in choices else 0,
        format_func=lambda value: options.get(value, unpinned),
        key=key,
        help=help,
    )
    set_query(ref=chosen or None)
    return chosen or None


def sweep_labels(sweeps: Sequence[Json]) -> dict[str, str]:
    return {str(s["id"]): f"{s['name']} · {s.get('job_count', '?')} jobs · {short_id(s['id'])}" for s in sweeps}


def choose_selection(
    config: ApiConfig,
    *,
    prefix: str,
    title: str,
    recent: int = 24,
    kinds: Sequence[str] = reads.PICKED_KINDS,
    runs_help: str = "Fine-tuning runs, or RL runs (their fine-tuning runs come along).",
) -> tuple[str, tuple[str, ...], str | None]:
    """The sidebar's choice of a sweep or runs (`?sweep=` / `?runs=`): (mode, run ids, sweep id). The picker offers
    the newest runs of `kinds`, the `recent` newest of the first kind preselected. The caller writes the choice back
    to the URL with the rest of its view. Keys are `<prefix>_mode`, `<prefix>_sweep`, `<prefix>_runs`."""
    sidebar = st.sidebar
    url_runs, url_sweep = query_list("runs"), query_value("sweep")
    sweeps = reads.listed_sweeps(config.url, config.key) if not url_runs else []  # a link with runs needs no list
    modes = ["sweep", "runs"]
    mode_default = "runs" if url_runs or not (url_sweep or sweeps) else "sweep"
    mode = sidebar.radio(
        title,
        modes,
        index=modes.index(mode_default),
        format_func={"sweep": "a sweep", "runs": "runs I pick"}.get,
        horizontal=True,
        key=f"{prefix}_mode",
    )
    run_ids: tuple[str, ...] = ()
    sweep_id: str | None = None
    if mode == "sweep":
        sweeps = sweeps or reads.listed_sweeps(config.url, config.key)
        sweep_id = pick("Sweep", sweep_labels(sweeps), param="sweep", key=f"{prefix}_sweep", where=sidebar)
        if sweep_id is None:
            sidebar.info("No sweeps yet: pick runs instead, or submit a sweep on the Jobs page.")
    else:
        candidates = reads.recent_runs(config.url, config.key, kinds)
        labels = {str(j["id"]): run_label(j) for j in candidates}
        for run_id in url_runs:
            if run_id not in labels:
                labels[run_id] = run_id
        newest = [str(j["id"]) for j in candidates if j["kind"] == kinds[0]][:recent]
        run_ids = tuple(
            sidebar.multiselect(
                "Runs",
                list(labels),
                default=url_runs or newest,
                format_func=labels.get,
                key=f"{prefix}_runs",
                help=runs_help,
            )
        )
    return mode, run_ids, sweep_id


# Views of a selection that other pages link to: page, label, icon, what it shows.
VIEWS = {
    "frontier": (
        "views/frontier.py",
        "Frontier view of these runs",
        ":material/insights:",
        "Robustness after fine-tuning against the KL each RL run moved, against GRPO's frontier over budgets.",
    ),
    "capability": (
        "views/capability.py",
        "Benchmarks of these runs",
        ":material/fact_check:",
        "Capability benchmarks (MATH500, MBPP+, HumanEval+, …) before and after fine-tuning, against λ.",
    ),
}


def view_link(view: str, query: Mapping[str, str | None], where: Any = st) -> None:
    """A link to another view (`VIEWS`) of the same selection."""
    page, label, icon, help_text = VIEWS[view]
    where.page_link(
        page,
        label=label,
        icon=icon,
        query_params={name: value for name, value in query.items() if value},
        help=help_text,
    )


def selection_query(mode: str, run_ids: Sequence[str], sweep_id: str | None) -> dict[str, str | None]:
    """The selection as URL parameters (for `set_query`, and for links to another view of the same runs)."""
    return {"sweep": sweep_id if mode == "sweep" else None, "runs": ",".join(run_ids) if mode == "runs" else None}


# --- labels ---------------------------------------------------------------------------------------------------------


def short_id(run_id: Any) -> str:
    return str(run_id)[:8]


def run_label(job: Mapping[str, Any]) -> str:
    """'FRPO λ=0.5 · seed 1 · finetune · 3f2a9c1e' — what a person recognises a run by."""
    tags = job.get("tags") or {}
    parts = [group_of(tags).label]
    if tags.get("seed") is not None:
        parts.append(f"seed {tags['seed']}")
    parts.append(str(job.get("kind", "?")))
    if job.get("name"):
        parts.append(str(job["name"]))
    parts.append(short_id(job.get("id")))
    return " · ".join(parts)


def fmt_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def jobs_table(jobs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Jobs as rows a person scans: what it is, its state, how far, how long to go."""
    frame = pd.DataFrame(
        [
            {
                "id": str(j["id"]),
                "run": run_label(j),
                "kind": j["kind"],
                "status": j["status"],
                "progress": float(j.get("progress") or 0.0),
                "ETA": fmt_eta(j.get("eta_seconds")),
                "created": j.get("created_at"),
                "finished": j.get("finished_at"),
                "error": (j.get("error") or "")[:200],
            }
            for j in jobs
        ],
        columns=["id", "run", "kind", "status", "progress", "ETA", "created", "finished", "error"],
    )
    for column in ("created", "finished"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame
