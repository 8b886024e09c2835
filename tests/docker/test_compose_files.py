"""The compose files against the compose schema: the test command checks docker-compose.yml; the host ports live in
docker-compose.override.yml (compose reads it by default), so it is checked here. No engine needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_port_override_is_a_valid_compose_file():
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run([*command, str(ROOT / "docker-compose.override.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
