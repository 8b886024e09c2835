"""Docker for the tests: an engine, a local Debian base image, torch served from this machine, and compose.

Why each piece exists: no image registry is reachable where the tests run, and traffic must stay on loopback. So the
engine runs without a bridge (`dockerd --bridge=none --iptables=false`, every container on the host network), the
base image is built here with debootstrap from Debian's package mirror (python3 and venv, this machine's CA bundle
copied in so pip inside a build trusts what this machine trusts) and tagged where the Dockerfiles' `BASE_IMAGE`
points, and torch's CPU wheel comes from this machine's disk over a loopback HTTP server, not from a multi-GB
download. Builds use the host network (`--network host`, `build.network: host` in compose), so 127.0.0.1 inside a
build is this machine.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path

# Debian packages the tests need on this machine: the engine, compose (v1 is what bookworm ships), debootstrap.
HOST_PACKAGES = {"dockerd": "docker.io", "docker-compose": "docker-compose", "debootstrap": "debootstrap"}
# What the local base image holds: enough for `python3 -m venv` and pip, as python:3.11-slim-bookworm has.
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
BASE_SUITE = "bookworm"
BASE_MIRROR = os.environ.get("FRPO_DOCKER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# The debootstrapped root, as a tarball, survives between runs (it takes minutes to build, seconds to import).
CACHE_DIR = Path(os.environ.get("FRPO_DOCKER_CACHE", "/var/cache/frpo-docker-base"))
# Where a dockerd started here keeps its images and containers (not /var/lib/docker: a host's own engine may own it).
DATA_ROOT = Path(os.environ.get("FRPO_DOCKER_DATA_ROOT", "/var/lib/frpo-docker"))
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def docker(*args: str, timeout: float | None = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`docker ARGS`, output captured; on failure the error names the command and shows what it printed."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def engine_running() -> bool:
    return shutil.which("docker") is not None and docker("info", timeout=30, check=False).returncode == 0


def install_host_packages() -> None:
    """apt-get the engine, compose and debootstrap where any is missing (root only; Debian's packages)."""
    missing = sorted({package for command, package in HOST_PACKAGES.items() if shutil.which(command) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            f"the docker tests need {', '.join(missing)}: apt-get install -y {' '.join(missing)} as root"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, capture_output=True, timeout=900)


@contextmanager
def docker_engine(log_path: Path) -> Iterator[None]:
    """A Docker engine for the block: the one already running, or `dockerd` started here without a bridge or
    iptables rules (its own data root) and stopped afterwards."""
    install_host_packages()
    if engine_running():
        yield
        return
    if os.geteuid() != 0:
        raise RuntimeError("no Docker engine runs and only root can start one: start dockerd, or run the tests as root")
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    command = ["dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false", "--data-root", str(DATA_ROOT)]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(engine_running, 90, what=f"dockerd to answer (its log: {log_path})")
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def base_image_tag() -> str:
    """The local base's tag: named by what it holds, so a change of packages or CA bundle builds a new one."""
    recipe = "\n".join([BASE_SUITE, BASE_MIRROR, *BASE_PACKAGES]).encode() + CA_BUNDLE.read_bytes()
    return f"frpo-lab-test/{BASE_SUITE}-python:{hashlib.sha256(recipe).hexdigest()[:12]}"


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def ensure_base_image() -> tuple[str, bool]:
    """(tag, imported here): the local Debian base, from the engine if it has it, else imported from the cached
    tarball, else debootstrapped first (a few minutes; the tarball is kept for the next run)."""
    tag = base_image_tag()
    if image_exists(tag):
        return tag, False
    tarball = CACHE_DIR / f"{tag.rsplit(':', 1)[1]}.tar"
    if not tarball.exists():
        build_base_tarball(tarball)
    docker("import", "--change", 'CMD ["python3"]', str(tarball), tag, timeout=600)
    return tag, True


def build_base_tarball(tarball: Path) -> None:
    """`debootstrap --variant=minbase` with python3 and venv into a scratch root, this machine's CA bundle copied in
    (pip inside a build then trusts what this machine trusts), apt's downloads dropped, packed as `tarball`."""
    if shutil.which("debootstrap") is None:
        raise RuntimeError("the local base image needs debootstrap: apt-get install -y debootstrap")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="rootfs-", dir=CACHE_DIR))
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", BASE_SUITE, str(root)]
            + [BASE_MIRROR],
            check=True,
            capture_output=True,
            timeout=1500,
        )
        shutil.copyfile(CA_BUNDLE, root / "etc/ssl/certs/ca-certificates.crt")
        for leftovers in (root / "var/cache/apt/archives", root / "var/lib/apt/lists"):
            for path in leftovers.glob("*"):
                if path.is_file():
                    path.unlink()
        partial_tarball = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial_tarball), "."], check=True, timeout=600)
        partial_tarball.rename(tarball)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def remove_image(tag: str) -> None:
    docker("image", "rm", "--force", tag, check=False, timeout=300)


