"""The README's FRPO snippet runs as written, so the README stays true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_training_snippet_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    snippet = next(block for block in blocks if "FRPOTrainer" in block)
    script = tmp_path / "snippet.py"
    script.write_text(snippet)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'robust_reward'" in result.stdout and "'reward'" in result.stdout


def test_the_layout_section_draws_every_package_and_frpo_core_subpackage():
    layout = README.read_text().split("## Layout", 1)[1].split("```")[1]
    root = README.parent
    packages = [p.name for p in root.iterdir() if (p / "__init__.py").is_file()]
    subpackages = [p.name for p in (root / "frpo_core").iterdir() if (p / "__init__.py").is_file()]
    assert set(packages) >= {"frpo_core", "store", "api", "workers", "dashboard", "cli", "analysis", "testkit"}
    missing = [f"{name}/" for name in packages + subpackages if f"{name}/" not in layout]
    assert not missing, f"README's layout does not name {missing}"
