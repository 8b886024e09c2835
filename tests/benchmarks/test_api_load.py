"""benchmarks/api_load.py at the issue's size: 200 clients for 30 s on the read endpoints while a job trains, on the
embedded SQLite file and on PostgreSQL. Zero errors is all it asserts; the figures (requests, p50/p95/max) are the
benchmark's, printed into the test log (not captured), so every CI run records them."""

from __future__ import annotations

import pytest

from benchmarks.api_load import ENDPOINTS, main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_two_hundred_clients_get_every_answer_while_a_job_trains(database, capsys):
    with capsys.disabled():
        (result,) = main(["--clients", "200", "--seconds", "30", "--databases", database])
    assert result.errors == 0, {path: e.errors for path, e in result.endpoints.items()}
    assert all(result.endpoints[path].latencies for path in ENDPOINTS)
