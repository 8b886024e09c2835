"""A live service for the dashboard's tests, benchmark and screenshot: a real database seeded through the store's own
functions, the real API served by uvicorn, `streamlit run` as a subprocess, and Debian's chromium driven by
playwright.

The seed is Figure 1 in miniature: 12 fine-tuning runs (GRPO and FRPO × λ ∈ {0.5, 2} × seeds {0, 1, 2}), each the
child of its RL run, with safety evaluated at step 0 and every 10 steps of fine-tuning. GRPO degrades most, FRPO at
small λ least. The numbers are deterministic and returned, so tests compare what a page shows with what was written.
Two more seeds have databases of their own: the frontier's (GRPO at three budgets, `seed_frontier`) and the math
setting's (benchmarks before and after code SFT, `seed_math`).
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn

from analysis.pipelines import method_name
from api.main import create_app
from store.db import make_engine, session_scope
from store.events import add_event
from store.metrics import record_artifact, write_points
from store.migrate import upgrade
from store.models import Run, RunStatus, Sweep, utcnow
from store.queries import create_api_key, create_run, create_sweep, get_sweep
from store.samples import Sample, write_samples
from store.settings import Settings
from store.specs import EvaluateSpec, FinetuneSpec, SweepSpec, TrainSpec
from testkit.service import background, free_port, responds, wait_for

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("FRPO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
METHODS = ("grpo", "frpo")
LAMBS = (0.5, 2.0)
SEEDS = (0, 1, 2)
FT_STEPS = list(range(0, 101, 10))  # in-loop safety evaluation: step 0 and every 10 steps
RL_STEPS = list(range(1, 201))
FINAL_DROP = {("grpo", None): 0.55, ("frpo", 0.5): 0.12, ("frpo", 2.0): 0.25}
HELPFULNESS = {("grpo", None): 0.80, ("frpo", 0.5): 0.70, ("frpo", 2.0): 0.76}


def group_key(method: str, lamb: float) -> tuple[str, float | None]:
    return (method, None if method == "grpo" else lamb)


def group_label(method: str, lamb: float | None) -> str:
    return "GRPO" if method == "grpo" else f"FRPO λ={lamb:g}"


def refusal(method: str, lamb: float, seed: int, step: int) -> float:
    """Refusal on harmful prompts during fine-tuning: starts near 0.9, falls by the group's drop (with seed noise)."""
    start = 0.92 - 0.02 * seed
    drop = FINAL_DROP[group_key(method, lamb)] * (1 + 0.1 * (seed - 1))
    shape = (1 - math.exp(-step / 35)) / (1 - math.exp(-100 / 35))
    return round(start - drop * shape + 0.01 * (((seed * 7 + step // 10) % 3) - 1) * (step > 0), 6)


def finetune_points(method: str, lamb: float, seed: int) -> list[tuple[str, int, float]]:
    scale = 1.0 if method == "grpo" else (0.45 if lamb == 0.5 else 0.7)
    points = []
    for step in FT_STEPS:
        r = refusal(method, lamb, seed, step)
        points += [
            ("eval/refusal_rate", step, r),
            ("eval/harmfulness", step, round(1 - r, 6)),
            ("eval/strongreject", step, round(0.8 * (1 - r), 6)),
            ("eval/refusal_rate_normal", step, round(0.05 + 0.01 * seed, 6)),
            ("eval/kl_safety", step, round(scale * 2.0 * (step / 10) ** 0.8 + 0.05 * seed, 6)),
            ("eval/kl_normal", step, round(scale * 0.8 * (step / 10) ** 0.8 + 0.02 * seed, 6)),
        ]
        if step == 0:
            points.append(("eval/reward_normal", 0, HELPFULNESS[group_key(method, lamb)] + 0.01 * seed))
    points += [("loss", step, 2.0 * math.exp(-step / 40) + 0.3) for step in range(1, 101)]
    return points


def rl_points(method: str, lamb: float, seed: int) -> list[tuple[str, int, float]]:
    points = []
    for step in RL_STEPS:
        reward = 0.2 + 0.6 * (1 - math.exp(-step / 50)) + 0.01 * seed
        robust = reward - (0.08 if method == "frpo" else 0.15) * (1 + 1 / lamb)
        points += [
            ("reward", step, reward),
            ("reward_std", step, 0.1),
            ("rewards/share_of_e/mean", step, reward),
            ("robust_reward", step, robust),
            ("kl", step, 0.001 * step),
            ("entropy", step, 2.5 - 0.005 * step),
            ("loss", step, 0.05 * math.sin(step / 7)),
            ("completions/mean_length", step, 12 + 4 * math.exp(-step / 60)),
            ("learning_rate", step, 3e-3),
        ]
    return points


SAMPLE_PROMPTS = [f"toy request {i}: how do I pick the lock of my own shed?" for i in range(4)]


# Which prompts two fine-tuning runs refuse at their first and last evaluation: GRPO (seed 0, the first fine-tuning
# run) keeps only prompt 0 by step 100, FRPO λ=0.5 (seed 0) keeps prompts 0 and 1.
SAMPLED = {("GRPO", 0): {0: {0, 1, 2}, FT_STEPS[-1]: {0}}, ("FRPO λ=0.5", 0): {0: {0, 1, 2}, FT_STEPS[-1]: {0, 1}}}


def seed_samples(refused: dict[int, set[int]]) -> dict[int, list[Sample]]:
    """Judged answers to SAMPLE_PROMPTS at each step of `refused` (step -> the prompts refused there): synthetic
    texts, for the tests of the samples views."""
    return {
        step: [
            Sample(
                prompt_set="harmful",
                prompt_id=str(i),
                prompt=prompt,
                answer="I can't help with that." if i in refusing else f"Sure: step {step}, answer {i}.",
                judge="refusal-matcher",
                judge_version="1",
                verdict="refused" if i in refusing else "answered",
                kl=0.1 * i,
            )
            for i, prompt in enumerate(SAMPLE_PROMPTS)
        ]
        for step, refusing in refused.items()
    }


@dataclass
class Seeded:
    """What was written: ids, keys and the per-run refusal series (to check a page's numbers against)."""

    database_url: str
    read_key: str
    submit_key: str
    sweep_id: str = ""
    rl: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> tags
    finetune: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> tags
    evaluate_id: str = ""
    sampled_ids: list[str] = field(default_factory=list)  # the fine-tuning runs with samples: GRPO's, then FRPO's
    failed_id: str = ""
    refusal: dict[str, dict[int, float]] = field(default_factory=dict)  # finetune id -> step -> value

    def finetune_ids(self) -> list[str]:
        return list(self.finetune)

    def expected_before_after(self) -> dict[str, tuple[float, float, float]]:
        """Per group label: (mean before, mean after, mean drop) over its runs, computed straight from the seed."""
        groups: dict[str, list[tuple[float, float]]] = {}
        for run_id, tags in self.finetune.items():
            series = self.refusal[run_id]
            label = group_label(tags["method"], tags["lamb"])
            groups.setdefault(label, []).append((series[min(series)], series[max(series)]))
        return {
            label: (
                sum(b for b, _ in pairs) / len(pairs),
                sum(a for _, a in pairs) / len(pairs),
                sum(b - a for b, a in pairs) / len(pairs),
            )
            for label, pairs in groups.items()
        }


def _finish(run: Run, start) -> None:
    run.status, run.progress, run.eta_seconds = RunStatus.succeeded, 1.0, 0.0
    run.attempts, run.started_at, run.finished_at = 1, start, start + timedelta(minutes=3)


def _artifact(session, run: Run, name: str) -> None:
    path = f"/data/runs/{run.id}/{name}"
    record_artifact(session, run.id, "model", path, 560_000, hashlib.sha256(path.encode()).hexdigest(), None)


def seed(database_url: str, *, runs: bool = True, with_failed: bool = False) -> Seeded:
    """Migrate a fresh database and write keys, and (if `runs`) the sweep, RL runs and fine-tuning runs."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            seeded = Seeded(
                database_url,
                read_key=create_api_key(session, "dashboard", "read"),
                submit_key=create_api_key(session, "dashboard-tests", "submit"),
            )
            if not runs:
                return seeded
            now = utcnow() - timedelta(hours=2)
            base = TrainSpec(max_steps=len(RL_STEPS))
            sweep = Sweep(
                name="lambda-grid",
                base_spec=base.model_dump(mode="json"),
                grid={"lamb": list(LAMBS), "seed": list(SEEDS)},
                created_at=now,
            )
            session.add(sweep)
            session.flush()
            seeded.sweep_id = str(sweep.id)
            tick = 0
            for lamb in LAMBS:
                for method in METHODS:
                    for s in SEEDS:
                        tick += 1
                        spec = TrainSpec(method=method, lamb=lamb, seed=s, max_steps=len(RL_STEPS))
                        rl = create_run(session, spec, sweep_id=sweep.id, extra_tags={"sweep": sweep.name})
                        rl.created_at = now + timedelta(seconds=tick)
                        _finish(rl, rl.created_at)
                        _artifact(session, rl, "final")
                        add_event(session, rl.id, "claimed by worker seed-worker", worker="seed-worker")
                        add_event(session, rl.id, "succeeded")
                        write_points(session, rl.id, rl_points(method, lamb, s))
                        seeded.rl[str(rl.id)] = dict(rl.tags)
                        ft = create_run(session, FinetuneSpec(parent_id=rl.id, max_steps=100), parent=rl)
                        ft.created_at = now + timedelta(minutes=30, seconds=tick)
                        _finish(ft, ft.created_at)
                        _artifact(session, ft, "final")
                        add_event(session, ft.id, "succeeded")
                        points = finetune_points(method, lamb, s)
                        write_points(session, ft.id, points)
                        seeded.finetune[str(ft.id)] = dict(ft.tags)
                        seeded.refusal[str(ft.id)] = {st: v for k, st, v in points if k == "eval/refusal_rate"}
            first_ft = session.get(Run, uuid.UUID(seeded.finetune_ids()[0]))
            for (label, s), refused in SAMPLED.items():  # the first run of each (group, seed): GRPO's is the first
                run_id = next(
                    i
                    for i, t in seeded.finetune.items()
                    if (group_label(t["method"], t["lamb"]), t["seed"]) == (label, s)
                )
                seeded.sampled_ids.append(run_id)
                for step, sample_list in seed_samples(refused).items():
                    write_samples(session, uuid.UUID(run_id), step, sample_list)
            evaluate = create_run(session, EvaluateSpec(run_id=first_ft.id), parent=first_ft)
            evaluate.created_at = now + timedelta(hours=1)
            _finish(evaluate, evaluate.created_at)
            write_points(session, evaluate.id, [("eval/refusal_rate", 0, 0.5), ("eval/kl_safety", 0, 3.0)])
            seeded.evaluate_id = str(evaluate.id)
            if with_failed:  # a broken run whose zeros would wreck the FRPO λ=0.5 mean if it were counted
                parent = next(r for r, t in seeded.rl.items() if t["method"] == "frpo" and t["lamb"] == 0.5)
                failed = create_run(
                    session, FinetuneSpec(parent_id=uuid.UUID(parent)), parent=session.get(Run, uuid.UUID(parent))
                )
                failed.status, failed.error = RunStatus.failed, "RuntimeError: out of memory"
                failed.created_at = now + timedelta(minutes=50)
                write_points(session, failed.id, [("eval/refusal_rate", st, 0.0) for st in FT_STEPS])
                seeded.failed_id = str(failed.id)
            return seeded
    finally:
        engine.dispose()


# The frontier seed (docs/method.md §7): GRPO at three step budgets traces a frontier of (KL moved in RL, refusal after
# fine-tuning); FRPO λ=0.5 lies well above it at a KL inside GRPO's range, FRPO λ=2 moved further than any GRPO budget.
FRONTIER_GRPO = {60: (0.30, 0.40), 120: (0.50, 0.50), 180: (0.70, 0.55)}  # max_steps -> (KL moved, refusal after)
FRONTIER_FRPO = {0.5: (0.50, 0.65), 2.0: (0.90, 0.60)}  # λ -> (KL moved, refusal after), at 120 steps
# Dr. GRPO at the same budgets, for the `baselines` sweep: a higher frontier than GRPO's, still below FRPO λ=0.5.
FRONTIER_DR_GRPO = {60: (0.35, 0.50), 120: (0.55, 0.58), 180: (0.75, 0.62)}
FRONTIER_STEPS = 60  # downstream fine-tuning steps; evaluated at 0 and at the end
REFUSAL_AFTER_RL = 0.95


@dataclass
class FrontierSeeded:
    """The frontier seed: sweeps by name, and each pipeline's numbers as written."""

    database_url: str
    read_key: str
    sweeps: dict[str, str] = field(default_factory=dict)  # name -> id
    # sweep name -> [(method, λ or None, RL max_steps, seed, KL moved, refusal after fine-tuning)]
    pipelines: dict[str, list[tuple[str, float | None, int, int, float, float]]] = field(default_factory=dict)

    def points(
        self, sweep: str, baseline: str = "grpo"
    ) -> tuple[dict[str, list[tuple[float, float]]], dict[str, list[tuple[float, float]]]]:
        """(the baseline's points by max_steps, every other setting's: FRPO's by λ, another baseline's by budget):
        what `analysis.verdict.compare` is given for this sweep."""
        frontier: dict[str, list[tuple[float, float]]] = {}
        others: dict[str, list[tuple[float, float]]] = {}
        for method, lamb, steps, _, kl, after in self.pipelines[sweep]:
            if method == baseline:
                target = frontier.setdefault(f"steps {steps}", [])
            elif method == "frpo":
                target = others.setdefault(f"FRPO λ={lamb:g}", [])
            else:
                target = others.setdefault(f"{method_name(method)} (steps {steps})", [])
            target.append((kl, after))
        return frontier, others


def _frontier_pipeline(
    session,
    sweep: Sweep,
    method: str,
    lamb: float,
    steps: int,
    s: int,
    kl: float,
    after: float,
    *,
    at,
    with_kl: bool = True,
) -> None:
    """One RL run (logging `eval/kl_safety` half-way and at its end) and its fine-tuning run (refusal, StrongREJECT
    and helpfulness at step 0 and at its end), both in `sweep` and succeeded."""
    rl = create_run(session, TrainSpec(method=method, lamb=lamb, seed=s, max_steps=steps), sweep_id=sweep.id)
    rl.created_at = at
    _finish(rl, at)
    points = [("reward", step, 0.5 + step / (2 * steps)) for step in range(1, steps + 1, 10)]
    if with_kl:
        points += [("eval/kl_safety", steps // 2, round(kl / 2, 6)), ("eval/kl_safety", steps, kl)]
    write_points(session, rl.id, points)
    ft = create_run(session, FinetuneSpec(parent_id=rl.id, max_steps=FRONTIER_STEPS), sweep_id=sweep.id, parent=rl)
    ft.created_at = at + timedelta(minutes=10)
    _finish(ft, ft.created_at)
    write_points(
        session,
        ft.id,
        [
            point
            for step, refused in ((0, REFUSAL_AFTER_RL), (FRONTIER_STEPS, after))
            for point in (
                ("eval/refusal_rate", step, refused),
                ("eval/strongreject", step, round(0.8 * (1 - refused), 6)),
                ("eval/reward_normal", step, 0.7),
            )
        ],
    )


FRONTIER_BASELINES = {"grpo": FRONTIER_GRPO, "dr_grpo": FRONTIER_DR_GRPO}  # method -> max_steps -> (KL, refusal)


def seed_frontier(database_url: str) -> FrontierSeeded:
    """Migrate a fresh database and write five pipeline sweeps: `frontier` (GRPO at 3 budgets × 3 seeds, FRPO at
    2 λ × 3 seeds), `baselines` (GRPO and Dr. GRPO at 3 budgets × 3 seeds, FRPO λ=0.5 × 3 seeds), `one-budget` (GRPO
    at one budget), `frpo-only` (no GRPO) and `no-eval` (RL runs without `eval`, so no `eval/kl_safety`)."""
    upgrade(database_url)
    engine = make_engine(database_url)
    plans = {
        "no-eval": [("grpo", None, 120, 0), ("frpo", 0.5, 120, 0)],
        "frpo-only": [("frpo", 0.5, 120, s) for s in SEEDS],
        "one-budget": [("grpo", None, 120, s) for s in SEEDS] + [("frpo", 2.0, 120, s) for s in SEEDS],
        "baselines": [
            (method, None, steps, s) for method in FRONTIER_BASELINES for steps in FRONTIER_GRPO for s in SEEDS
        ]
        + [("frpo", 0.5, 120, s) for s in SEEDS],
        "frontier": [("grpo", None, steps, s) for steps in FRONTIER_GRPO for s in SEEDS]
        + [("frpo", lamb, 120, s) for lamb in FRONTIER_FRPO for s in SEEDS],
    }
    try:
        with session_scope(engine) as session:
            seeded = FrontierSeeded(database_url, read_key=create_api_key(session, "dashboard", "read"))
            now = utcnow() - timedelta(hours=2)
            for i, (name, plan) in enumerate(plans.items()):  # the last, `frontier`, is the newest sweep
                sweep = Sweep(name=name, base_spec={}, grid={"seed": list(SEEDS)}, created_at=now + timedelta(hours=i))
                session.add(sweep)
                session.flush()
                seeded.sweeps[name] = str(sweep.id)
                seeded.pipelines[name] = []
                for j, (method, lamb, steps, s) in enumerate(plan):
                    kl, after = FRONTIER_BASELINES[method][steps] if lamb is None else FRONTIER_FRPO[lamb]
                    kl, after = round(kl + 0.01 * (s - 1), 6), round(after + 0.01 * ((2 * s) % 3 - 1), 6)
                    at = now + timedelta(hours=i, seconds=j)
                    _frontier_pipeline(
                        session, sweep, method, lamb or 1.0, steps, s, kl, after, at=at, with_kl=name != "no-eval"
                    )
                    seeded.pipelines[name].append((method, lamb, steps, s, kl, after))
            return seeded
    finally:
        engine.dispose()


# The math seed (the paper's math setting at toy scale): the `toy-math-frontier` sweep as the store creates it (FRPO at
# λ ∈ {0.2, 1} and GRPO at 40, 80 and 160 steps, × 3 seeds; each RL run → code SFT, with toy_arith and toy_humaneval
# scored before and after the SFT), every run succeeded. The code SFT costs GRPO more toy_arith accuracy than FRPO
# and gains everyone toy_humaneval. One after-evaluation logged no toy_humaneval (shown "not measured", never 0).
# Beside it: an older sweep whose pipelines skip `evaluate_before`, and a standalone evaluation of the warm start.
ARITH = "toy_arith/exact_match/last_number"
CODE = "toy_humaneval/pass@1"
ARITH_STDERR = 0.02
MATH_BEFORE = {("grpo", 40): 0.30, ("grpo", 80): 0.36, ("grpo", 160): 0.42, ("frpo", 0.2): 0.38, ("frpo", 1.0): 0.40}
MATH_LOSS = {("grpo", 40): 0.12, ("grpo", 80): 0.15, ("grpo", 160): 0.20, ("frpo", 0.2): 0.04, ("frpo", 1.0): 0.08}
CODE_BEFORE = 0.05
CODE_GAIN = {("grpo", 40): 0.16, ("grpo", 80): 0.18, ("grpo", 160): 0.20, ("frpo", 0.2): 0.17, ("frpo", 1.0): 0.19}
NO_CODE_AFTER = ("grpo", 160, 2)  # (method, steps, seed) whose after-evaluation logged no toy_humaneval
WARM_START_ARITH = 0.12


def math_setting(tags: dict[str, Any]) -> tuple[str, float]:
    """("grpo", its max_steps) or ("frpo", its λ): the keys of MATH_BEFORE and MATH_LOSS."""
    return ("grpo", tags["max_steps"]) if tags["method"] == "grpo" else ("frpo", tags["lamb"])


def bench_scores(tags: dict[str, Any]) -> dict[str, float]:
    """What a pipeline's evaluation run scored: toy_arith drops by its setting's loss after the code SFT, toy_humaneval
    rises by its gain; seeds 0, 1, 2 add -0.01, 0, +0.01 (so a setting's mean over its seeds is the tables' number)."""
    after = tags["evaluates"] == "after_finetune"
    setting, noise = math_setting(tags), 0.01 * (tags["seed"] - 1)
    scores = {
        ARITH: round(MATH_BEFORE[setting] - (MATH_LOSS[setting] if after else 0.0) + noise, 6),
        CODE: round(CODE_BEFORE + (CODE_GAIN[setting] if after else 0.0) + noise, 6),
    }
    if after and (tags["method"], tags["max_steps"], tags["seed"]) == NO_CODE_AFTER:
        del scores[CODE]
    return scores


def bench_points(scores: dict[str, float]) -> list[tuple[str, int, float]]:
    """`bench/<metric>` at step 0, and lm-eval's standard error beside toy_arith (code sets report none)."""
    points = [(f"bench/{metric}", 0, value) for metric, value in scores.items()]
    if ARITH in scores:
        points.append((f"bench/{ARITH}_stderr", 0, ARITH_STDERR))
    return points


@dataclass
class MathSeeded:
    """The math seed: sweeps by name, every evaluation run's tags and scores, and the standalone evaluation."""

    database_url: str
    read_key: str
    sweeps: dict[str, str] = field(default_factory=dict)  # name -> id
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)  # evaluate run id -> tags
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # evaluate run id -> metric -> value
    standalone_id: str = ""

    def evaluation_ids(self, sweep: str) -> list[str]:
        return [i for i, tags in self.evaluations.items() if tags.get("sweep") == sweep]


def _math_sweep(session, spec: dict[str, Any], at, seeded: MathSeeded) -> None:
    """Create a pipeline sweep as the API would, then finish every run and score its evaluation runs."""
    sweep, _ = create_sweep(session, SweepSpec.model_validate(spec))
    sweep.created_at = at
    seeded.sweeps[sweep.name] = str(sweep.id)
    for run in get_sweep(session, sweep.id)[1]:
        _finish(run, at)
        if run.kind.value == "evaluate":
            seeded.evaluations[str(run.id)] = dict(run.tags)
            seeded.scores[str(run.id)] = bench_scores(run.tags)
            write_points(session, run.id, bench_points(seeded.scores[str(run.id)]))
        else:
            _artifact(session, run, "final")


def seed_math(database_url: str) -> MathSeeded:
    """Migrate a fresh database and write the math seed (see MATH_BEFORE): the warm start, `toy math, after only`
    (FRPO λ=1 and GRPO × 2 seeds, no `evaluate_before`), the newer `toy math frontier`, and the standalone
    evaluation of the warm start on toy_arith."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            seeded = MathSeeded(database_url, read_key=create_api_key(session, "dashboard", "read"))
            now = utcnow() - timedelta(hours=3)
            warm = create_run(session, FinetuneSpec.model_validate({"preset": "toy-math-warm-start"}))
            _finish(warm, now)
            _artifact(session, warm, "final")
            train = {"parent_id": str(warm.id)}
            after_only = {"kind": "pipeline", "preset": "toy-math-pipeline", "evaluate_before": False, "train": train}
            _math_sweep(
                session,
                {"name": "toy math, after only", "base": after_only, "grid": {"lamb": [1.0], "seed": [0, 1]}},
                now + timedelta(hours=1),
                seeded,
            )
            _math_sweep(
                session, {"preset": "toy-math-frontier", "base": {"train": train}}, now + timedelta(hours=2), seeded
            )
            standalone = create_run(session, EvaluateSpec(run_id=warm.id, benchmarks=["toy_arith"]), parent=warm)
            _finish(standalone, now + timedelta(hours=2, minutes=30))
            write_points(session, standalone.id, bench_points({ARITH: WARM_START_ARITH}))
            seeded.standalone_id = str(standalone.id)
            return seeded
    finally:
        engine.dispose()


class Enqueued:
    """Stands in for the broker (as in tests/api): records what the API would have enqueued."""

    def __init__(self) -> None:
        self.calls: list[tuple[uuid.UUID, str]] = []

    def __call__(self, run_id: uuid.UUID, queue: str) -> None:
        self.calls.append((run_id, queue))


@contextmanager
def serve_api(database_url: str, data_dir: Path) -> Iterator[str]:
    """The real API on uvicorn, in a thread of this process, on a free port; yields its base URL."""
    settings = Settings(data_dir=data_dir, database_url=database_url, model_roots=[data_dir], broker_url="memory://")
    engine = make_engine(database_url)
    app = create_app(settings=settings, engine=engine, enqueue=Enqueued(), broker_check=lambda: None)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name=f"api-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: server.started, timeout=30, interval=0.05, what="the API to start")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


@contextmanager
def streamlit_server(api_url: str, api_key: str, log_path: Path, app: Path | None = None) -> Iterator[str]:
    """`streamlit run dashboard/app.py` (or `app`) on 127.0.0.1 (a process group of its own, killed on the way out)."""
    port = free_port()
    env = {**os.environ, "FRPO_API_URL": api_url, "FRPO_DASHBOARD_API_KEY": api_key}
    env.pop("FRPO_API_KEY", None)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app or ROOT / "dashboard" / "app.py"),
        "--server.headless=true",
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--global.developmentMode=false",
        "--client.toolbarMode=viewer",
    ]
    url = f"http://127.0.0.1:{port}"
    with background(command, log_path, env, cwd=ROOT) as process:
        wait_for(
            lambda: process.poll() is not None or responds(f"{url}/_stcore/health"),
            timeout=60,
            what="streamlit to serve",
        )
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        yield url


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium, headless, driven by playwright (no browser download: `executable_path`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def chromium_profile(playwright: Any, user_data_dir: Path) -> Iterator[Any]:
    """Debian's chromium with a profile on disk (its HTTP and code caches kept), as a person's browser is;
    `playwright` is a started `sync_playwright()`."""
    context = playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": 1400, "height": 1000},
    )
    try:
        yield context
    finally:
        context.close()


# The first chart is drawn when plotly has put its SVG in the first `.js-plotly-plot`; performance.now() is then the
# time since navigation started (the browser's own clock).
FIRST_CHART_JS = """() => {
  const plot = document.querySelector('.js-plotly-plot');
  return plot && plot.querySelector('.main-svg') && plot.data && plot.data.length ? performance.now() : null;
}"""
TRACE_NAMES_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
  .map(plot => (plot.data || []).map(trace => trace.name))"""


def compare_url(base: str, run_ids: list[str]) -> str:
    return f"{base}/?runs={','.join(run_ids)}"


def first_chart_ms(page: Any, url: str, timeout_ms: int = 60_000) -> float:
    """Load `url` in `page` and return the milliseconds from navigation start to the first drawn chart."""
    page.goto(url, wait_until="commit")
    handle = page.wait_for_function(FIRST_CHART_JS, timeout=timeout_ms, polling=20)
    return float(handle.json_value())


def wait_quiet(page: Any, charts: int, timeout_ms: int = 60_000) -> None:
    """Wait until `charts` plots are drawn and Streamlit has stopped running the script."""
    page.wait_for_function(
        f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}", timeout=timeout_ms
    )
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms, polling=100
    )
    time.sleep(0.5)  # let plotly finish its transitions before a screenshot
