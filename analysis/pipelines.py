"""What a safety pipeline (RL → downstream fine-tuning) measured, per run and per group of seeds.

A pipeline's numbers come from two runs' evaluation series: the RL run's last evaluation (refusal after RL and the KL
it moved from the model it started from, docs/method.md §7) and the fine-tuning run's first and last evaluations
(refusal before and after downstream fine-tuning, and over-refusal of harmless prompts at the end). Groups are (method,
λ): the seeds of one setting, summarised by mean, standard deviation and range.

A baseline's step budgets may be points along one run (a sweep's `grpo_budgets.checkpoints`): each fine-tuning run
then starts from the RL run's checkpoint at a step (its `parent_step` tag), and that pipeline's KL moved is the RL
run's evaluation at that step, not its last. Such a point is (run, step), labelled "GRPO @60 (one run)".

Where the runs logged the sampled measures (`eval/kl_safety_sampled`, `eval/refusal_prob`, `eval/refusal_prob_normal`:
the unbiased KL estimate on sampled answers and the refusal probability under sampling), they are read instead of the
greedy ones (`eval/kl_safety`, `eval/refusal_rate`, `eval/refusal_rate_normal`), which older runs logged alone; each
result says which it read (:attr:`PipelineResult.measure`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

Series = Mapping[str, Sequence[tuple[int, float]]]  # metric key -> [(step, value)], steps ascending
Budget = tuple[tuple[str, float | str], ...]  # (part, value): ("steps", 60), ("β", 0.05), ("scale", "group"), …

SAMPLED, GREEDY = "sampled", "greedy"
# greedy key -> its sampled counterpart (logged beside it by runs with `eval.samples` > 0)
SAMPLED_KEYS = {
    "eval/kl_safety": "eval/kl_safety_sampled",
    "eval/refusal_rate": "eval/refusal_prob",
    "eval/refusal_rate_normal": "eval/refusal_prob_normal",
}


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation (0 for one value) and range of one quantity over seeds."""

    mean: float
    sd: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        kept = [v for v in values if v is not None and math.isfinite(v)]
        if not kept:
            return cls(math.nan, math.nan, math.nan, math.nan, 0)
        sd = statistics.stdev(kept) if len(kept) > 1 else 0.0
        return cls(statistics.fmean(kept), sd, min(kept), max(kept), len(kept))

    def format(self, digits: int = 2) -> str:
        if self.n == 0:
            return "–"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f}"


@dataclass(frozen=True)
class PipelineResult:
    """One seed of one setting: the RL run and the fine-tuning run that started from it."""

    method: str
    lamb: float | None
    seed: int
    kl_moved: float | None  # KL of the RL policy from its starting model, on harmful prompts (last RL evaluation)
    refusal_after_rl: float | None  # fine-tuning's step-0 evaluation (the RL policy on the evaluation prompts)
    refusal_after_finetune: float | None  # fine-tuning's last evaluation
    over_refusal_after_finetune: float | None  # refusal of harmless prompts at the end
    budget: Budget = ()  # the RL run's (steps or @step, β, lr, scaling): GRPO's budgets trace its frontier
    strongreject_after_finetune: float | None = None
    helpfulness_after_finetune: float | None = None
    measure: str = GREEDY  # what KL and refusal were read from: SAMPLED, GREEDY or "KL sampled, refusal greedy" …

    @property
    def drop(self) -> float | None:
        if self.refusal_after_rl is None or self.refusal_after_finetune is None:
            return None
        return self.refusal_after_rl - self.refusal_after_finetune


def first(series: Series, key: str) -> float | None:
    points = series.get(key) or ()
    return points[0][1] if points else None


def last(series: Series, key: str) -> float | None:
    points = series.get(key) or ()
    return points[-1][1] if points else None


def at(series: Series, key: str, step: int) -> float | None:
    """The value logged at `step`, if one was."""
    return next((value for logged, value in series.get(key) or () if logged == step), None)


def _read(series: Series, greedy_key: str) -> tuple[str, str]:
    """(the key to read, SAMPLED or GREEDY): the sampled counterpart of ``greedy_key`` where the run logged it."""
    sampled_key = SAMPLED_KEYS[greedy_key]
    return (sampled_key, SAMPLED) if series.get(sampled_key) else (greedy_key, GREEDY)


