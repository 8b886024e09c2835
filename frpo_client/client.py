"""`Client`: typed calls to the frpo-lab REST API over one httpx connection pool.

One client for every caller (the CLI, the demo, the dashboard, a user's notebook), so a fix to how the API is
spoken to lands everywhere at once. Failures become `ApiError` with the API's own message and the fix it names:
a caller prints `str(error)` and a person knows what to do, instead of reading a traceback.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
TIMEOUT_S = 30.0
MAX_PAGE = 200  # the API's cap on `limit` for jobs and sweeps
MAX_EVENTS_PAGE = 1000  # ... and for events
FULL_RESOLUTION = 100_000  # the API's cap on `max_points`: below it, a series comes back whole
FINISHED = ("succeeded", "failed", "cancelled")

Json = dict[str, Any]


class ApiError(Exception):
    """A request that failed, in words a person can act on: the API's message, the fields it names, their fixes.

    `status` is the HTTP status (None when the API was not reached), `code` the API's error code."""

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, fields: Sequence[Json] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.fields = list(fields)

    def __str__(self) -> str:
        lines = [self.message]
        for field in self.fields:
            fix = f" Fix: {field['fix']}" if field.get("fix") else ""
            lines.append(f"{field.get('field', '?')}: {field.get('message', '')}.{fix}")
        return "\n".join(lines)


