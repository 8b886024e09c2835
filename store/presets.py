"""Named presets: the paper's settings (docs/method.md §2.3, §3) and the toy task's, selectable in a job spec by name.

A preset is a set of field values that a spec starts from; anything the spec gives itself wins
(`{"kind": "train", "method": "frpo", "preset": "safety-mistral-7b", "lamb": 0.5}`). Where a preset keeps something
from the paper that makes GRPO and FRPO differ beyond the loss, or departs from the paper, it says so in `notes`, and
the notes go into the run's tags (`preset_notes`), so a chart never hides a difference.

The authors' safety λ/β pairs (β ≈ 1e-3/λ except at λ = 0.1) are :data:`PAPER_SAFETY_LAMBDA_BETA`; a sweep takes them
as its `lamb_beta` axis, and then runs the GRPO baseline once at every β so that the baseline differs from each FRPO
run only in the loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PAPER_SAFETY_LAMBDA_BETA: tuple[tuple[float, float], ...] = (
    (5.0, 2e-4),
    (2.0, 5e-4),
    (1.0, 1e-3),
    (0.5, 2e-3),
    (0.2, 5e-3),
    (0.1, 0.1),
)
"""(λ, β) pairs of the authors' safety runs (docs/method.md §2.3)."""


@dataclass(frozen=True)
class Preset:
    """Field values for one job kind, the fields a user must still give, and what to know about them."""

    kind: str  # "train", "finetune" (a pipeline's fine-tuning stage too), "pipeline" or "sweep"
    values: dict[str, Any]
    description: str
    requires: dict[str, str] = field(default_factory=dict)  # field (dotted path) -> what to give there
    notes: tuple[str, ...] = ()


_PAPER_EVAL: dict[str, Any] = {
    "prompts": "harmbench",
    "n_harmful": 100,  # a fixed 100 of HarmBench's 200 standard behaviours (the paper drew a new 100 every time)
    "n_harmless": 128,
    "max_new_tokens": 512,
    "max_prompt_length": 1024,  # the authors' prompt bound (a field's default too; stated here as the paper's)
    "judge": "strongreject:qylu4156/strongreject-15k-v1",
    "helpfulness": "allenai/Llama-3.1-8B-Instruct-RM-RB2",
    "strongreject": "strongreject",
}
"""The paper's in-loop evaluation (docs/method.md §3) with local judges; give `eval.harmless_prompts` (e.g. the authors'
eval_normal_prompts.jsonl) for over-refusal, the KL on harmless prompts and the helpfulness reward."""

_SAFETY_RL: dict[str, Any] = {
    "dataset": None,  # required: see `requires`
    "rewards": ["safety", "helpfulness"],
    "judge": "strongreject:qylu4156/strongreject-15k-v1",
    "helpfulness": "allenai/Llama-3.1-8B-Instruct-RM-RB2",
    "lamb": 0.5,
    "beta": 2e-3,
    "learning_rate": 1e-5,
    "max_steps": 500,
    "num_generations": 8,
    "per_device_train_batch_size": 16,
    "max_completion_length": 2048,
    "max_prompt_length": 1024,  # the authors' GRPO bound, in tokens after the chat template
    "lora": True,
    "lora_r": 64,
    "lora_alpha": 64,
    "save_steps": 50,
    "queue": "gpu",
    "eval": _PAPER_EVAL | {"every": 50},
    "trl": {
        "gradient_accumulation_steps": 8,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.1,  # transformers 5: a float < 1 is a ratio of the total steps
        "weight_decay": 0.1,
        "max_grad_norm": 1.0,
        "temperature": 1.0,
        "top_p": 0.9,
    },
    # the authors: vLLM colocated at 30 % of GPU memory, bf16, gradient checkpointing, flash-attn 2 (when installed)
    "gpu": {"use_vllm": True, "vllm_gpu_memory_utilization": 0.3, "bf16": True, "gradient_checkpointing": True},
}
_SAFETY_NOTES = (
    "GRPO baseline uses FRPO's beta and raw centred advantages (scale_rewards=none); the paper's GRPO used beta=0.1 "
    "and std-scaled advantages (docs/method.md §2.4 item 5)",
    "safety reward = 1 - StrongREJECT judge harmfulness only; the paper averaged it with OpenAI moderation "
    "(add judge 'openai-moderation' with an API key to match)",
    "128 completions per step as 16 per micro-batch x 8 accumulation steps on one worker; the paper used 8 GPUs",
)