def pipeline_result(tags: Mapping, rl: Series, finetune: Series, step: int | None = None) -> PipelineResult:
    """A pipeline's numbers from its runs' tags and evaluation series (``eval/*`` keys): the sampled KL and refusal
    where the runs logged them, else the greedy ones, the choice in ``measure``. With `step` (the fine-tuning run's
    `parent_step`: it started from the RL run's checkpoint there), the KL moved is the RL run's evaluation at that
    step and the budget is that step of the run."""
    kl_key, kl_measure = _read(rl, "eval/kl_safety")
    refusal_key, refusal_measure = _read(finetune, "eval/refusal_rate")
    over_refusal_key = (
        SAMPLED_KEYS["eval/refusal_rate_normal"] if refusal_measure == SAMPLED else "eval/refusal_rate_normal"
    )
    return PipelineResult(
        method=str(tags.get("method")),
        lamb=tags.get("lamb"),
        seed=int(tags.get("seed", 0)),
        kl_moved=last(rl, kl_key) if step is None else at(rl, kl_key, step),
        refusal_after_rl=first(finetune, refusal_key),
        refusal_after_finetune=last(finetune, refusal_key),
        over_refusal_after_finetune=last(finetune, over_refusal_key),
        budget=budget_of(tags, step),
        strongreject_after_finetune=last(finetune, "eval/strongreject"),
        helpfulness_after_finetune=last(finetune, "eval/reward_normal"),
        measure=kl_measure if kl_measure == refusal_measure else f"KL {kl_measure}, refusal {refusal_measure}",
    )


BUDGET_TAGS = (("max_steps", "steps"), ("beta", "β"), ("learning_rate", "lr"), ("scale_rewards", "scale"))
AT_STEP = "@"  # a budget part: the step of one run a point was taken at (instead of its own run's "steps")


def budget_of(tags: Mapping, step: int | None = None) -> Budget:
    """The RL budget a run was given: GRPO runs at different budgets are different points of its frontier. With
    `step`, the point is that step along the run: its steps part is the step ("@")."""
    parts = [(name, _budget_value(tags[key])) for key, name in BUDGET_TAGS if tags.get(key) is not None]
    if step is not None:
        parts = [(AT_STEP, float(step)), *(part for part in parts if part[0] != "steps")]
    return tuple(parts)


def _budget_value(value: object) -> float | str:
    return value if isinstance(value, str) else float(value)


def budget_label(budget: Budget, only: set[str] | None = None) -> str:
    """``"steps 60, β 0.05"``, ``"@60 (one run), β 0"``; with ``only``, just those parts (the ones that differ
    between runs)."""
    return ", ".join(_part(name, value) for name, value in budget if only is None or name in only)


def _part(name: str, value: float | str) -> str:
    if name == AT_STEP:
        return f"@{value:g} (one run)"
    return f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}"


def labelled(name: str, budget: str) -> str:
    """A method's name with its budget: "GRPO (steps 60)", "GRPO @60 (one run)", or the name alone."""
    if not budget:
        return name
    return f"{name} {budget}" if budget.startswith(AT_STEP) else f"{name} ({budget})"


def varying(budgets: Iterable[Budget]) -> set[str]:
    """The budget parts that take more than one value among ``budgets``."""
    values: dict[str, set[float | str]] = {}
    for budget in budgets:
        for name, value in budget:
            values.setdefault(name, set()).add(value)
    return {name for name, seen in values.items() if len(seen) > 1}


METHOD_NAMES = {
    "frpo": "FRPO",
    "grpo": "GRPO",
    "dr_grpo": "Dr. GRPO",
    "dapo": "DAPO",
    "bnpo": "BNPO",
    "cispo": "CISPO",
    "sapo": "SAPO",
    "luspo": "LUSPO",
    "vespo": "VESPO",
}  # the loss types a run's `method` tag may hold: FRPO and TRL's, each baseline named as its paper does


def method_name(method: str, lamb: float | None = None) -> str:
    """ "FRPO λ=0.5", "GRPO", "Dr. GRPO", …: what a person reads for a run's method."""
    if method == "frpo" and lamb is not None:
        return f"FRPO λ={lamb:g}"
    return METHOD_NAMES.get(method, method.upper() or "unknown method")


@dataclass(frozen=True)
class Setting:
    """What seeds are averaged within: (method, λ) and, where a baseline was given several budgets, the budget."""

    method: str
    lamb: float | None
    budget: str

    @property
    def label(self) -> str:
        return labelled(method_name(self.method, self.lamb), self.budget)


class _Seeded(Protocol):
    """What :func:`by_setting` reads of a result (PipelineResult, BenchmarkScore)."""

    @property
    def method(self) -> str: ...
    @property
    def lamb(self) -> float | None: ...
    @property
    def budget(self) -> Budget: ...


T = TypeVar("T", bound=_Seeded)


