"""`frpo submit | jobs | logs | cancel | retry | wait`, `--json`, `--version` and errors, against the real API."""

from __future__ import annotations

import json

import pytest

from cli.main import app
from frpo_client import Client
from testkit.service import free_port

pytestmark = pytest.mark.integration


def test_version_and_help_render_as_written(runner):
    frpo = runner("http://127.0.0.1:1", "k")
    assert frpo("--version").stdout.strip().startswith("frpo-lab ")
    usage = frpo("--help").stdout
    assert "\nfrpo serve " in usage.replace("  frpo", "\nfrpo") and "frpo sweeps submit --preset NAME" in usage
    assert app.info.help and all(line in usage for line in ("frpo demo [--setting math]", "frpo presets | export"))


def test_an_unreachable_api_is_one_line_naming_frpo_serve(runner):
    result = runner(f"http://127.0.0.1:{free_port()}", "k")("jobs")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "cannot reach the API" in result.stderr and "frpo serve" in result.stderr
    assert "Traceback" not in result.output


def test_listings_print_tables_or_json(runner, seeded_api):
    url, seeded = seeded_api
    frpo = runner(url, seeded.read_key)
    listed = frpo("jobs", "--kind", "finetune", "--limit", "50", "--json")
    assert listed.exit_code == 0, listed.output
    assert {job["id"] for job in json.loads(listed.stdout)} == set(seeded.finetune) | {seeded.failed_id}
    table = frpo("jobs", "--status", "failed").stdout
    assert seeded.failed_id in table and "failed" in table
    events = frpo("logs", seeded.finetune_ids()[0], "--json").stdout.splitlines()
    assert [json.loads(line)["message"] for line in events] == ["succeeded"]


def test_a_refused_spec_names_the_field_and_the_fix(runner, empty_api):
    url, seeded = empty_api
    result = runner(url, seeded.submit_key)("submit", "--preset", "toy-safety", "--set", "lamb=-1")
    assert result.exit_code == 1 and "lamb" in result.stderr and "Fix:" in result.stderr


def test_submit_from_a_preset_then_cancel_and_retry(runner, empty_api):
    url, seeded = empty_api
    frpo = runner(url, seeded.submit_key)
    submitted = frpo("submit", "--preset", "toy-safety", "--set", "lamb=0.5", "--set", "max_steps=3")
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.strip()
    job = Client(url, seeded.read_key).get_job(job_id)
    assert job["kind"] == "train" and job["spec"]["lamb"] == 0.5 and job["spec"]["max_steps"] == 3
    assert frpo("cancel", job_id).stdout.strip() == f"{job_id} cancelled"
    waited = frpo("wait", job_id)
    assert waited.exit_code == 1 and f"{job_id} cancelled" in waited.stdout  # ended, but did not succeed
    retried = frpo("retry", job_id).stdout.strip()
    assert retried != job_id and Client(url, seeded.read_key).get_job(retried)["tags"]["retry_of"] == job_id
    refused = frpo("submit", "--preset", "toy-frontier")
    assert refused.exit_code == 1 and "frpo sweeps submit --preset toy-frontier" in refused.stderr