def image_size_mb(tag: str) -> float:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip()) / 1e6


@contextmanager
def served_wheels(pins: Sequence[str], directory: Path) -> Iterator[str]:
    """`pins` fetched with this machine's pip (its configuration and local wheels: torch's CPU wheel lies on disk
    here) into `directory`, served on 127.0.0.1 for the block; yields the pip options that install from there only
    (for a build on the host network)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(directory)]
        + list(pins),
        check=True,
        timeout=900,
    )
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"--no-index --find-links http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def compose_command() -> list[str]:
    """`docker compose` (v2) where the client has it, else Debian's `docker-compose` (v1.29)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise RuntimeError("no docker compose: apt-get install -y docker-compose")


def for_compose_v1(compose_file: Path, scratch: Path) -> Path:
    """`compose_file` as Debian's compose v1.29 reads it: without the top-level `name:` (which v1 predates and
    refuses; the tests name the project with --project-name anyway). Everything else is the file as written."""
    lines = compose_file.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith("name:")]
    copy = scratch / compose_file.name
    copy.write_text("".join(kept))
    return copy


class Compose:
    """One compose project (its own name, so `down` touches nothing else) over the repository's compose file plus
    the test's override; relative paths resolve against `root`, the repository."""

    def __init__(self, root: Path, files: Sequence[Path], project: str, env: dict[str, str], scratch: Path):
        self.root = root
        command = compose_command()
        if command == ["docker-compose"]:
            files = [for_compose_v1(files[0], scratch), *files[1:]]
        self.base = [*command, "--project-name", project, "--project-directory", str(root)]
        for path in files:
            self.base += ["--file", str(path)]
        self.env = {**os.environ, **env}

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.base, *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"compose {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
                f"{result.stderr[-4000:]}\n--- logs ---\n{self.logs()}"
            )
        return result

    def logs(self) -> str:
        with suppress(Exception):
            result = subprocess.run(
                [*self.base, "logs", "--no-color", "--tail", "60"],
                cwd=self.root,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            return (result.stdout + result.stderr)[-12000:]
        return "(no logs)"

    def container(self, service: str) -> str:
        """The id of `service`'s container (stopped ones too)."""
        ids = self.run("ps", "-a", "-q", service).stdout.split()
        if not ids:
            raise RuntimeError(f"compose has no container for {service!r}:\n{self.logs()}")
        return ids[0]

    def health(self, service: str) -> str:
        container = self.container(service)
        return docker("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()


def wait_for(condition, timeout: float, what: str, interval: float = 1.0):
    """Poll `condition` until it returns something truthy (returned) or `timeout` seconds pass (TimeoutError naming
    `what`). Exceptions inside count as 'not yet'."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as error:  # noqa: BLE001 - polling: a refused connection means "not yet"
            last_error = error
        else:
            if value:
                return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error!r})")