def by_setting(results: Iterable[T]) -> list[tuple[Setting, list[T]]]:
    """Results grouped by setting: GRPO first, the other baselines by name (each by budget, where its own budgets
    differ), then FRPO by increasing λ."""
    results = list(results)
    methods = {r.method for r in results}
    differ = {method: varying(r.budget for r in results if r.method == method) for method in methods}
    groups: dict[tuple[str, float, Budget], list[T]] = {}
    for r in results:
        frpo = r.method == "frpo"
        budget = () if frpo else tuple(part for part in r.budget if part[0] in differ[r.method])
        groups.setdefault((r.method, (r.lamb or 0.0) if frpo else 0.0, budget), []).append(r)
    return [
        (Setting(method, lamb if method == "frpo" else None, budget_label(budget)), members)
        for (method, lamb, budget), members in sorted(groups.items(), key=_setting_order)
    ]


def _setting_order(item: tuple[tuple[str, float, tuple], list]) -> tuple:
    """GRPO first, then the other baselines by name, then FRPO (by λ); budgets in order within each."""
    method, lamb, budget = item[0]
    return (method != "grpo", method == "frpo", method, lamb, budget)


@dataclass(frozen=True)
class GroupSummary:
    """One setting over its seeds."""

    setting: Setting
    seeds: int
    refusal_after_rl: Spread
    refusal_after_finetune: Spread
    drop: Spread
    kl_moved: Spread
    over_refusal_after_finetune: Spread

    @property
    def label(self) -> str:
        return self.setting.label


def summarise(results: Iterable[PipelineResult]) -> list[GroupSummary]:
    """One summary per setting (see :func:`by_setting`), mean and spread over its seeds."""
    return [
        GroupSummary(
            setting=setting,
            seeds=len(members),
            refusal_after_rl=Spread.of(r.refusal_after_rl for r in members),
            refusal_after_finetune=Spread.of(r.refusal_after_finetune for r in members),
            drop=Spread.of(r.drop for r in members),
            kl_moved=Spread.of(r.kl_moved for r in members),
            over_refusal_after_finetune=Spread.of(r.over_refusal_after_finetune for r in members),
        )
        for setting, members in by_setting(results)
    ]


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with a rule under the header, columns padded to their widest cell."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_table(summaries: Sequence[GroupSummary]) -> str:
    """A plain-text table: one row per setting, mean ± sd over seeds."""
    header = ("setting", "seeds", "refusal after RL", "after fine-tuning", "drop", "KL moved in RL", "over-refusal")
    rows = [
        (
            s.label,
            str(s.seeds),
            s.refusal_after_rl.format(),
            s.refusal_after_finetune.format(),
            s.drop.format(),
            s.kl_moved.format(),
            s.over_refusal_after_finetune.format(),
        )
        for s in summaries
    ]
    return text_table(header, rows)


def frontier_points(
    results: Iterable[PipelineResult], measure: str = "refusal_after_finetune", reference: str = "grpo"
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, list[tuple[float, float]]]]:
    """(the reference baseline's points by budget, every other setting's) as per-seed (KL moved, measure) pairs, for
    `analysis.verdict.compare`: the reference (GRPO unless another loss type is named) traces the frontier, FRPO's
    settings (by λ) and the other baselines' (by name, and budget where theirs differ) are placed against it.
    Pipelines missing either number are left out."""
    results = list(results)
    differ = baseline_budgets_differ(results, reference)
    frontier: dict[str, list[tuple[float, float]]] = {}
    others: dict[str, list[tuple[float, float]]] = {}
    for result in results:
        value = getattr(result, measure)
        if result.kl_moved is None or value is None:
            continue
        target = frontier if result.method == reference else others
        target.setdefault(point_key(result, reference, differ), []).append((result.kl_moved, value))
    return frontier, others


def baseline_budgets_differ(results: Iterable[PipelineResult], reference: str = "grpo") -> set[str]:
    """The budget parts that differ among the baselines other than the reference (they split those settings)."""
    return varying(r.budget for r in results if r.method not in ("frpo", reference))


def point_key(result: PipelineResult, reference: str, differ: set[str]) -> str:
    """What :func:`frontier_points` files a pipeline under: the reference's budget ("steps 60"), "FRPO λ=0.5", or
    another baseline's name with the budget parts in `differ` ("Dr. GRPO (steps 60)", "Dr. GRPO @60 (one run)")."""
    if result.method == reference:
        return budget_label(result.budget)
    name = method_name(result.method, result.lamb)
    return labelled(name, "" if result.method == "frpo" else budget_label(result.budget, differ))