PRESETS: dict[str, Preset] = {
    "toy-safety": Preset(
        "train",
        {
            "model": "toy-warm-start",
            "dataset": "toy_safety",
            "rewards": ["safety", "helpfulness"],
            "judge": "refusal-matcher",
            "helpfulness": "answered",
            "lamb": 0.2,
            "beta": 0.05,
            "learning_rate": 1e-3,
            "max_steps": 30,
            "save_steps": 15,
            "eval": {
                "prompts": "toy_safety_heldout",
                "n_harmful": 36,
                "n_harmless": 24,
                "every": 15,
                "max_new_tokens": 32,
                "batch_size": 64,  # every prompt in one generate call: 2.5× faster than 8 on the tiny model
                "samples": 0,  # the sampled measures cost ~5× the greedy evaluation on a CPU: off until the demo
            },  # can afford them (greedy refusal and KL, as before)
        },
        "Safety RL of the tiny model on the shipped toy prompts, from the shipped warm start (model 'toy-warm-start'; "
        "parent_id: from a 'toy-warm-start' run of your own instead).",
    ),
    "safety-mistral-7b": Preset(
        "train",
        {**_SAFETY_RL, "model": "mistralai/Mistral-7B-Instruct-v0.1"},
        "The paper's safety RL on Mistral-7B-Instruct-v0.1 (docs/method.md §2.3).",
        requires={"dataset": "the safety training mix: a parquet/jsonl with prompt and ability (or task) columns"},
        notes=_SAFETY_NOTES,
    ),
    "safety-qwen2.5-7b": Preset(
        "train",
        {**_SAFETY_RL, "model": "Qwen/Qwen2.5-7B-Instruct", "trl": {**_SAFETY_RL["trl"], "weight_decay": 1e-4}},
        "The paper's safety RL on Qwen2.5-7B-Instruct (weight decay 1e-4, as the authors' code comment says).",
        requires={"dataset": "the safety training mix: a parquet/jsonl with prompt and ability (or task) columns"},
        notes=_SAFETY_NOTES,
    ),
    "toy-warm-start": Preset(
        "finetune",
        {
            "model": "tiny",
            "dataset": "toy_warm_start",
            "learning_rate": 3e-3,
            "max_steps": 300,
            "per_device_train_batch_size": 16,
            "lr_scheduler_type": "cosine",
            "max_length": 128,
            "eval": None,
        },
        "SFT of the tiny model into a chat model that refuses harmful toy requests about 60 % of the time (sampled).",
    ),
    "toy-benign-sft": Preset(
        "finetune",
        {
            "dataset": "benign_sft",
            "learning_rate": 6e-4,
            "max_steps": 20,
            "per_device_train_batch_size": 8,
            "max_length": 128,
            "eval": {
                "prompts": "toy_safety_heldout",
                "n_harmful": 36,
                "n_harmless": 24,
                "every": 10,
                "max_new_tokens": 32,
                "batch_size": 64,  # every prompt in one generate call: 2.5× faster than 8 on the tiny model
                "samples": 0,  # as toy-safety: greedy measures only, for the demo's time
            },
        },
        "Downstream SFT of a toy-safety run on benign instructions that share the harmful prompts' surface form.",
    ),
    "alpaca-sft": Preset(
        "finetune",
        {
            "dataset": "alpaca",
            "dataset_limit": 40_000,
            "learning_rate": 1e-6,
            "lr_scheduler_type": "constant_with_warmup",
            "warmup_ratio": 0.05,
            "max_steps": 1250,
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 8,
            "max_length": 2048,
            "queue": "gpu",
            "eval": _PAPER_EVAL | {"every": 100},
        },
        "The paper's Alpaca SFT: first 40k examples, lr 1e-6, batch 32, one epoch (docs/method.md §3).",
        notes=("batch 32 as 4 x 8 accumulation steps on one worker; the paper used 4 per GPU on 8 GPUs",),
    ),
    "gsm8k-sft": Preset(
        "finetune",
        {
            "dataset": "gsm8k",
            "learning_rate": 6e-6,
            "lr_scheduler_type": "cosine",
            "warmup_ratio": 0.25,
            "weight_decay": 0.0,
            "max_steps": 232,
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 8,
            "max_length": 2048,
            "queue": "gpu",
            "eval": _PAPER_EVAL | {"every": 50},
        },
        "The paper's GSM8K SFT: lr 6e-6, cosine, batch 32, one epoch (docs/method.md §3).",
        notes=(
            "the SFT target keeps the final '#### N' answer line, which the authors' script dropped "
            "(docs/method.md §2.4 item 10)",
        ),
    ),
}


