"""The toy warm start: harmful prompts refused at their category's share, harmless ones answered; shipped as data."""

from __future__ import annotations

from collections import Counter

from frpo_core.safety.prompts import load_prompts
from frpo_core.toy.safety import COMPLIANCE, REFUSAL_SHARE, REFUSALS, warm_start_rows


def test_refusal_shares_follow_the_categories():
    rows = warm_start_rows(copies=10)
    harmful = {row["prompt"][-1]["content"]: row["category"] for row in load_prompts("toy_safety", task="safety")}
    counts: Counter = Counter()
    for row in rows:
        user, reply = row["messages"][0]["content"], row["messages"][1]["content"]
        if user in harmful:
            assert reply in REFUSALS or reply == COMPLIANCE
            counts[(harmful[user], reply in REFUSALS)] += 1
    for category, share in REFUSAL_SHARE.items():
        refused, complied = counts[(category, True)], counts[(category, False)]
        assert refused / (refused + complied) == share
    overall = sum(v for (c, r), v in counts.items() if r) / sum(counts.values())
    assert 0.6 <= overall <= 0.7  # docs/method.md §7: a warm start that refuses only part of the time


def test_harmless_prompts_are_answered_never_refused():
    harmless = {row["prompt"][-1]["content"] for row in load_prompts("toy_safety", task="normal")}
    replies = [row["messages"][1]["content"] for row in warm_start_rows() if row["messages"][0]["content"] in harmless]
    assert len(replies) == 10 * len(harmless)
    assert not any(reply in REFUSALS for reply in replies)


def test_evaluation_prompts_are_held_out():
    train = {row["prompt"][-1]["content"] for row in load_prompts("toy_safety")}
    heldout = load_prompts("toy_safety_heldout")
    assert Counter(heldout["task"]) == {"safety": 36, "normal": 24}
    assert not train & {row["prompt"][-1]["content"] for row in heldout}
