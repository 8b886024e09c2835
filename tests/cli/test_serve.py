"""`frpo serve` on the embedded default, end to end: no Redis, no PostgreSQL, a real worker process, real training."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from testkit.service import background, free_port, responds, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def frpo(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_serve_trains_the_smallest_job(tmp_path):
    port = free_port()
    env = {**os.environ, "FRPO_DATA_DIR": str(tmp_path / "var")}
    env = {k: v for k, v in env.items() if k not in ("FRPO_DATABASE_URL", "FRPO_BROKER_URL")}
    base = f"http://127.0.0.1:{port}/api/v1"
    with background([sys.executable, "-m", "cli", "serve", "--port", str(port)], tmp_path / "serve.log", env):
        wait_for(lambda: responds(f"{base}/readyz"), 60, what="the API to be ready")
        key = (tmp_path / "var" / "admin.key").read_text().strip()
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        job = client.post("/jobs", json={"kind": "train", "method": "frpo", "max_steps": 6, "save_steps": 3}).json()
        assert job["status"] == "queued", job

        def finished():
            current = client.get(f"/jobs/{job['id']}").json()
            return current if current["status"] in ("succeeded", "failed", "cancelled") else None

        done = wait_for(finished, 240, what="the job to finish")
        assert done["status"] == "succeeded", (done, (tmp_path / "serve.log").read_text()[-3000:])
        assert done["progress"] == pytest.approx(1.0)
        series = client.get(f"/runs/{job['id']}/metrics", params={"keys": "reward,robust_reward"}).json()["series"]
        assert series["reward"]["steps"] == [1, 2, 3, 4, 5, 6]
        assert len(series["robust_reward"]["values"]) == 6

        # The CLI's HTTP commands against the same server.
        cli_env = {**env, "FRPO_API_URL": f"http://127.0.0.1:{port}", "FRPO_API_KEY": key}
        listed = frpo("jobs", env=cli_env)
        assert job["id"] in listed and "succeeded" in listed
        assert "succeeded" in frpo("logs", job["id"], env=cli_env)
        assert frpo("wait", job["id"], env=cli_env).strip().endswith(f"{job['id']} succeeded")
        spec = tmp_path / "spec.yaml"
        spec.write_text("kind: train\nmethod: grpo\nmax_steps: 400\n")
        second = frpo("submit", str(spec), env=cli_env).strip()
        assert "cancel" in frpo("cancel", second, env=cli_env)
        wait_for(lambda: client.get(f"/jobs/{second}").json()["status"] == "cancelled", 60, what="the cancel")