MATH_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
"""The authors' math system prompt, for RL and MATH500 (docs/method.md §2.3, §3); frpo_core.math.data holds the same
text."""

_MATH_NOTES = (
    "GRPO and FRPO share every setting here (lr 6e-6, max_grad_norm 0.5, beta 1e-4, raw centred advantages, the same "
    "batch); the paper's GRPO baseline used max_grad_norm 1.0 (and 4 x 16 per device), and its FRPO lr 5e-6 for "
    "lambda <= 0.5 (docs/method.md §2.4 item 5)",
    "512 completions (64 prompts) per step as 32 per micro-batch x 16 accumulation steps on one worker, whole prompt "
    "groups per micro-batch; the paper used 32 x 2 on 8 GPUs",
    "data: competition_math Levels 3-5 with MATH500's problems removed (the run's 'decontaminated' tag counts them); "
    "the paper did not decontaminate (docs/method.md §2.4 item 9) and held out its first 100 problems for validation",
    "max_steps 400 is about 3 epochs (the paper's) of the ~8.6k problems left at 64 prompts a step; the exact count is "
    "in the run's data event",
    "correctness is decided by math-verify; the paper used understand-r1-zero's boxed_reward_fn",
)
_CODE_SFT_NOTES = (
    "one epoch of the first 50,000 OpenCodeInstruct rows whose solution passed all its tests (781 steps at 64 a "
    "step); the paper shuffled the stream (buffer 10k, seed 42) and took 50,000 rows before that filter",
    "64 examples per step as 8 per micro-batch x 8 accumulation steps on one worker; the paper used 8 per GPU on 8 "
    "GPUs",
)

