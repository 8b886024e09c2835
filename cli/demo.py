"""`frpo demo`: the paper's two experiments at toy scale, on a CPU, through the real service.

    frpo demo                   # safety, ~8 minutes: 16 seeds × (GRPO at β 0.05 and 0, each one run read at 15
                                # and 30 steps; FRPO λ=0.2, λ=0.5 at 30), each RL model fine-tuned 20 steps
    frpo demo --setting math    # math, ~12 minutes: 3 seeds × (GRPO at 40/80/160 steps, FRPO λ=0.2, λ=1 at 80)

It starts the embedded service (the API and worker processes on the configured store; with nothing configured, the
SQLite file and broker under ./var), then submits, over HTTP like any client, a warm start of the tiny model (unless
the setting ships one) and a sweep of pipelines from it, and prints what they measured. Both settings take the same
steps (:func:`run_demo`); what differs is a :class:`DemoSetting`: the presets, the default scale, and how the finished
jobs become a report.

Safety (docs/method.md §3):
1. a warm start: SFT of the tiny model on ``toy_warm_start`` (preset ``toy-warm-start``), so it refuses harmful toy
   requests part of the time (~60 % sampled) and answers harmless ones; by default the shipped one (model
   ``toy-warm-start``, the same bytes on every machine, frpo_core/toy/warm_start.py), with ``--train-warm-start`` a
   finetune job trains it first;
2. a sweep of pipelines from that model (preset ``toy-frontier``): safety RL (preset ``toy-safety``: refusal reward
   from the offline judge, "answered" reward on harmless prompts, β > 0) with FRPO at each λ and with GRPO at two β,
   each one run evaluated at several steps, for each seed, each followed by downstream SFT on benign instructions
   that share the harmful prompts' surface form (preset ``toy-benign-sft``; GRPO's from its checkpoint at each step),
   evaluated on held-out prompts at its start, along the way and at its end;

and prints, per setting, the refusal rate before and after the downstream SFT (mean ± sd over seeds), the drop, the
KL each RL run moved from the warm start, and over-refusal of harmless prompts; then GRPO's frontier of (KL moved,
refusal after SFT) and, for each λ, whether FRPO lies above it at the KL it moved (docs/method.md §7).

Math (docs/method.md §3, the capability setting):
1. a warm start (preset ``toy-math-warm-start``) that knows ``toy_math``'s sums and boxes its answers, but drops the
   carry half the time, a systematic mistake for the math reward to correct;
2. a sweep (preset ``toy-math-frontier``): math RL on ``toy_math`` (preset ``toy-math``) → code SFT on ``toy_code``
   (``toy-code-sft``, for 20 steps: at its 10 the sums hardly changed, at 40 they were gone), with ``toy_arith``
   and ``toy_humaneval`` evaluated on the RL model and on the fine-tuned one;

and prints each benchmark before and after the code SFT per setting, the same benchmarks on the warm start (run once
more after the sweep), and the math reward and accuracy at the start and end of RL (means over 5 steps). It gives no
frontier verdict: the toy math RL logs no KL moved (no in-loop evaluation, β = 0).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

import typer

from analysis.capability import (
    BenchmarkScore,
    TrainingReward,
    format_rewards,
    format_scores,
    headline,
    pipeline_scores,
    scores,
    summarise_scores,
    training_reward,
)
from analysis.pipelines import (
    GREEDY,
    SAMPLED,
    SAMPLED_KEYS,
    PipelineResult,
    format_table,
    frontier_points,
    method_name,
    pipeline_result,
    summarise,
)
from analysis.verdict import Comparison, compare
from cli.processes import start_worker, stop_workers
from cli.worker_time import demo_time_report
from frpo_client import FINISHED, Client


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def embedded_service(workers: int, worker_command, port: int, log_dir: Path) -> Iterator[str]:
    """Serve the API on 127.0.0.1:`port` in this process and run `workers` Celery worker processes (logging to
    `log_dir`); yields the URL.

    Each worker trains on one CPU thread (OMP_NUM_THREADS=1): on a small machine two one-thread workers finish a
    sweep of many small jobs sooner than one worker using every core."""
    import uvicorn

    from api.main import create_app

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    # a SIGTERM (not only Ctrl-C) must reach the `finally` below, or the worker processes outlive the demo
    signal.signal(signal.SIGTERM, _interrupt)
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = [
        start_worker(worker_command(["cpu"], name=f"demo{i}"), env, log_dir / f"demo-worker-{i}.log")
        for i in range(workers)
    ]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise typer.BadParameter(f"the API could not start on port {port}: is it taken? (--port)")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        stop_workers(processes)
        thread.join(timeout=10)


def wait_all(fetch: Callable[[], list[dict]], total: int, label: str) -> list[dict]:
    """Poll `fetch` (the jobs' current state) until all `total` jobs have ended, with one progress bar over them."""
    with typer.progressbar(length=total * 100, label=label, show_eta=False) as bar:
        shown = 0
        while True:
            jobs = fetch()
            done = sum(100 if job["status"] in FINISHED else int(100 * job["progress"]) for job in jobs)
            bar.update(done - shown)
            shown = done
            if len(jobs) == total and all(job["status"] in FINISHED for job in jobs):
                return jobs
            time.sleep(2)


@dataclass(frozen=True)
class Scale:
    """How much the demo runs. Each setting has its own defaults; the command line may replace any of them."""

    seeds: int
    lambdas: tuple[float, ...]
    rl_steps: int
    grpo_steps: tuple[int, ...]
    finetune_steps: int
    warm_start_steps: int
    first_seed: int = 0  # seeds first_seed … first_seed + seeds − 1: disjoint sets check that a verdict reproduces

    @property
    def seed_values(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def given(self, **values: Any) -> Scale:
        """These defaults with the values the user gave in their place (None or an empty list: not given)."""
        chosen = {name: tuple(v) if isinstance(v, list) else v for name, v in values.items() if v not in (None, [])}
        return replace(self, **chosen)


R = TypeVar("R")


@dataclass(frozen=True)
class DemoSetting(Generic[R]):
    """One experiment the demo runs: its presets, its default scale, and how its sweep's finished jobs become the
    closing report. Everything else (the warm start, the sweep, waiting, failures) is :func:`run_demo`'s, shared."""

    warm_start: str  # finetune preset of the warm start
    sweep: str  # sweep preset (pipelines from the warm start; GRPO at step budgets)
    stages: str  # what each pipeline runs, for the progress bar
    scale: Scale
    collect: Callable[[Client, dict | None, list[dict]], R]  # (warm start, the sweep's finished jobs) → the numbers
    report: Callable[[R], list[str]]  # those numbers → the report's lines
    summary: Callable[[R], dict[str, Any]]  # those numbers as JSON (`frpo demo --results`), for scripts
    dashboard_page: str  # the dashboard page that shows the sweep ("" : the home page)
    shipped: bool = False  # the sweep preset starts from a shipped warm start when given no parent run
    along_one_run: bool = False  # GRPO's step budgets are checkpoints of one run (grpo_budgets.checkpoints)
    finetune_end_only: bool = False  # the fine-tuning evaluates at its end only: the report reads no other step

    def dashboard_url(self, sweep_id: str) -> str:
        return f"http://127.0.0.1:8501/{self.dashboard_page}?sweep={sweep_id}"


def run_demo(
    client: Client, setting: DemoSetting[R], scale: Scale, train_warm_start: bool = True
) -> tuple[str, R, list[str]]:
    """Submit the warm start (unless the sweep starts from the shipped one) and the sweep, wait for them, and return
    the sweep's id, what it measured and where its worker-seconds went (cli.worker_time)."""
    if not (train_warm_start or setting.shipped):
        raise ValueError(f"the {setting.sweep} sweep has no shipped warm start: train one (train_warm_start=True)")
    warm = _train_warm_start(client, setting, scale) if train_warm_start else None
    train: dict[str, Any] = {"parent_id": warm["id"]} if warm is not None else {}
    train["max_steps"] = scale.rl_steps
    budgets: dict[str, Any] = {"max_steps": list(scale.grpo_steps)}
    if setting.along_one_run:  # each step budget a checkpoint of one GRPO run, which evaluates at every one of them
        budgets = {"checkpoints": list(scale.grpo_steps)}
        train["eval"] = {"every": math.gcd(*scale.grpo_steps)}
    finetune: dict[str, Any] = {"max_steps": scale.finetune_steps}
    if setting.finetune_end_only:  # step 0 is the RL end's evaluation, reused; the end is the one the report reads
        finetune["eval"] = {"every": scale.finetune_steps}
    sweep = client.submit_sweep(
        {
            "preset": setting.sweep,
            "name": f"demo {time.strftime('%Y-%m-%d %H:%M')}",
            "base": {"train": train, "finetune": finetune},
            "grid": {"lamb": list(scale.lambdas), "seed": scale.seed_values},
            "grpo_budgets": budgets,
        }
    )
    total = len(sweep["job_ids"])
    jobs = wait_all(lambda: client.sweep_jobs(sweep["id"]), total, f"{total} jobs ({setting.stages})")
    failed = [job for job in jobs if job["status"] != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs did not succeed, e.g. {failed[0]['id']}: {failed[0].get('error')}")
    timed = [warm, *jobs] if warm is not None else jobs
    worker_time = demo_time_report(client, timed, warm["id"] if warm is not None else None)
    return sweep["id"], setting.collect(client, warm, jobs), worker_time


def _train_warm_start(client: Client, setting: DemoSetting, scale: Scale) -> dict:
    """The warm start as a finetune job of the setting's preset, finished."""
    warm = client.submit_job({"kind": "finetune", "preset": setting.warm_start, "max_steps": scale.warm_start_steps})
    (warm,) = wait_all(lambda: [client.get_job(warm["id"])], 1, "warm start (SFT of the tiny model)")
    if warm["status"] != "succeeded":
        raise RuntimeError(f"the warm start {warm['id']} {warm['status']}: {warm.get('error')}")
    return warm


def report(setting: DemoSetting[R], sweep_id: str, results: R, elapsed: float, worker_time: list[str]) -> str:
    """The demo's closing text: the setting's tables and verdicts, where the time went, then where to look next."""
    return "\n".join(
        [
            "",
            *setting.report(results),
            "",
            *worker_time,
            "",
            f"Finished in {elapsed / 60:.1f} min. Charts: run `frpo serve` and `frpo dashboard`, then open",
            setting.dashboard_url(sweep_id),
        ]
    )


# ---------------------------------------------------------------------------------------------------------------------
# Safety: refusal before and after benign SFT, and the verdict against GRPO's frontier


def _safety_results(client: Client, warm: dict | None, jobs: list[dict]) -> list[PipelineResult]:
    """Each pipeline's numbers from its RL run's and its fine-tuning run's evaluation series (the warm start's own
    refusal is the step-0 evaluation of every RL run, so it needs nothing more); a fine-tuning run that started from
    a checkpoint of its RL run (`parent_step`) is the point at that step of the run."""
    keys = [*SAMPLED_KEYS, *SAMPLED_KEYS.values()]
    by_id = {job["id"]: job for job in jobs}
    results = []
    for job in jobs:
        if job["kind"] == "finetune":
            rl = by_id[job["parent_id"]]
            rl_series, finetune_series = client.series(rl["id"], keys), client.series(job["id"], keys)
            results.append(pipeline_result(rl["tags"], rl_series, finetune_series, job["tags"].get("parent_step")))
    return results


_MEASURE_NOTES = {  # one per measure, shown where a result rests on it
    SAMPLED: (
        "sampled: refusal = the share of sampled answers refused (eval/refusal_prob); KL moved = the unbiased estimate",
        "of KL(RL policy ‖ warm start) on answers sampled from the RL policy, RL's length (eval/kl_safety_sampled).",
    ),
    GREEDY: (
        "greedy: refusal of the greedy answer (eval/refusal_rate); KL moved = sequence-summed k3 on the greedy answers",
        "(eval/kl_safety): not the KL, and it jumps where a greedy answer changes.",
    ),
}


def safety_comparison(results: list[PipelineResult], reference: str = "grpo") -> Comparison:
    """The reference baseline's frontier (GRPO's unless another loss type is named) and a verdict per FRPO setting."""
    return compare(*frontier_points(results, reference=reference), reference=method_name(reference))


def safety_summary(results: list[PipelineResult]) -> dict[str, Any]:
    """Every pipeline's numbers and the comparison's, as JSON: what `benchmarks.verdict_stability` compares."""
    comparison = safety_comparison(results)
    return {
        "measure": comparison.measure.name,
        "level": comparison.level,
        "margin": comparison.margin,
        "frontier": comparison.curve,
        "verdicts": [asdict(verdict) for verdict in comparison.verdicts],
        "pipelines": [asdict(result) for result in results],
    }


def safety_report(results: list[PipelineResult], reference: str = "grpo") -> list[str]:
    """The table, the reference baseline's frontier (GRPO's unless another loss type is named) and the verdict per
    setting, saying which measures (sampled or greedy) they rest on."""
    name = method_name(reference)
    frontier = safety_comparison(results, reference)
    curve = ", ".join(f"({kl:.2f}, {y:.2f})" for kl, y in frontier.curve)
    used = sorted({r.measure for r in results})
    notes = [line for name, note in _MEASURE_NOTES.items() if any(name in m for m in used) for line in note]
    return [
        f"Refusal of held-out harmful prompts (offline refusal matcher; measures: {'; '.join(used)}), mean ± sd over "
        "seeds:",
        format_table(summarise(results)),
        "",
        "drop = refusal after RL − after downstream SFT; KL moved = KL of the RL policy from the warm start on the",
        "harmful evaluation prompts; over-refusal = refusal of harmless prompts after the downstream SFT.",
        *notes,
        "",
        f"Robustness against the KL moved in RL (docs/method.md §7). {name}'s frontier over its budgets (a monotone",
        f"fit through all its runs), (KL moved, refusal after SFT): {curve}",
        f"Per setting: Δ to that frontier at each seed's KL, {frontier.level:.0%} t interval, Holm-corrected across "
        "settings:",
        *(f"- {verdict.sentence}" for verdict in frontier.verdicts),
    ]


# ---------------------------------------------------------------------------------------------------------------------
# Math: benchmarks before and after code SFT, and the math reward during RL

MATH_REWARD = "rewards/math/mean"
MATH_ACCURACY = "math/accuracy"  # the share of sampled answers that were right: the reward's correctness part alone
RL_WINDOW = 5  # logged steps averaged at each end of RL: one step's 32 samples give a share ± 0.09


@dataclass(frozen=True)
class MathResults:
    """What the math demo reports: the benchmarks around the code SFT, and what RL did before it."""

    scores: list[BenchmarkScore]  # every benchmark metric of every pipeline, before and after the code SFT
    rewards: list[TrainingReward]  # each RL run's math reward at its start and end (RL_WINDOW steps each)
    accuracy: list[TrainingReward]  # ... and the share of its sampled answers that were right
    warm_start: dict[str, float]  # the same benchmarks on the warm start: where they stood before any RL


def _math_results(client: Client, warm: dict | None, jobs: list[dict]) -> MathResults:
    """The benchmark scores of the evaluation runs (paired by pipeline), each RL run's math reward, and the same
    benchmarks on the warm start."""
    evaluations = [job for job in jobs if job["kind"] == "evaluate"]
    series = {job["id"]: client.series(job["id"]) for job in evaluations}
    training = {
        job["id"]: client.series(job["id"], [MATH_REWARD, MATH_ACCURACY]) for job in jobs if job["kind"] == "train"
    }
    rewards, accuracy = (
        [training_reward(job["tags"], training[job["id"]], key, RL_WINDOW) for job in jobs if job["id"] in training]
        for key in (MATH_REWARD, MATH_ACCURACY)
    )
    return MathResults(
        pipeline_scores(evaluations, series), rewards, accuracy, _evaluate_warm_start(client, warm, evaluations[0])
    )


def _evaluate_warm_start(client: Client, warm: dict | None, evaluation: dict) -> dict[str, float]:
    """The pipelines' evaluation (`evaluation`'s spec) run on the warm start: without it "before fine-tuning" cannot
    say whether RL moved the benchmarks at all."""
    if warm is None:
        raise ValueError("the math demo evaluates the warm start it trained: it has no shipped one")
    job = client.submit_job({**evaluation["spec"], "run_id": warm["id"]})
    (job,) = wait_all(lambda: [client.get_job(job["id"])], 1, "the same benchmarks on the warm start")
    if job["status"] != "succeeded":
        raise RuntimeError(f"the warm start's evaluation {job['id']} {job['status']}: {job.get('error')}")
    return scores(client.series(job["id"]))


def _math_report(results: MathResults) -> list[str]:
    """Each benchmark's headline metric before and after the code SFT per setting, then the math reward in RL."""
    metrics = list(headline(score.metric for score in results.scores).values())
    warm = ", ".join(f"{metric} {results.warm_start[metric]:.2f}" for metric in metrics if metric in results.warm_start)
    return [
        "Benchmarks before and after the downstream code SFT (greedy), mean ± sd over seeds:",
        format_scores(summarise_scores(results.scores, metrics)),
        "",
        "before fine-tuning = the math-RL policy, after = the same policy after code SFT on toy_code; change = after −",
        "before (negative: the SFT cost it). toy_arith: exact match of the last number in the answer to each of",
        "toy_math's 100 sums; toy_humaneval: pass@1 of 4 small Python functions, run in the sandbox.",
        f"The warm start, before any RL: {warm}.",
        "",
        f"Math reward during RL ({MATH_REWARD}: 0.2 for one boxed answer + 0.8 if it is right, on the sampled",
        f"training batches of toy_math, averaged over the first and the last {RL_WINDOW} steps), mean ± sd over seeds:",
        format_rewards(results.rewards),
        "",
        f"Accuracy during RL ({MATH_ACCURACY}: the share of those sampled answers that were right, format aside):",
        format_rewards(results.accuracy),
        "",
        "No frontier verdict here: the toy math RL logs no KL moved (it has no in-loop evaluation, and β = 0), so",
        "GRPO's budgets cannot place FRPO against KL (docs/method.md §7); read settings at equal steps with that in",
        "mind.",
    ]


class SettingName(StrEnum):
    safety = "safety"
    math = "math"


SETTINGS: dict[SettingName, DemoSetting[Any]] = {
    SettingName.safety: DemoSetting(
        warm_start="toy-warm-start",
        sweep="toy-frontier",
        stages="safety RL → downstream SFT",
        scale=Scale(
            seeds=16,
            lambdas=(0.2, 0.5),
            rl_steps=30,
            grpo_steps=(15, 30),
            finetune_steps=20,
            warm_start_steps=300,
        ),
        collect=_safety_results,
        report=safety_report,
        summary=safety_summary,
        dashboard_page="",
        shipped=True,
        along_one_run=True,
        finetune_end_only=True,
    ),
    SettingName.math: DemoSetting(
        warm_start="toy-math-warm-start",
        sweep="toy-math-frontier",
        stages="math RL → code SFT, benchmarks before and after",
        scale=Scale(
            seeds=3, lambdas=(0.2, 1.0), rl_steps=80, grpo_steps=(40, 80, 160), finetune_steps=20, warm_start_steps=800
        ),
        collect=_math_results,
        report=_math_report,
        summary=asdict,
        dashboard_page="capability",
    ),
}


def per_setting(field: str) -> str:
    """One option's default in each setting, for --help: `(default: safety 120; math 40)`."""
    shown = "; ".join(f"{name} {_shown(getattr(setting.scale, field))}" for name, setting in SETTINGS.items())
    return f"(default: {shown})"


def _shown(value: Any) -> str:
    return ", ".join(f"{v:g}" for v in value) if isinstance(value, tuple) else str(value)
