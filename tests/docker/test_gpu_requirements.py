"""The GPU worker image's packages (docker/gpu-requirements.txt): they keep pyproject's pins but for the moves the
file marks, and pip resolves them on PyPI.

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
GPU_REQUIREMENTS = ROOT / "docker/gpu-requirements.txt"
EXTRAS = ["train", "bench-eval", "judges", "gpu"]
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", NAME.match(requirement)[1]).lower()


def project_pins() -> dict[str, str]:
    """pyproject's base dependencies and the extras the GPU image holds, by canonical name."""
    command = [sys.executable, str(ROOT / "docker/requirements.py"), *EXTRAS]
    lines = subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()
    return {canonical(line): line for line in lines}


def gpu_pins() -> dict[str, tuple[str, str]]:
    """docker/gpu-requirements.txt by canonical name: (requirement, the `# moved:` reason or "")."""
    pins = {}
    for raw in GPU_REQUIREMENTS.read_text().splitlines():
        requirement, _, comment = raw.partition("#")
        if requirement.strip():
            moved = comment.strip().removeprefix("moved:").strip() if comment.strip().startswith("moved:") else ""
            pins[canonical(requirement.strip())] = (requirement.strip(), moved)
    return pins


def test_gpu_requirements_keep_the_projects_pins_but_the_marked_moves():
    project, gpu = project_pins(), gpu_pins()
    assert sorted(gpu) == sorted(project), "docker/gpu-requirements.txt and pyproject list different packages"
    for name, (requirement, moved) in gpu.items():
        if moved:
            assert requirement != project[name], f"{name} is marked moved but keeps pyproject's pin"
        else:
            assert requirement == project[name], (
                f"{requirement} differs from pyproject's {project[name]}: mark `# moved:`"
            )
    assert "flash-attn" not in gpu, "flash-attn from PyPI is a source build: it is the FLASH_ATTN_WHEEL build arg"


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_gpu_requirements_resolve_on_pypi(tmp_path):
    """pip resolves the file on PyPI alone (--isolated: no local index, no torch cap), for this machine's CPython 3.11
    on Linux x86_64, as the GPU image's python:3.11 base is; torch is PyPI's CUDA build. Packages PyPI has only as
    source (DeepSpeed among them) had their metadata built by the resolve; they are printed."""
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed", "--quiet"]
    command += ["--report", str(report), "-r", str(GPU_REQUIREMENTS)]
    cert = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if cert:
        command += ["--cert", cert]
    result = subprocess.run(command, capture_output=True, text=True, timeout=840)
    assert result.returncode == 0, f"pip could not resolve {GPU_REQUIREMENTS.name}:\n{result.stderr[-6000:]}"
    installs = json.loads(report.read_text())["install"]
    versions = {canonical(item["metadata"]["name"]): item["metadata"]["version"] for item in installs}
    for name, (requirement, _) in gpu_pins().items():
        assert requirement.endswith(f"=={versions[name]}"), f"{requirement} resolved to {versions[name]}"
    assert "+cpu" not in versions["torch"] and any(name.startswith("nvidia-cudnn") for name in versions)
    sources = sorted(item["metadata"]["name"] for item in installs if not item["download_info"]["url"].endswith(".whl"))
    print(f"resolved {len(installs)} packages; from source: {', '.join(sources)}")