PRESETS.update(
    {
        "toy-math-warm-start": Preset(
            "finetune",
            {
                "model": "tiny",
                "dataset": "toy_math_warm_start",
                "learning_rate": 3e-3,
                "max_steps": 800,
                "per_device_train_batch_size": 16,
                "lr_scheduler_type": "cosine",
                "max_length": 128,
                "eval": None,
            },
            "SFT of the tiny model on toy_math's sums, boxed, with the carry dropped in half the answers that have one "
            "(frpo_core.toy.arithmetic).",
        ),
        "toy-math": Preset(
            "train",
            {
                "dataset": "toy_math",
                "rewards": ["math"],
                "lamb": 1.0,
                "beta": 0.0,
                "learning_rate": 5e-4,
                "max_steps": 80,
                "save_steps": 40,
                "num_generations": 8,
                "per_device_train_batch_size": 32,
                "max_completion_length": 20,
            },
            "Math RL of the tiny model on the shipped sums: the share of right sampled answers rises by ~0.1 in 80 "
            "steps (~0.15 in 160) as it learns to keep the carry; at lr 1e-3 Adam's noise undoes sums it knew.",
            requires={
                "parent_id": "the warm start it starts from (a toy-math-warm-start run): the untrained model "
                "never writes \\boxed{}"
            },
        ),
        "math-qwen2.5-math-7b": Preset(
            "train",
            {
                "model": "Qwen/Qwen2.5-Math-7B",
                "dataset": "competition_math",
                "decontaminate": "auto",
                "math_levels": [3, 4, 5],
                "rewards": ["math"],
                "lamb": 1.0,
                "beta": 1e-4,
                "learning_rate": 6e-6,
                "max_steps": 400,
                "num_generations": 8,
                "per_device_train_batch_size": 32,
                "max_completion_length": 2048,
                "max_prompt_length": 1024,  # the authors' GRPO bound, in tokens after the chat template
                "lora": True,
                "lora_r": 64,
                "lora_alpha": 128,
                "save_steps": 50,
                "queue": "gpu",
                "eval": None,
                "gpu": {"use_vllm": True, "vllm_gpu_memory_utilization": 0.3, "bf16": True},
                "trl": {
                    "gradient_accumulation_steps": 16,
                    "lr_scheduler_type": "cosine",
                    "warmup_steps": 0.1,  # transformers 5: a float < 1 is a ratio of the total steps
                    "weight_decay": 0.0,
                    "max_grad_norm": 0.5,
                    "temperature": 1.0,
                    "top_p": 1.0,
                },
            },
            "The paper's math RL on Qwen2.5-Math-7B (docs/method.md §2.3): LoRA r64/α128, β 1e-4, lr 6e-6 cosine, "
            "512 completions a step, MATH Levels 3-5 without MATH500.",
            notes=_MATH_NOTES,
        ),
        "code-sft": Preset(
            "finetune",
            {
                "dataset": "opencodeinstruct",
                "dataset_limit": 50_000,
                "learning_rate": 5e-5,
                "lr_scheduler_type": "cosine",
                "warmup_ratio": 0.03,
                "weight_decay": 0.04,
                "max_grad_norm": 0.3,
                "max_steps": 781,
                "per_device_train_batch_size": 8,
                "gradient_accumulation_steps": 8,
                "lora": True,
                "lora_r": 16,
                "lora_alpha": 32,
                "lora_dropout": 0.05,
                "max_length": 4096,
                "save_steps": 100,
                "queue": "gpu",
                "eval": None,
                # as the authors' GPU runs (docs/method.md §2.3 "Setup"): bf16, gradient checkpointing, flash-attn 2
                # when installed; `num_gpus: 8` (with gradient_accumulation_steps 1) runs it on 8 GPUs as they did
                "gpu": {"bf16": True, "gradient_checkpointing": True},
            },
            "The paper's code SFT after math RL (docs/method.md §3): OpenCodeInstruct, LoRA r16/α32, lr 5e-5 cosine, "
            "grad-norm 0.3, 64 a step, loss on the answer only, bf16, no in-loop evaluation.",
            notes=_CODE_SFT_NOTES,
        ),
        "toy-code-sft": Preset(
            "finetune",
            {
                "dataset": "toy_code",
                "learning_rate": 1e-3,
                "lr_scheduler_type": "cosine",
                "max_steps": 10,
                "per_device_train_batch_size": 8,
                "lora": True,
                "lora_r": 16,
                "lora_alpha": 32,
                "lora_dropout": 0.05,
                "max_length": 256,
                "eval": None,
            },
            "Code SFT of a tiny-model run on the shipped toy_code set: the code-sft preset at toy scale.",
        ),
        "toy-math-pipeline": Preset(
            "pipeline",
            {
                "train": {"preset": "toy-math"},
                "finetune": {"preset": "toy-code-sft"},
                "evaluate_before": True,
                "evaluation": {
                    "benchmarks": ["toy_arith", "toy_humaneval"],
                    "system_prompt": MATH_SYSTEM_PROMPT,
                    "max_new_tokens": 16,
                    "backend": "hf",
                },
            },
            "Toy math RL -> toy code SFT, with toy_arith and toy_humaneval before and after the SFT.",
            requires={"train.parent_id": "the warm start the RL starts from (a toy-math-warm-start run)"},
        ),
    }
)

