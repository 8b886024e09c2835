"""The README's demo command, `./scripts/demo`, on a fresh clone with no `.venv`: it sets itself up, then runs each toy
experiment whole (reduced), through the real embedded service."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from testkit.service import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    """The working tree as a fresh clone of it holds it: tracked files and untracked ones git does not ignore; no
    `.venv`, no `var/`. The first demo run below sets up its `.venv`; the second finds it set up."""
    clone = tmp_path_factory.mktemp("clone") / "frpo-lab"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split(b"\0")):
        source = ROOT / os.fsdecode(name)
        if source.is_file():  # a tracked file deleted in the working tree is not in a clone of it either
            (clone / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / os.fsdecode(name))
    assert not (clone / ".venv").exists()
    return clone


def run_demo(clone: Path, tmp_path: Path, *options: str) -> str:
    """`./scripts/demo` in `clone`, its output after asserting that it succeeded (on a fresh embedded store)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FRPO_DATABASE_URL", "FRPO_BROKER_URL", "VIRTUAL_ENV")}
    env["FRPO_DATA_DIR"] = str(tmp_path / "var")
    command = [str(clone / "scripts" / "demo"), *options, "--port", str(free_port())]
    set_up = (clone / ".venv").exists()
    log = tmp_path / "demo.log"
    with open(log, "w") as out:
        result = subprocess.run(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=1700
        )
    text = log.read_text()
    assert result.returncode == 0, text
    if set_up:  # the second run finds .venv as the first left it and installs nothing
        assert "installing" not in text
    else:
        assert "creating .venv" in text and "installing frpo-lab[demo]" in text
    assert (clone / ".venv" / "bin" / "frpo").is_file()
    return text


def table_after(text: str, header: str) -> list[list[str]]:
    """The rows (cells split on runs of 2+ spaces) of the plain-text table whose header line starts with `header`
    (under its rule of dashes, where it has one)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 1
    if start < len(lines) and set(lines[start].replace(" ", "")) == {"-"}:
        start += 1
    rows = []
    for line in lines[start:]:
        if not line.strip():
            return rows
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def test_demo_sets_itself_up_runs_the_experiment_end_to_end_and_prints_the_table(fresh_clone, tmp_path):
    options = ["--seeds", "2", "--lamb", "0.5", "--rl-steps", "4", "--grpo-steps", "2", "--grpo-steps", "6"]
    text = run_demo(fresh_clone, tmp_path, *options, "--finetune-steps", "3")  # from the shipped warm start
    assert "warm start (SFT of the tiny model)" not in text
    table = text[text.index("\nsetting ") + 1 :].splitlines()  # the table, not a pip line naming pydantic-settings
    rows = {line.split("  ")[0]: line for line in table[2:7]}
    along_one_run = {f"GRPO @{step} (one run), β {beta}" for step in (2, 6) for beta in ("0", "0.05")}
    assert set(rows) == {*along_one_run, "FRPO λ=0.5"}  # GRPO: one run per β, fine-tuned from its steps 2 and 6
    assert all(" 2 " in row for row in rows.values())  # two seeds each, every cell a mean ± sd
    assert text.count("±") >= 15 and "nan" not in text.lower()
    assert "GRPO's frontier over its budgets" in text
    verdict = next(line for line in text.splitlines() if line.startswith("- FRPO λ=0.5:"))
    assert "frontier" in verdict and " → " in verdict  # the numbers, then a label: whichever way it falls
    assert "http://127.0.0.1:8501/?sweep=" in text
    stages = {row[0]: row for row in table_after(text, "stage ")}  # where the worker-seconds went
    assert set(stages) == {"RL", "SFT"} and stages["RL"][1] == "6"  # no warm start job: the shipped one
    evaluated = finetune_evaluation_steps(tmp_path / "var" / "frpo.db")
    assert len(evaluated) == 10 and set(evaluated) == {(0, 3)}  # no evaluation the report does not read


def finetune_evaluation_steps(database: Path) -> list[tuple[int, ...]]:
    """The steps at which each fine-tuning run of the demo's store logged its refusal rate."""
    query = (
        "SELECT group_concat(step) FROM (SELECT m.run_id, m.step FROM metric_points m JOIN runs r ON r.id = m.run_id"
        " WHERE r.kind = 'finetune' AND m.key = 'eval/refusal_rate' ORDER BY m.run_id, m.step) GROUP BY run_id"
    )
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return [tuple(int(step) for step in row[0].split(",")) for row in connection.execute(query)]


def test_the_math_demo_prints_benchmarks_before_and_after_code_sft(fresh_clone, tmp_path):
    options = ["--setting", "math", "--seeds", "1", "--lamb", "1", "--rl-steps", "3", "--grpo-steps", "2"]
    options += ["--grpo-steps", "4", "--finetune-steps", "2", "--warm-start-steps", "20"]
    text = run_demo(fresh_clone, tmp_path, *options)
    settings = {"GRPO (steps 2)", "GRPO (steps 4)", "FRPO λ=1"}
    scores = table_after(text, "benchmark ")
    cells = {(row[0], row[1]): row[2:] for row in scores}
    assert set(cells) == {
        (metric, s) for metric in ("toy_arith/exact_match/last_number", "toy_humaneval/pass@1") for s in settings
    }
    number = re.compile(r"^[+-]?\d\.\d\d ± \d\.\d\d$")
    assert all(seeds == "1" and all(number.match(cell) for cell in rest) for seeds, *rest in cells.values())
    rewards = {row[0]: row for row in table_after(text, "setting ")}
    assert set(rewards) == settings  # the math reward at the start and end of RL
    accuracy = {row[0]: row[2:4] for row in table_after(text[text.index("Accuracy during RL") :], "setting ")}
    assert set(accuracy) == settings  # and the share of sampled answers that were right, a number in [0, 1]
    assert all(0 <= float(cell.split(" ± ")[0]) <= 1 for cells in accuracy.values() for cell in cells)
    warm = r"The warm start, before any RL: toy_arith/exact_match/last_number \d\.\d\d, toy_humaneval/pass@1 \d\.\d\d\."
    assert re.search(warm, text)
    assert "No frontier verdict here" in text and "nan" not in text.lower()
    assert re.search(r"http://127\.0\.0\.1:8501/capability\?sweep=[0-9a-f-]{36}", text)
