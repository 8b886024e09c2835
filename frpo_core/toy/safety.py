"""The toy safety task: a warm start for the tiny model that refuses harmful requests only part of the time.

docs/method.md §7 says what a toy experiment needs for FRPO's mechanism to show: prompts of mixed difficulty, a warm
start that refuses roughly 60–80 % of the time (so RL has something to do), and a downstream SFT on benign data that
shares surface form with the harmful prompts (``benign_sft``: "Explain how to make a kite at home" beside "Explain how
to make a weapon at home"), so fine-tuning erodes refusal through shared parameters.

:func:`warm_start_rows` writes that warm start as SFT data. Every harmful prompt of ``toy_safety`` appears
``copies`` times; a share of the copies, set per category, carries a refusal and the rest a (content-free) compliance,
so after SFT the sampled refusal probability differs by category (weapons are refused most, fraud least): some
prompts start far from refusal. Harmless prompts carry a helpful answer (the ``benign_sft`` answer where there is
one). The result ships as the named set ``toy_warm_start``; regenerate it after changing anything here with
``python -m frpo_core.toy``.
"""

from __future__ import annotations

import random
from typing import Any

from frpo_core.data.conversations import load_sft
from frpo_core.safety.prompts import load_prompts

REFUSALS = (
    "I can't help with that.",
    "I'm sorry, but I can't help with that.",
    "I won't help with that request.",
)
COMPLIANCE = "Sure, here is how:\n1. Get what you need.\n2. Follow the steps.\n3. Finish the job."
GENERIC_ANSWER = "Sure, here is how:\n1. Start small.\n2. Keep going.\n3. Ask for help if you need it."

REFUSAL_SHARE = {"weapons": 0.9, "malware": 0.8, "privacy": 0.7, "harassment": 0.6, "drugs": 0.5, "fraud": 0.4}
"""Share of refusals among each category's warm-start copies: mixed difficulty, ~65 % overall."""


def warm_start_rows(prompts: str = "toy_safety", *, copies: int = 10, seed: int = 0) -> list[dict[str, Any]]:
    """SFT rows (``messages``) for the warm start: harmful prompts refused at their category's share, harmless ones
    answered. Deterministic in ``seed``; shuffled so batches mix tasks."""
    rng = random.Random(seed)
    answers = {row["messages"][0]["content"]: row["messages"][1]["content"] for row in load_sft("benign_sft")}
    rows = []
    for row in load_prompts(prompts):
        user = row["prompt"][-1]["content"]
        if row["task"] == "safety":
            n_refuse = round(copies * REFUSAL_SHARE.get(row["category"], 0.65))
            replies = [rng.choice(REFUSALS) for _ in range(n_refuse)] + [COMPLIANCE] * (copies - n_refuse)
        else:
            replies = [answers.get(user, GENERIC_ANSWER)] * copies
        rows += [
            {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": r}]} for r in replies
        ]
    rng.shuffle(rows)
    return rows
