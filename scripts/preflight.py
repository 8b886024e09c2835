"""What `./scripts/test` needs before it installs anything, checked up front: each missing piece is named with how to
get it, instead of a stack trace twenty minutes into the run. Standard library only (it runs before .venv exists).

    python3 scripts/preflight.py     # exit 0: all here (or only what the test command can install itself)

Needs: Python >= 3.11 with venv; PostgreSQL (FRPO_TEST_POSTGRES_URL, default 127.0.0.1:5432, trust auth) and Redis
(FRPO_TEST_REDIS_URL, default 127.0.0.1:6379) for the integration tests; Chromium for the browser tests
(FRPO_TEST_CHROMIUM, default /usr/bin/chromium), which the test command installs with apt-get when run as root;
bubblewrap for the code sandbox (the same; scripts/sandbox-access); and for the compose tests a Docker engine with
compose and debootstrap, which the tests install and start themselves as root (testkit/docker.py).
"""

import os
import shutil
import socket
import sys
from urllib.parse import urlsplit

POSTGRES_URL = os.environ.get("FRPO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("FRPO_TEST_REDIS_URL", "redis://127.0.0.1:6379")
CHROMIUM = os.environ.get("FRPO_TEST_CHROMIUM", "/usr/bin/chromium")


def reachable(host, port, hello=None, expect=None):
    """Whether something listens on host:port (and answers ``hello`` with a reply starting ``expect``)."""
    try:
        with socket.create_connection((host, port), timeout=3) as conn:
            if hello is None:
                return True
            conn.sendall(hello)
            return conn.recv(64).startswith(expect)
    except OSError:
        return False


def problems():
    found = []
    if sys.version_info < (3, 11):  # noqa: UP036  (this runs on whatever python3 the machine has)
        found.append(
            f"Python >= 3.11 is needed; this is {sys.version.split()[0]}. Install one (Debian/Ubuntu: apt-get install "
            "python3 python3-venv) or point PYTHON at it."
        )
    try:
        import ensurepip  # noqa: F401  (what `python -m venv` needs to put pip in .venv)
    except ImportError:
        found.append("Python's venv module cannot install pip here: apt-get install python3-venv (Debian/Ubuntu).")
    url = urlsplit(POSTGRES_URL)
    host, port = url.hostname or "127.0.0.1", url.port or 5432
    if not reachable(host, port):
        found.append(
            f"PostgreSQL does not answer on {host}:{port} (FRPO_TEST_POSTGRES_URL={POSTGRES_URL}). The integration "
            "tests create and drop databases there with trust auth: start it (Debian: pg_ctlcluster 15 main start), "
            "or set FRPO_TEST_POSTGRES_URL to a server whose user may create databases."
        )
    redis = urlsplit(REDIS_URL)
    host, port = redis.hostname or "127.0.0.1", redis.port or 6379
    if not reachable(host, port, hello=b"PING\r\n", expect=b"+PONG"):
        found.append(
            f"Redis does not answer PING on {host}:{port} (FRPO_TEST_REDIS_URL={REDIS_URL}); the Celery tests use "
            "its databases 14 and 15: start it (redis-server --daemonize yes), or set FRPO_TEST_REDIS_URL."
        )
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        if not _is_root_with_apt():
            found.append(
                f"No Chromium at {CHROMIUM} for the dashboard's browser tests, and this user cannot install it: run "
                "`sudo apt-get install chromium` (Debian; the test command does this itself when run as root), or "
                "set FRPO_TEST_CHROMIUM to a Chromium binary."
            )
    if os.geteuid() != 0 and shutil.which("bwrap") is None:
        found.append(
            "The code sandbox's tests need bubblewrap, which only root can install here: run `sudo apt-get install "
            "bubblewrap` (Debian) and `sudo ./scripts/sandbox-access` once .venv exists, or run the test command as "
            "root (it does both)."
        )
    if not _is_root_with_apt():
        missing = [name for name in ("docker", "docker-compose", "debootstrap") if shutil.which(name) is None]
        if missing:
            found.append(
                f"The compose tests need {', '.join(missing)}, which only root can install here: run `sudo apt-get "
                f"install docker.io docker-compose debootstrap` (Debian), or run the test command as root."
            )
    return found


def _is_root_with_apt():
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None


if __name__ == "__main__":
    missing = problems()
    if missing:
        print("./scripts/test cannot run yet:", file=sys.stderr)
        for problem in missing:
            print(f"- {problem}", file=sys.stderr)
        sys.exit(1)
