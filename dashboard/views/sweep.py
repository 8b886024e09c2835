"""Sweep: how λ trades robustness against helpfulness, with GRPO (λ → ∞) as the reference.

One sweep at a time (`?sweep=<id>`): its RL runs and the fine-tuning runs that started from them.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import aggregate, charts, reads, selection, ui
from dashboard.client import ApiConfig
from frpo_client import Json

FINETUNE_KEYS = ("eval/refusal_rate", "eval/reward_normal")
RL_KEYS = ("robust_reward", "reward", "eval/reward_normal")

INTRO = (
    "Each point is a group of runs of this sweep: FRPO at one λ (log axis), averaged over seeds, with error bars of "
    "± 1 sd over seeds; the dashed line is GRPO, which FRPO approaches as λ → ∞. **Refusal after fine-tuning** is "
    "the refusal rate on harmful prompts at the last evaluated fine-tuning step (higher is safer); the **drop** is "
    "step 0 minus that (smaller is more robust); **helpfulness** is measured on harmless prompts before fine-tuning."
)

# The two per-run scatter charts: (file name, element key, title, subtitle).
TRADEOFF = (
    "robustness helpfulness tradeoff",
    "sweep-tradeoff",
    "The robustness–helpfulness trade-off",
    "small markers = runs, large = mean per group; GRPO marked ✕; up and right is better",
)
PREDICTS = (
    "robust reward vs drop",
    "sweep-robust",
    "Does the robust reward predict robustness?",
    "the robust reward logged at the end of RL training against the refusal drop measured later",
)


def _choose_sweep(config: ApiConfig) -> str | None:
    sweeps = reads.listed_sweeps(config.url, config.key)
    sweep_id = ui.pick("Sweep", ui.sweep_labels(sweeps), param="sweep", key="sweep_pick")
    if sweep_id is not None:
        ui.set_query(sweep=sweep_id)
    return sweep_id


def per_run_table(finetune: list[Json], rl: list[Json], ft_series: dict, rl_series: dict) -> tuple[pd.DataFrame, str]:
    """One row per fine-tuning run: refusal before/after/drop, helpfulness, and its RL parent's robust reward.

    Helpfulness is `eval/reward_normal` before fine-tuning (step 0 of the fine-tuning run, else the RL run's last
    evaluation); when no run measured it, the RL run's final training reward stands in, and the label says so.
    """
    changes = aggregate.per_run_change(aggregate.long_frame(finetune, ft_series, "eval/refusal_rate"))
    parents = selection.parent_of(finetune)
    helpful = aggregate.first_values(finetune, ft_series, "eval/reward_normal")
    rl_helpful = aggregate.last_values(rl, rl_series, "eval/reward_normal")
    label = "helpfulness (harmless prompts)"
    if not helpful and not rl_helpful:
        rl_helpful, label = (
            aggregate.last_values(rl, rl_series, "reward"),
            "final RL reward (helpfulness not measured)",
        )
    robust = aggregate.last_values(rl, rl_series, "robust_reward")
    ids = changes["run_id"]
    changes["helpfulness"] = [helpful.get(i, rl_helpful.get(parents.get(i, ""))) for i in ids]
    changes["robust_reward"] = [robust.get(parents.get(i, "")) for i in ids]
    for column in ("helpfulness", "robust_reward"):
        changes[column] = pd.to_numeric(changes[column], errors="coerce")
    return changes, label


def render() -> None:
    st.title("Sweep: robustness against λ")
    st.markdown(INTRO)
    config = ui.api_config()
    sweep_id = _choose_sweep(config)
    if sweep_id is None:
        st.info(
            "**No sweeps yet.** A sweep runs GRPO and FRPO over a grid of λ and seeds in one submission: submit one "
            'on the **Jobs** page (kind `sweep`), e.g. `{"name": "lambda-grid", "base": {}, "grid": {"lamb": [0.1, '
            '1, 10], "seed": [0, 1, 2]}}`.'
        )
        return
    left, right = st.columns(2)
    ui.view_link("frontier", {"sweep": sweep_id}, left)
    ui.view_link("capability", {"sweep": sweep_id}, right)
    runs = reads.runs_of(config.url, config.key, (), sweep_id)
    finetune, rl = selection.split(runs)
    st.caption(f"{len(rl)} RL runs and {len(finetune)} fine-tuning runs in this sweep.")
    if not finetune:
        st.info(
            "This sweep's RL runs have not been fine-tuned downstream yet, so robustness is not measured. The charts "
            "appear once fine-tuning runs (children of these runs) log `eval/refusal_rate`."
        )
        return
    ft_series = reads.series(config.url, config.key, reads.ids(finetune), FINETUNE_KEYS)
    rl_series = reads.series(config.url, config.key, reads.ids(rl), RL_KEYS)
    per_run, help_label = per_run_table(finetune, rl, ft_series, rl_series)
    help_title = "helpfulness" if help_label.startswith("helpfulness") else "final RL reward"
    if per_run.empty:
        st.info("Refusal rate: **not measured** yet for this sweep's fine-tuning runs.")
        return
    for column in ("before", "after", "drop"):
        per_run[column] = per_run[column] * 100.0
    summary = aggregate.group_means(per_run, ["after", "drop", "helpfulness", "robust_reward"])

    fig = charts.lambda_figure(
        summary,
        [
            ("after", "refusal after fine-tuning", "%"),
            ("helpfulness", help_title, help_label),
            ("drop", "drop in refusal", "points (before − after)"),
        ],
        title="Robustness and helpfulness against FRPO's λ",
        subtitle="mean over seeds, error bars ± 1 sd; dashed = GRPO",
    )
    ui.chart(fig, "sweep lambda", summary, key="sweep-lambda")

    for x, x_title, y, y_title, (name, key, title, subtitle) in (
        ("helpfulness", help_label, "after", "refusal after fine-tuning (%)", TRADEOFF),
        ("robust_reward", "robust reward at the end of RL training", "drop", "drop in refusal (points)", PREDICTS),
    ):
        if x == "robust_reward" and not per_run[x].notna().any():
            st.caption("Robust reward against drop: **not measured** (the RL runs logged no `robust_reward`).")
            continue
        fig = charts.scatter_figure(per_run, x=x, y=y, title=title, subtitle=subtitle, x_title=x_title, y_title=y_title)
        ui.chart(fig, name, per_run, key=key)

    st.subheader("Per group")
    table = summary.drop(columns=["order", "family"]).assign(group=summary["group"].map(charts.legend_name))
    numbers = {c: st.column_config.NumberColumn(format="%.3g") for c in table.columns if c not in ("group", "method")}
    st.dataframe(table, hide_index=True, width="stretch", column_config=numbers)


if __name__ == "__main__":
    ui.run_page(render)
