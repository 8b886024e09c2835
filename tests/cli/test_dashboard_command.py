"""`frpo dashboard` serves the Streamlit app with a read-scoped key it creates once."""

from __future__ import annotations

import os
import sys

import pytest

from store.db import make_engine, session_scope
from store.migrate import upgrade
from store.queries import authenticate
from testkit.service import background, free_port, responds, wait_for

pytestmark = pytest.mark.integration


def test_dashboard_command_serves_the_app_with_a_read_key(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    upgrade(f"sqlite:///{data / 'frpo.db'}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRPO_")} | {"FRPO_DATA_DIR": str(data)}
    port = free_port()
    command = [sys.executable, "-m", "cli", "dashboard", "--port", str(port)]
    with background(command, tmp_path / "dashboard.log", env):
        health = f"http://127.0.0.1:{port}/_stcore/health"
        wait_for(lambda: responds(health, expect="ok"), timeout=90, what=f"the dashboard on port {port}")
        key = (data / "dashboard.key").read_text().strip()
        engine = make_engine(f"sqlite:///{data / 'frpo.db'}")
        with session_scope(engine) as session:
            assert authenticate(session, key).scopes == ["read"]  # the dashboard only reads
        engine.dispose()
