"""Schemathesis over every operation of the embedded app's OpenAPI schema, with a valid admin key: no generated
input (valid or not) gets a server error, and every operation that declares the key refuses a request without it or
with a wrong one."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import ignored_auth

from api.main import create_app
from store.migrate import upgrade
from store.settings import Settings
from tests.api.conftest import bearer

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 25  # bounded so the run stays within a few minutes on two cores


@pytest.fixture
def database_url(sqlite_url):
    """The embedded database (SQLite) only: the server errors looked for are the app's, not the database's."""
    upgrade(sqlite_url)
    return sqlite_url


def _operations() -> list[tuple[str, str]]:
    """(path, method) of every operation in the app's schema (built without a database: only the routes count)."""
    offline = Settings(database_url="sqlite://", broker_url="memory://")
    paths = create_app(settings=offline, enqueue=lambda *_: None, broker_check=lambda: None).openapi()["paths"]
    return [(path, method.upper()) for path, methods in paths.items() for method in methods]


@pytest.mark.parametrize("path,method", _operations(), ids=lambda value: value)
def test_no_input_makes_a_server_error_and_every_operation_needs_its_key(app, keys, path, method):
    operation = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def no_server_error(case: schemathesis.Case) -> None:
        checks = [not_a_server_error, ignored_auth]
        case.call_and_validate(headers=bearer(keys["admin"]), checks=checks, timeout=120)  # a slow, shared CPU

    no_server_error()
