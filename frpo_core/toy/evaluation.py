"""The toy presets' safety evaluation outside a job: what `toy-safety` and `toy-benign-sft` measure in the loop (36
held-out harmful and 24 harmless toy prompts, the offline refusal matcher, the "answered" helpfulness, 32 greedy
tokens), built in one place for the benchmarks and tests that time or check it directly."""

from __future__ import annotations

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from frpo_core.safety.evaluation import SafetyEvaluator, Sampling, evaluator_for_prompt_set
from frpo_core.safety.judges import RefusalMatcher
from frpo_core.safety.rewards import AnsweredScorer


def toy_safety_evaluator(
    tokenizer: PreTrainedTokenizerBase,
    *,
    reference: PreTrainedModel | None = None,
    batch_size: int = 8,
    sampling: Sampling | None = None,
) -> SafetyEvaluator:
    """The toy presets' evaluation; `reference` adds the KL from that model, `sampling` the sampled measures."""
    return evaluator_for_prompt_set(
        "toy_safety_heldout",
        judge=RefusalMatcher(),
        tokenizer=tokenizer,
        n_harmful=36,
        n_harmless=24,
        reference=reference,
        max_new_tokens=32,
        batch_size=batch_size,
        scorer=AnsweredScorer(),
        sampling=sampling,
    )