def error_from_response(response: httpx.Response, url: str, key_env: str) -> ApiError:
    """The API's error body (`{"error": {"code", "message", "fields"}}`) as an ApiError, with a hint for keys."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message, code, fields = str(error.get("message", "")), error.get("code"), error.get("fields") or []
    else:
        message, code, fields = f"HTTP {response.status_code}: {response.text[:300]}", None, []
    if response.status_code == 401:
        message += f" (API at {url}). Set {key_env} to a key made with `frpo keys create`."
    elif response.status_code == 403:
        message += ". Submitting, cancelling and retrying need a key with the 'submit' scope."
    return ApiError(message, status=response.status_code, code=code, fields=fields)


class Client:
    """One API, one key, one connection pool. Thread-safe (httpx.Client is), so callers may fetch many runs at once.

    `key_env` names the variable a person should set when the key is refused; it only shapes the error message."""

    def __init__(
        self,
        url: str = DEFAULT_API_URL,
        key: str = "",
        *,
        timeout: float = TIMEOUT_S,
        key_env: str = "FRPO_API_KEY",
        max_connections: int = 16,
    ) -> None:
        self.url = url.strip().rstrip("/")
        self.timeout = timeout
        self.key_env = key_env
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.Client(base_url=self.url + API_PREFIX, headers=headers, timeout=timeout, limits=limits)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Client:
        """FRPO_API_URL (default http://127.0.0.1:8000) and FRPO_API_KEY."""
        env = os.environ if environ is None else environ
        return cls(env.get("FRPO_API_URL") or DEFAULT_API_URL, (env.get("FRPO_API_KEY") or "").strip(), **options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer, or an ApiError saying why there is none."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=query, json=json, headers=headers)
        except httpx.TimeoutException as exc:
            raise ApiError(f"the API at {self.url} did not answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise ApiError(
                f"cannot reach the API at {self.url} ({type(exc).__name__}). "
                "Start it with `frpo serve` (or `docker compose up`), or point FRPO_API_URL at it."
            ) from exc
        if response.status_code >= 400:
            raise error_from_response(response, self.url, self.key_env)
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(f"the API at {self.url} answered {path} with something other than JSON") from exc

    def _post(self, path: str, json: Any = None) -> Json:
        """A POST that is safe to send twice: a fresh Idempotency-Key per call, so the API's answer is replayed
        rather than the work done again if a retry (by httpx or the caller) repeats it."""
        return self.request("POST", path, json=json, headers={"Idempotency-Key": uuid.uuid4().hex})

    # --- service ----------------------------------------------------------------------------------------------------

    def health(self) -> Json:
        return self.request("GET", "/healthz")

    def openapi(self) -> Json:
        """The API's OpenAPI document: the job-spec schemas (the dashboard's submit form is generated from them)."""
        return self.request("GET", "/openapi.json")

    def presets(self) -> list[Json]:
        """Every preset: {"name", "kind", "description", "values"}, what a spec's `preset` may name."""
        return self.request("GET", "/presets")["items"]

    # --- jobs -------------------------------------------------------------------------------------------------------

    def list_jobs(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        method: str | None = None,
        sweep_id: str | None = None,
        parent_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Json:
        """One page, newest first: {"items", "total", "limit", "offset"}."""
        params = dict(status=status, kind=kind, method=method, sweep_id=sweep_id, parent_id=parent_id)
        return self.request("GET", "/jobs", params={**params, "limit": limit, "offset": offset})

    def all_jobs(self, *, max_items: int = 10_000, **filters: str | None) -> list[Json]:
        """Every job matching `filters` (newest first), paging through the API, up to `max_items`."""
        items: list[Json] = []
        while len(items) < max_items:
            page = self.list_jobs(**filters, limit=min(MAX_PAGE, max_items - len(items)), offset=len(items))
            items += page["items"]
            if not page["items"] or len(items) >= page["total"]:
                break
        return items

    def get_job(self, job_id: str) -> Json:
        return self.request("GET", f"/jobs/{job_id}")

    def submit_job(self, spec: Json) -> Json:
        """Queue a job (or a pipeline: its first stage); the API answers with the job at once (202)."""
        return self._post("/jobs", spec)

    def cancel_job(self, job_id: str) -> Json:
        return self._post(f"/jobs/{job_id}/cancel")

    def retry_job(self, job_id: str) -> Json:
        return self._post(f"/jobs/{job_id}/retry")

    def wait(
        self,
        job_ids: str | Sequence[str],
        *,
        poll_s: float = 2.0,
        timeout_s: float | None = None,
        on_poll: Callable[[list[Json]], None] | None = None,
    ) -> list[Json]:
        """Poll until every job has ended; their final states, in the order given. `on_poll` sees each poll's states
        (a progress bar); `timeout_s` raises an ApiError naming the jobs still running."""
        ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            jobs = [self.get_job(job_id) for job_id in ids]
            if on_poll is not None:
                on_poll(jobs)
            running = [job["id"] for job in jobs if job["status"] not in FINISHED]
            if not running:
                return jobs
            if deadline is not None and time.monotonic() > deadline:
                raise ApiError(f"{len(running)} job(s) still running after {timeout_s:g} s, e.g. {running[0]}")
            time.sleep(poll_s)

    # --- runs -------------------------------------------------------------------------------------------------------

    def metrics(self, run_id: str, keys: Iterable[str] = (), max_points: int = 500) -> dict[str, Json]:
        """{key: {"steps", "values", "total_points"}}, downsampled by the API (extremes kept) for charts; a key never
        logged comes back empty. All of the run's keys when none are named."""
        joined = ",".join(keys)
        body = self.request("GET", f"/runs/{run_id}/metrics", params={"keys": joined or None, "max_points": max_points})
        return body["series"]

    def series(self, run_id: str, keys: Iterable[str] = ()) -> dict[str, list[tuple[int, float | None]]]:
        """Every point of a run's series, {key: [(step, value), ...]} (non-finite values as None): for analysis and
        export, where a downsampled chart series would be wrong. Refuses a series longer than the API returns whole."""
        found = self.metrics(run_id, keys, max_points=FULL_RESOLUTION)
        for key, body in found.items():
            if body["total_points"] > len(body["steps"]):
                raise ApiError(
                    f"run {run_id}'s {key!r} has {body['total_points']} points, more than the API returns whole "
                    f"({FULL_RESOLUTION}); read it from the database instead"
                )
        return {key: list(zip(body["steps"], body["values"], strict=True)) for key, body in found.items()}

    def metric_keys(self, run_id: str) -> list[str]:
        return self.request("GET", f"/runs/{run_id}/keys")["keys"]

    def events(self, run_id: str, after_id: int = 0, limit: int = MAX_EVENTS_PAGE) -> Json:
        """{"items", "next_after_id"}: events newer than `after_id`, oldest first (poll with next_after_id)."""
        return self.request("GET", f"/runs/{run_id}/events", params={"after_id": after_id, "limit": limit})

    def all_events(self, run_id: str) -> Iterator[Json]:
        """Every event of a run so far, oldest first."""
        after = 0
        while True:
            page = self.events(run_id, after_id=after)
            yield from page["items"]
            if len(page["items"]) < MAX_EVENTS_PAGE:
                return
            after = page["next_after_id"]

    def artifacts(self, run_id: str) -> list[Json]:
        return self.request("GET", f"/runs/{run_id}/artifacts")["items"]

    def samples(
        self,
        run_id: str,
        *,
        step: int | None = None,
        prompt_set: str | None = None,
        verdict: str | None = None,
        after_id: int = 0,
        limit: int = MAX_EVENTS_PAGE,
    ) -> Json:
        """{"items", "next_after_id"}: a page of the run's judged evaluation answers (prompt or its hash, answer,
        judge, verdict, score), filtered by step, prompt set (harmful, harmless) and verdict (refused, answered)."""
        params = {"step": step, "prompt_set": prompt_set, "verdict": verdict, "after_id": after_id, "limit": limit}
        return self.request("GET", f"/runs/{run_id}/samples", params=params)

    def all_samples(self, run_id: str, **filters: Any) -> Iterator[Json]:
        """Every sample matching `filters` (see `samples`), in the order written."""
        after = 0
        while True:
            page = self.samples(run_id, after_id=after, **filters)
            yield from page["items"]
            if len(page["items"]) < MAX_EVENTS_PAGE:
                return
            after = page["next_after_id"]

    def sample_steps(self, run_id: str) -> list[int]:
        """The evaluation steps at which the run kept its samples."""
        return self.request("GET", f"/runs/{run_id}/samples/steps")["steps"]

    # --- sweeps -----------------------------------------------------------------------------------------------------

    def list_sweeps(self, limit: int = 50, offset: int = 0) -> Json:
        """{"items", "total", ...}, newest first, each with its number of jobs."""
        return self.request("GET", "/sweeps", params={"limit": limit, "offset": offset})

    def get_sweep(self, sweep_id: str) -> Json:
        """The sweep with every job it created (later pipeline stages appear as their parents succeed)."""
        return self.request("GET", f"/sweeps/{sweep_id}")

    def submit_sweep(self, spec: Json) -> Json:
        """Queue one job or pipeline per grid point (and GRPO's budgets), all or none."""
        return self._post("/sweeps", spec)

    def sweep_jobs(self, sweep_id: str) -> list[Json]:
        """Every job of a sweep, pipeline stages included, a page of 200 at a time."""
        return self.all_jobs(sweep_id=sweep_id)

    def cancel_sweep(self, sweep_id: str) -> list[Json]:
        """Cancel every job of the sweep that has not ended, oldest first, so a pipeline's queued later stages go with
        their first; the jobs this call cancelled (or flagged, if running). Jobs that had ended are left as they are."""
        cancelled = []
        for job in reversed(self.sweep_jobs(sweep_id)):
            if job["status"] in FINISHED:
                continue
            try:
                cancelled.append(self.cancel_job(job["id"]))
            except ApiError as error:
                if error.status != 409:  # 409: it ended meanwhile (its parent's cancel took it along)
                    raise
        return cancelled
