"""Cached reads for the pages: every API read goes through here, cached briefly with st.cache_data.

Short TTLs keep a page fresh while jobs run, and long enough that widget clicks (which rerun the whole script) do
not refetch twelve runs' series. Arguments are the API URL and key (strings, so the cache keys on them) and plain
tuples; the series of many runs are fetched concurrently (see `client.concurrently`).
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from dashboard import selection
from dashboard.client import ApiConfig, client_for, concurrently
from frpo_client import ApiError, Json

JOBS_TTL = 5  # s: job lists and states change while jobs run
SERIES_TTL = 15  # s: metric series grow slowly; a chart a few seconds behind is fine
SCHEMA_TTL = 300  # s: the spec schema changes only with a new API version
CHART_POINTS = 500  # per series: the API downsamples (MinMaxLTTB keeps extremes)
PICKED_KINDS = ("finetune", "train")  # what the run pickers offer, the first kind preselected


def _client(url: str, key: str):
    return client_for(ApiConfig(url=url, key=key))


@st.cache_data(ttl=JOBS_TTL, show_spinner=False)
def jobs(url: str, key: str, *, kind: str | None = None, status: str | None = None, limit: int = 200) -> list[Json]:
    """The newest `limit` jobs matching the filters."""
    return _client(url, key).all_jobs(kind=kind, status=status, max_items=limit)


@st.cache_data(ttl=JOBS_TTL, show_spinner=False)
def job_page(
    url: str, key: str, *, status: str | None, kind: str | None, method: str | None, limit: int, offset: int
) -> Json:
    return _client(url, key).list_jobs(status=status, kind=kind, method=method, limit=limit, offset=offset)


@st.cache_data(ttl=JOBS_TTL, show_spinner=False)
def job(url: str, key: str, job_id: str) -> Json:
    return _client(url, key).get_job(job_id)


@st.cache_data(ttl=JOBS_TTL, show_spinner=False)
def children(url: str, key: str, job_id: str) -> list[Json]:
    return _client(url, key).all_jobs(parent_id=job_id, max_items=400)


@st.cache_data(ttl=JOBS_TTL, show_spinner=False)
def sweeps(url: str, key: str, limit: int = 100) -> list[Json]:
    return _client(url, key).list_sweeps(limit=limit)["items"]


def listed_sweeps(url: str, key: str) -> list[Json]:
    """The sweeps, newest first; none from an API without the sweep list (the pages then offer runs to pick)."""
    try:
        return sweeps(url, key)
    except ApiError as exc:
        if exc.status in (404, 405):
            return []
        raise


@st.cache_data(ttl=JOBS_TTL, show_spinner=False)
def runs_of(
    url: str, key: str, run_ids: tuple[str, ...] = (), sweep_id: str | None = None, evaluations: bool = False
) -> list[Json]:
    """A selection's runs closed along their lineage (see dashboard.selection), with `evaluations` their evaluation
    runs too. Picked runs are looked up in the recent-runs lists the pickers already hold, so twelve picked runs cost
    no request of their own."""
    kinds = (*selection.EVALUATE_KINDS, *PICKED_KINDS) if evaluations else PICKED_KINDS
    known = {str(j["id"]): j for j in recent_runs(url, key, kinds)} if run_ids else {}
    client = _client(url, key)
    return selection.collect(client, run_ids=run_ids, sweep_id=sweep_id, known=known, evaluations=evaluations)


def recent_runs(url: str, key: str, kinds: Sequence[str] = PICKED_KINDS) -> list[Json]:
    """The newest runs of each of `kinds` (what the run pickers offer)."""
    return [job for kind in kinds for job in jobs(url, key, kind=kind)]


@st.cache_data(ttl=SERIES_TTL, show_spinner=False)
def series(
    url: str, key: str, run_ids: tuple[str, ...], keys: tuple[str, ...], max_points: int = CHART_POINTS
) -> dict[str, dict[str, Json]]:
    """{run id: {key: series}} for many runs at once, one request per run, in parallel."""
    client = _client(url, key)
    fetched = concurrently(lambda run_id: client.metrics(run_id, keys, max_points), run_ids)
    return dict(zip(run_ids, fetched, strict=True))


@st.cache_data(ttl=SERIES_TTL, show_spinner=False)
def metric_keys(url: str, key: str, run_id: str) -> list[str]:
    return _client(url, key).metric_keys(run_id)


@st.cache_data(ttl=SERIES_TTL, show_spinner=False)
def sample_steps(url: str, key: str, run_id: str) -> list[int]:
    return _client(url, key).sample_steps(run_id)


@st.cache_data(ttl=SERIES_TTL, show_spinner=False)
def samples(url: str, key: str, run_id: str, step: int, prompt_set: str) -> list[Json]:
    """Every judged answer of one evaluation (a step, a prompt set), all pages."""
    return list(_client(url, key).all_samples(run_id, step=step, prompt_set=prompt_set))


@st.cache_data(ttl=JOBS_TTL, show_spinner=False)
def events(url: str, key: str, run_id: str) -> list[Json]:
    return _client(url, key).events(run_id, limit=1000)["items"]


@st.cache_data(ttl=SERIES_TTL, show_spinner=False)
def artifacts(url: str, key: str, run_id: str) -> list[Json]:
    return _client(url, key).artifacts(run_id)


@st.cache_data(ttl=SCHEMA_TTL, show_spinner=False)
def openapi(url: str, key: str) -> Json:
    return _client(url, key).openapi()


def ids(runs: Sequence[Json]) -> tuple[str, ...]:
    return tuple(str(r["id"]) for r in runs)
