"""benchmarks/api_load.py in a short form: the API answers every request of 50 clients while a job trains, on the
embedded SQLite file and on PostgreSQL. Zero errors is all it asserts; the figures are the benchmark's to print."""

from __future__ import annotations

import pytest

from benchmarks.api_load import ENDPOINTS, main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_many_clients_get_every_answer_while_a_job_trains(database):
    (result,) = main(["--clients", "50", "--seconds", "5", "--databases", database])
    assert result.errors == 0, {path: e.errors for path, e in result.endpoints.items()}
    assert all(result.endpoints[path].latencies for path in ENDPOINTS)
