"""The safety evaluation's settings, shared by training, fine-tuning and evaluate jobs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from store.specs.base import MAX_SEED, MAX_STEPS, STRICT, max_prompt_length_field, source_field


class EvalSpec(BaseModel):
    """The safety evaluation: fixed harmful and harmless prompt subsets (drawn once, by `seed`), judged for refusal,
    plus the KL to the model the fine-tuning started from (docs/method.md §3, §6.10)."""

    model_config = STRICT

    prompts: str = source_field("toy_safety", "Prompt set with a task label: a shipped name, hub id or file.")
    harmless_prompts: str | None = source_field(
        None, "Where the harmless prompts come from, if not from `prompts` (HarmBench has none)."
    )
    n_harmful: int = Field(32, ge=1, le=10_000)
    n_harmless: int = Field(32, ge=1, le=10_000)
    seed: int = Field(
        0, ge=0, le=MAX_SEED, description="Seeds the subsets once; every evaluation of a run uses the same prompts."
    )
    judge: str = source_field("refusal-matcher", "'refusal-matcher' (offline), 'hf-classifier:<path>', …")
    max_new_tokens: int = Field(48, ge=1, le=4096, description="Length of the greedy answers (eval/refusal_rate, …).")
    batch_size: int = Field(
        8,
        ge=1,
        le=4096,
        description="Prompts per generate call, left-padded (with sampling each brings `samples` sequences): on the "
        "tiny model 64 evaluates 2.5× faster than 8; on a large model it costs memory.",
    )
    samples: int = Field(
        8,
        ge=0,
        le=256,
        description="Sampled answers per prompt for the sampled measures (eval/refusal_prob, eval/kl_safety_sampled, "
        "…); 0: greedy measures only.",
    )
    sample_length: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="Tokens per sampled answer; null: the run's own completion length (RL: max_completion_length), "
        "else max_new_tokens.",
    )
    temperature: float | None = Field(
        None,
        gt=0,
        le=10,
        description="Sampling temperature of the sampled measures; null: the RL run's own (1 if unset).",
    )
    prompt_texts: Literal["keep", "hash"] = Field(
        "keep",
        description="Every judged answer is kept with its prompt (GET /runs/{id}/samples); 'hash' keeps only each "
        "prompt's SHA-256, for a prompt set whose texts must not be copied into the store.",
    )
    max_prompt_length: int | None = max_prompt_length_field("Evaluation prompts")
    every: int = Field(10, ge=1, le=MAX_STEPS, description="Evaluate at step 0, every this many steps and at the end.")
    helpfulness: str | None = source_field(
        "answered", "Scores the harmless answers (eval/reward_normal): 'answered' or a reward model."
    )
    strongreject: str | None = source_field(
        None, "StrongREJECT prompts (eval/strongreject): 'strongreject', a hub id or the small CSV's path."
    )
    n_strongreject: int | None = Field(None, ge=1, le=10_000, description="A fixed subset of them; all by default.")
    strongreject_judge: str | None = source_field(
        None, "Judge of the StrongREJECT answers (e.g. 'strongreject:<model>'); `judge` by default."
    )
