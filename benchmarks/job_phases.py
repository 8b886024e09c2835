"""Where one job's worker-seconds go, phase by phase, with its training child spawned against forked from a template.

    python -m benchmarks.job_phases [--rounds 2] [--rl-steps 8] [--sft-steps 10]

The demo's two trained stages (presets `toy-safety`, RL, and `toy-benign-sft`, downstream SFT, from the tiny model)
run through `workers.runner.execute` on an embedded SQLite store, as a worker runs them: once with the training
child spawned (`python -m workers.runner --train`, every job importing the ML stack) and once forked from a
template (workers.template), alternating so that the machine's noise hits both alike. Each child records its phases
(workers.phases: `time/<phase>` metrics); `wall` is the whole of `execute` (claim, child, heartbeat, finish), i.e.
the worker-seconds a job costs. Steps are cut to a few: the fixed cost, which this measures, does not depend on them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import select

from store.db import make_engine, session_scope
from store.migrate import upgrade
from store.models import MetricPoint
from store.presets import apply_preset
from store.queries import create_run
from store.settings import Settings
from store.specs import JOB_SPEC
from workers import runner
from workers.phases import PHASES, PREFIX
from workers.template import SOCKET_ENV, start_template

FIXED = ("start", "imports", "data", "trainer", "save")
MODES = ("spawned", "forked")


def stage_specs(rl_steps: int, sft_steps: int) -> dict[str, dict]:
    """The demo's RL and SFT stages as job specs, their steps cut and an evaluation at the start and the end."""
    rl = {"kind": "train", "preset": "toy-safety", "max_steps": rl_steps, "save_steps": rl_steps}
    rl["eval"] = {"every": rl_steps}
    sft = {"kind": "finetune", "preset": "toy-benign-sft", "model": "tiny", "max_steps": sft_steps}
    sft |= {"save_steps": sft_steps, "eval": {"every": sft_steps}}
    return {"toy-safety RL": rl, "toy-benign-sft": sft}


def run_once(engine, settings: Settings, raw: dict) -> dict[str, float]:
    """Run one job to its end; its phases' seconds and its wall time."""
    spec = JOB_SPEC.validate_python(apply_preset(raw["kind"], raw))
    with session_scope(engine) as session:
        run_id: uuid.UUID = create_run(session, spec).id
    began = time.perf_counter()
    status = runner.execute(run_id, settings, engine)
    wall = time.perf_counter() - began
    if status != "succeeded":
        raise RuntimeError(f"run {run_id} ended {status}: see {settings.output_root / str(run_id) / 'train.log'}")
    query = select(MetricPoint.key, MetricPoint.value).where(
        MetricPoint.run_id == run_id, MetricPoint.key.like(f"{PREFIX}%")
    )
    with session_scope(engine) as session:
        phases = {key.removeprefix(PREFIX): value for key, value in session.execute(query)}
    return {**phases, "wall": wall}


def table(results: dict[tuple[str, str], list[dict[str, float]]]) -> str:
    columns = [*PHASES, "fixed", "wall"]
    lines = ["| stage | child | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for (stage, mode), runs in results.items():
        means = {c: statistics.mean(run.get(c, 0.0) for run in runs) for c in [*PHASES, "wall"]}
        means["fixed"] = sum(means[c] for c in FIXED)
        lines.append(f"| {stage} | {mode} | " + " | ".join(f"{means[c]:.1f}" for c in columns) + " |")
    return "\n".join(lines)


def ratios(results: dict[tuple[str, str], list[dict[str, float]]]) -> list[str]:
    lines = []
    for stage in dict.fromkeys(stage for stage, _ in results):
        spawned, forked = results[(stage, "spawned")], results[(stage, "forked")]
        wall = [statistics.mean(r["wall"] for r in runs) for runs in (spawned, forked)]
        fixed = [statistics.mean(sum(r.get(c, 0.0) for c in FIXED) for r in runs) for runs in (spawned, forked)]
        lines.append(
            f"{stage}: wall {wall[0]:.1f} s → {wall[1]:.1f} s (forked / spawned = {wall[1] / wall[0]:.2f}), "
            f"fixed {fixed[0]:.1f} s → {fixed[1]:.1f} s ({fixed[1] / fixed[0]:.2f})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rl-steps", type=int, default=8)
    parser.add_argument("--sft-steps", type=int, default=10)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="job-phases-"))
    url = f"sqlite:///{workdir / 'frpo.db'}"
    upgrade(url)
    engine = make_engine(url)
    settings = Settings(data_dir=workdir, database_url=url)
    began = time.perf_counter()
    template, socket_path = start_template()
    print(f"template ready in {time.perf_counter() - began:.1f} s (paid once per worker)")
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for round_ in range(args.rounds):
            for stage, raw in stage_specs(args.rl_steps, args.sft_steps).items():
                modes = MODES if round_ % 2 == 0 else MODES[::-1]
                for mode in modes:
                    if mode == "forked":
                        os.environ[SOCKET_ENV] = socket_path
                    else:
                        os.environ.pop(SOCKET_ENV, None)
                    figures = run_once(engine, settings, raw)
                    results.setdefault((stage, mode), []).append(figures)
                    print(f"round {round_ + 1} {stage} {mode}: {figures['wall']:.1f} s", flush=True)
    finally:
        os.environ.pop(SOCKET_ENV, None)
        template.kill()
        engine.dispose()
    results = dict(sorted(results.items()))
    print(f"\nseconds per job, mean of {args.rounds} ({args.rl_steps} RL steps, {args.sft_steps} SFT steps):\n")
    print(table(results))
    print()
    print("\n".join(ratios(results)))


if __name__ == "__main__":
    main()
