"""Live services for the dashboard tests: seeded SQLite databases behind the real API on uvicorn (module-scoped: the
seed takes a second, and the pages only read it), and a clean Streamlit cache for each test."""

from __future__ import annotations

import pytest
import streamlit as st

from testkit.dashboard import FrontierSeeded, MathSeeded, Seeded, seed, seed_frontier, seed_math, serve_api


@pytest.fixture
def fresh_cache():
    """st.cache_data lives for the process: every page test reads the API afresh."""
    st.cache_data.clear()
    yield
    st.cache_data.clear()


class Live:
    def __init__(self, url: str, seeded: Seeded | FrontierSeeded | MathSeeded) -> None:
        self.url = url
        self.seeded = seeded


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Live:
    """The API over the full seed (12 fine-tuning runs, their RL parents, a sweep, an evaluation, a failed run)."""
    folder = tmp_path_factory.mktemp("dashboard-api")
    seeded = seed(f"sqlite:///{folder / 'frpo.db'}", with_failed=True)
    with serve_api(seeded.database_url, folder) as url:
        yield Live(url, seeded)


@pytest.fixture(scope="module")
def frontier_api(tmp_path_factory) -> Live:
    """The API over the frontier seed: pipeline sweeps whose RL runs logged the KL they moved (GRPO at 3 budgets)."""
    folder = tmp_path_factory.mktemp("frontier-api")
    seeded = seed_frontier(f"sqlite:///{folder / 'frpo.db'}")
    with serve_api(seeded.database_url, folder) as url:
        yield Live(url, seeded)


@pytest.fixture(scope="module")
def math_api(tmp_path_factory) -> Live:
    """The API over the math seed: the toy math frontier sweep's pipelines, scored on toy benchmarks before and after
    code SFT, an after-only sweep and a standalone evaluation."""
    folder = tmp_path_factory.mktemp("math-api")
    seeded = seed_math(f"sqlite:///{folder / 'frpo.db'}")
    with serve_api(seeded.database_url, folder) as url:
        yield Live(url, seeded)


@pytest.fixture
def empty(tmp_path) -> Live:
    """The API over a database with keys and no runs (function-scoped: the submit tests write to it)."""
    seeded = seed(f"sqlite:///{tmp_path / 'frpo.db'}", runs=False)
    with serve_api(seeded.database_url, tmp_path) as url:
        yield Live(url, seeded)


@pytest.fixture
def use_api(monkeypatch):
    """Point the dashboard at an API with a key, as its environment would."""

    def point(url: str, key: str) -> None:
        monkeypatch.setenv("FRPO_API_URL", url)
        monkeypatch.setenv("FRPO_DASHBOARD_API_KEY", key)
        monkeypatch.delenv("FRPO_API_KEY", raising=False)

    return point