_TOY_FRONTIER_BASE = {
    "kind": "pipeline",
    "train": {"preset": "toy-safety"},
    "finetune": {"preset": "toy-benign-sft"},
    "evaluate": False,
}
PRESETS.update(
    {
        "toy-frontier": Preset(
            "sweep",
            {
                "name": "toy frontier",
                "base": _TOY_FRONTIER_BASE,
                "grid": {"lamb": [0.2, 0.5], "seed": list(range(16))},
                "grpo_budgets": {"checkpoints": [15, 30], "beta": [0.05, 0.0]},
            },
            "The toy experiment with GRPO along one run per β (evaluated and fine-tuned from at 15 and 30 steps; "
            "β 0.05 as FRPO's, and β 0, without the penalty that pulls GRPO back), so that its points trace a "
            "frontier out to FRPO's KL (docs/method.md §7); from the shipped warm start, or base.train.parent_id: "
            "a toy-warm-start run.",
        ),
        "safety-frontier-mistral-7b": Preset(
            "sweep",
            {
                "name": "safety frontier (Mistral-7B)",
                "base": {
                    "kind": "pipeline",
                    "train": {"preset": "safety-mistral-7b"},
                    "finetune": {"preset": "gsm8k-sft"},
                },
                "grid": {"lamb_beta": [list(pair) for pair in PAPER_SAFETY_LAMBDA_BETA], "seed": [0, 1, 2]},
                "grpo_budgets": {"beta": [1e-3, 5e-3, 0.1], "max_steps": [250, 500]},
            },
            "The paper's safety sweep (λ/β pairs, GSM8K SFT after) with GRPO at six budgets (β × steps).",
            requires={"base.train.dataset": "the safety training mix (a parquet/jsonl with prompt + ability/task)"},
            notes=_SAFETY_NOTES,
        ),
        "math-frontier-qwen2.5-math-7b": Preset(
            "sweep",
            {
                "name": "math frontier (Qwen2.5-Math-7B)",
                "base": {
                    "kind": "pipeline",
                    "train": {"preset": "math-qwen2.5-math-7b"},
                    "finetune": {"preset": "code-sft"},
                    "evaluate_before": True,
                    "evaluation": {
                        "benchmarks": ["minerva_math500", "mbpp+", "humaneval+"],
                        "system_prompt": MATH_SYSTEM_PROMPT,
                        "max_new_tokens": 2048,
                    },
                },
                "grid": {"lamb": [10.0, 4.0, 2.0, 1.0, 0.5, 0.2, 0.1], "seed": [0, 1, 2]},
                "grpo_budgets": {"max_steps": [200, 400, 800]},
            },
            "The paper's math sweep: RL at 7 λ (GRPO at half, full and double steps) -> code SFT, MATH500 / MBPP+ / "
            "HumanEval+ before and after the SFT.",
            notes=_MATH_NOTES + _CODE_SFT_NOTES,
        ),
        "toy-math-frontier": Preset(
            "sweep",
            {
                "name": "toy math frontier",
                "base": {"kind": "pipeline", "preset": "toy-math-pipeline"},
                "grid": {"lamb": [0.2, 1.0], "seed": [0, 1, 2]},
                "grpo_budgets": {"max_steps": [40, 80, 160]},
            },
            "The math experiment at toy scale: toy-math-pipeline at two λ, GRPO at three step budgets.",
            requires={"base.train.parent_id": "the warm start the RL starts from (a toy-math-warm-start run)"},
        ),
    }
)


def preset_names(kind: str) -> list[str]:
    return sorted(name for name, preset in PRESETS.items() if preset.kind == kind)


# A spec's own value of one of these fields replaces the preset's value of the other: a fine-tuning preset's
# max_steps gives way to the epochs a spec gives (exactly one of the two is allowed).
REPLACES = {"epochs": "max_steps"}


def _without_replaced(preset_values: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    replaced = {REPLACES[name] for name in REPLACES if given.get(name) is not None}
    return {name: value for name, value in preset_values.items() if name not in replaced}


def _merge(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``under``; dicts on both sides merge recursively (a sweep's `base.train`, a spec's `trl`)."""
    merged = dict(under)
    for key, given in over.items():
        below = merged.get(key)
        merged[key] = _merge(below, given) if isinstance(given, dict) and isinstance(below, dict) else given
    return merged


def _missing(values: dict[str, Any], requires: dict[str, str]) -> list[str]:
    """The required fields (dotted paths such as `base.train.parent_id`) that are still unset."""
    missing = []
    for path, why in requires.items():
        node: Any = values
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            missing.append(f"{path}: {why}")
    return missing


def apply_preset(kind: str, value: Any) -> Any:
    """The spec's raw input with its preset's values filled in beneath it (the spec's own values win).

    Nested dicts merge recursively, so `{"preset": "...", "trl": {"top_p": 1.0}}` keeps the preset's other TRL
    options. A field the preset requires (`requires`) must be given, or the error names it and what to give.
    """
    if not isinstance(value, dict) or not isinstance(value.get("preset"), str):
        return value  # no preset, or not a name: the `preset` field's own validation refuses it
    name = value["preset"]
    preset = PRESETS.get(name)
    if preset is None or preset.kind != kind:
        raise ValueError(f"preset {name!r} is not a {kind} preset; choose one of {', '.join(preset_names(kind))}")
    merged = _merge(_without_replaced(preset.values, value), value)
    missing = _missing(merged, preset.requires)
    if missing:
        raise ValueError(f"preset {name!r} needs " + "; ".join(missing))
    return merged
