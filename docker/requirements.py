"""Print the project's pinned requirements (the base dependencies plus the named extras, `frpo-lab[x]` expanded), one
per line, for `pip install -r`.

Why: the images install the dependencies before they copy the sources, so a code change rebuilds only the last
layer, and the pins stay in one place (pyproject.toml) instead of being copied into each Dockerfile.

    python3 docker/requirements.py train bench-eval judges > /tmp/requirements.txt
    python3 docker/requirements.py --only train   # one extra's pins without the base dependencies
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
SELF = re.compile(r"^frpo-lab\[(?P<extras>[^\]]+)\]$")


def requirements(extras: list[str], base: bool = True, pyproject: Path = PYPROJECT) -> list[str]:
    """The base dependencies (unless `base` is false) and every named extra's, self-references expanded, each once
    and in order of first appearance."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project["optional-dependencies"]
    found: list[str] = list(project["dependencies"]) if base else []

    def add(extra: str) -> None:
        if extra not in optional:
            raise SystemExit(f"no extra {extra!r} in {pyproject}: pick from {', '.join(sorted(optional))}")
        for line in optional[extra]:
            nested = SELF.match(line)
            if nested:
                for name in nested["extras"].split(","):
                    add(name.strip())
            elif line not in found:
                found.append(line)

    for extra in extras:
        add(extra)
    return found


def main(argv: list[str]) -> None:
    only = "--only" in argv
    extras = [arg for arg in argv if arg != "--only"]
    print("\n".join(requirements(extras, base=not only)))


if __name__ == "__main__":
    main(sys.argv[1:])
