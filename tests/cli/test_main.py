"""The `frpo` CLI's local commands against a real embedded database."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from sqlalchemy import create_engine, inspect
from sqlalchemy.orm import Session

from cli.main import _stored_key
from store.db import get_engine
from store.migrate import upgrade
from store.queries import authenticate
from store.settings import get_settings


def frpo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, timeout=120)


def test_db_upgrade_then_keys_create(tmp_path, monkeypatch):
    env = {"PATH": "/usr/bin:/bin", "FRPO_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    upgraded = frpo("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    engine = create_engine(f"sqlite:///{tmp_path / 'frpo.db'}")
    assert "runs" in inspect(engine).get_table_names()

    created = frpo("keys", "create", "--scope", "read", "--name", "dashboard", env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("frpo_")
    with Session(engine) as session:
        stored = authenticate(session, key)
        assert stored is not None and stored.scopes == ["read"] and stored.name == "dashboard"

    _, prefix, secret = key.split("_", 2)  # the secret (urlsafe base64) may itself hold "_"
    listed = frpo("keys", "list", env=env).stdout
    assert prefix in listed and "dashboard" in listed and "live" in listed and secret not in listed
    assert frpo("keys", "revoke", prefix, env=env).returncode == 0
    with Session(engine) as session:
        assert authenticate(session, key) is None
    assert "revoked" in frpo("keys", "list", env=env).stdout
    assert frpo("keys", "revoke", prefix, env=env).returncode == 1  # already revoked

    refused = frpo("keys", "create", "--scope", "root", env=env)
    assert refused.returncode != 0 and "root" in refused.stderr


def test_a_stored_key_file_is_born_readable_by_its_owner_only(tmp_path, monkeypatch):
    """Created with mode 0600 even under a umask that lets everyone read, and kept as it is on the next start."""
    monkeypatch.setenv("FRPO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FRPO_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    get_engine.cache_clear()
    upgrade(get_settings().database_url)
    path = tmp_path / "keys" / "admin.key"
    old_umask = os.umask(0o000)
    try:
        key = _stored_key(path, "admin")
    finally:
        os.umask(old_umask)
        get_settings.cache_clear()
        get_engine.cache_clear()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == key + "\n" and _stored_key(path, "admin") == key


def test_the_math_demo_refuses_a_shipped_warm_start_it_does_not_have(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("FRPO_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["demo", "--setting", "math", "--shipped-warm-start"])
    assert result.exit_code == 2 and "ships no warm start" in result.output
    assert not (tmp_path / "frpo.db").exists()  # refused before anything started
