"""Job specs: the one contract between the API (which validates them) and the workers (which run them). No torch.

Defaults are the toy task on the tiny offline model, so the smallest valid submission is
`{"kind": "train", "method": "frpo"}` and it finishes in well under a minute on a CPU.
"""

from __future__ import annotations

import itertools
import re
import uuid
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from store.presets import PRESETS, apply_preset, preset_names
from store.settings import Settings

TINY_MODEL = "tiny"
TOY_PROMPTS = "toy"
STREAMED_DATASETS = frozenset({"opencodeinstruct"})  # frpo_core.data.NAMED's streamed sets: read the first N rows
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# GRPOConfig options a spec may not override through `trl`: they are the spec's own fields or the worker's business.
RESERVED_TRL_OPTIONS = frozenset(
    {
        "output_dir",
        "loss_type",
        "lamb",
        "beta",
        "seed",
        "jackknife",
        "baseline",
        "frpo_scale",
        "frpo_clip",
        "scale_rewards",
        "learning_rate",
        "max_steps",
        "num_generations",
        "per_device_train_batch_size",
        "max_completion_length",
        "save_steps",
        "save_strategy",
        "report_to",
        "use_cpu",
        "resume_from_checkpoint",
    }
)


class SpecError(ValueError):
    """A spec that validates as a shape but cannot run here; `field` names what to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class EvalSpec(BaseModel):
    """The safety evaluation: fixed harmful and harmless prompt subsets (drawn once, by `seed`), judged for refusal,
    plus the KL to the model the fine-tuning started from (method.md §3, §6.10)."""

    model_config = ConfigDict(extra="forbid")

    prompts: str = Field("toy_safety", description="Prompt set with a task label: a shipped name, hub id or file.")
    harmless_prompts: str | None = Field(
        None, description="Where the harmless prompts come from, if not from `prompts` (HarmBench has none)."
    )
    n_harmful: int = Field(32, ge=1, le=10_000)
    n_harmless: int = Field(32, ge=1, le=10_000)
    seed: int = Field(0, ge=0, description="Seeds the subsets once; every evaluation of a run uses the same prompts.")
    judge: str = Field("refusal-matcher", description="'refusal-matcher' (offline), 'hf-classifier:<path>', …")
    max_new_tokens: int = Field(48, ge=1, le=4096)
    every: int = Field(10, ge=1, description="Evaluate at step 0, every this many steps and at the end.")
    helpfulness: str | None = Field(
        "answered", description="Scores the harmless answers (eval/reward_normal): 'answered' or a reward model."
    )
    strongreject: str | None = Field(
        None, description="StrongREJECT prompts (eval/strongreject): 'strongreject', a hub id or the small CSV's path."
    )
    n_strongreject: int | None = Field(None, ge=1, le=10_000, description="A fixed subset of them; all by default.")
    strongreject_judge: str | None = Field(
        None, description="Judge of the StrongREJECT answers (e.g. 'strongreject:<model>'); `judge` by default."
    )


GPU_TRL_OPTIONS = frozenset(
    {
        "bf16",
        "gradient_checkpointing",
        "use_vllm",
        "vllm_mode",
        "vllm_gpu_memory_utilization",
        "vllm_tensor_parallel_size",
        "vllm_enable_sleep_mode",
        "vllm_server_host",
        "vllm_server_port",
        "deepspeed",
    }
)
"""GRPOConfig options that `gpu` sets: with `gpu` given, `trl` may not set them too (one place for each knob)."""


class GpuBase(BaseModel):
    """How a training job uses GPUs, as the authors ran theirs (method.md §2.3 "Setup": `accelerate launch` on 8 GPUs,
    DeepSpeed ZeRO-2, bf16, gradient checkpointing, flash-attn 2): what RL and downstream SFT share.

    `num_gpus` > 1 runs the training child under `accelerate launch` with one process per GPU, inside the one worker
    that owns them. Only the `gpu` queue takes flash-attn, DeepSpeed or several GPUs (`check_runnable` refuses them on
    `cpu`, naming the field: :meth:`gpu_only`)."""

    model_config = ConfigDict(extra="forbid")

    num_gpus: int = Field(1, ge=1, le=64, description="Training processes, one GPU each (accelerate launch if > 1).")
    distributed: Literal["ddp", "zero2", "zero3"] = Field(
        "ddp",
        description="'ddp' (data parallel when num_gpus > 1), or DeepSpeed 'zero2' / 'zero3' (the authors: ZeRO-2), "
        "which always run under accelerate launch.",
    )
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa", "eager"] = Field(
        "auto", description="'auto': flash_attention_2 when flash-attn is installed (and bf16), else sdpa."
    )
    bf16: bool = Field(True, description="bf16 mixed precision, and bf16 weights when loading the model.")
    gradient_checkpointing: bool = Field(True, description="Recompute activations in the backward pass.")

    @model_validator(mode="after")
    def _flash_needs_bf16(self) -> GpuBase:
        if self.attn_implementation == "flash_attention_2" and not self.bf16:
            raise ValueError("attn_implementation 'flash_attention_2' needs bf16 (flash-attn runs in 16-bit only)")
        return self

    def gpu_only(self) -> list[str]:
        """The fields set to what only a GPU worker runs (bf16 and checkpointing run on a CPU too)."""
        flags = {
            "attn_implementation": self.attn_implementation == "flash_attention_2",
            "distributed": self.distributed != "ddp",
            "num_gpus": self.num_gpus > 1,
        }
        return [name for name, on in flags.items() if on]


class GpuSpec(GpuBase):
    """An RL job's GPU settings: :class:`GpuBase` plus vLLM generation (the authors: colocate, gpu_mem 0.3). With
    several GPUs FRPO's groups may span ranks (its trainer gathers them, method.md §6.2)."""

    use_vllm: bool = Field(False, description="Generate completions with vLLM (the `gpu` extra).")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate", description="'colocate': vLLM inside the training processes; 'server': a `trl vllm-serve` server."
    )
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="Colocate: vLLM's share of GPU memory.")
    vllm_tensor_parallel_size: int = Field(1, ge=1, description="Colocate: GPUs per vLLM engine (divides num_gpus).")
    vllm_enable_sleep_mode: bool = Field(False, description="Colocate: offload vLLM's weights and cache during steps.")
    vllm_server_host: str = Field("127.0.0.1", max_length=255, description="Server mode: where trl vllm-serve runs.")
    vllm_server_port: int = Field(8000, ge=1, le=65535)

    @model_validator(mode="after")
    def _tensor_parallel_divides(self) -> GpuSpec:
        if self.use_vllm and self.vllm_mode == "colocate" and self.num_gpus % self.vllm_tensor_parallel_size:
            raise ValueError(
                f"vllm_tensor_parallel_size ({self.vllm_tensor_parallel_size}) must divide num_gpus ({self.num_gpus})"
            )
        return self

    def gpu_only(self) -> list[str]:
        """vLLM first (it needs CUDA whatever the rest says), then the shared settings."""
        return (["use_vllm"] if self.use_vllm else []) + super().gpu_only()


def _preset_help(kind: str) -> str:
    names = ", ".join(name for name, preset in PRESETS.items() if preset.kind == kind)
    return f"Start from a named preset ({names}); fields given here override it."


def _preset_enum(kind: str) -> dict[str, Any]:
    """The preset names as the field's JSON-schema enum, so forms (the dashboard's) can offer them."""
    return {"enum": [*preset_names(kind), None]}


def _preset_tags(name: str | None) -> dict[str, Any]:
    """A preset's name and its notes (every difference it keeps from the paper or between methods) as tags."""
    if name is None:
        return {}
    notes = PRESETS[name].notes
    return {"preset": name, **({"preset_notes": list(notes)} if notes else {})}


class _FromPreset(BaseModel):
    """A spec that may start from a named preset (`store.presets`) of its `preset_kind`: the preset's values fill
    in beneath what the spec gives itself, before validation."""

    preset_kind: ClassVar[str]

    def __init_subclass__(cls, preset_kind: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if preset_kind is not None:
            cls.preset_kind = preset_kind

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, value: Any) -> Any:
        return apply_preset(cls.preset_kind, value)


class TrainSpec(_FromPreset, preset_kind="train"):
    """RL training with GRPO or FRPO. Two runs that differ only in `method` differ only in the loss."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["train"] = "train"
    method: Literal["grpo", "frpo"] = Field("frpo", description="The policy loss; everything else is shared.")
    preset: str | None = Field(None, description=_preset_help("train"), json_schema_extra=_preset_enum("train"))
    name: str | None = Field(None, max_length=200, description="A label for lists and charts.")
    model: str = Field(TINY_MODEL, description="'tiny' (built offline), a hub id, or a path under a model root.")
    parent_id: uuid.UUID | None = Field(
        None, description="Start from this finished run's model instead of `model` (e.g. a warm-start SFT run)."
    )
    dataset: str = Field(
        TOY_PROMPTS,
        description="Prompts: 'toy' (the quickstart's eight prompts), a labelled prompt set ('toy_safety', a hub id "
        "or a file with prompt + task/ability columns).",
    )
    rewards: list[Literal["safety", "helpfulness", "share_of_e", "math"]] = Field(
        ["share_of_e"],
        min_length=1,
        description="'safety' (1 - harmfulness, harmful prompts), 'helpfulness' (harmless prompts), 'share_of_e', "
        "'math' (0.2·one boxed answer + 0.8·correct, on MATH-style or GSM8K problems: 'toy_math', "
        "'competition_math', a hub id or a file).",
    )
    decontaminate: str | None = Field(
        "auto",
        description="Math: remove problems that appear in this reference set (a name such as 'math500', a hub id or "
        "a file with a 'problem' column); 'auto' = MATH500 except for the shipped synthetic sets; null keeps all "
        "(method.md §2.4 item 9, §6.10).",
    )
    math_levels: list[Annotated[int, Field(ge=1, le=5)]] | None = Field(
        [3, 4, 5], min_length=1, description="Math: keep these MATH difficulty levels (the authors: 3-5); null: all."
    )
    judge: str = Field("refusal-matcher", description="The safety reward's judge (as in eval.judge).")
    helpfulness: str = Field(
        "answered", description="'answered' (offline: 1 unless refused) or a reward model (hub id or path)."
    )
    lamb: float = Field(1.0, gt=0, description="FRPO's λ (raw reward units); GRPO logs the robust reward at it.")
    beta: float = Field(0.0, ge=0, description="Weight of the k3 KL to the reference model.")
    seed: int = Field(0, ge=0)
    jackknife: bool = True
    baseline: bool = True
    frpo_scale: Literal["authors", "lambda"] = "authors"
    frpo_clip: Literal["authors", "sign_aware"] = "authors"
    scale_rewards: Literal["none", "group", "batch"] = Field(
        "none", description="'none' keeps λ in raw reward units; applies to GRPO and FRPO alike."
    )
    learning_rate: float = Field(3e-3, gt=0)
    max_steps: int = Field(40, ge=1, le=1_000_000)
    num_generations: int = Field(8, ge=2)
    per_device_train_batch_size: int = Field(32, ge=1)
    max_completion_length: int = Field(16, ge=1)
    save_steps: int = Field(10, ge=1, description="Checkpoint every this many steps; a resumed job starts there.")
    lora: bool = Field(False, description="Train a LoRA adapter (merged into the final model).")
    lora_r: int = Field(64, ge=1)
    lora_alpha: int = Field(64, ge=1)
    eval: EvalSpec | None = Field(
        None,
        description="Safety evaluation at step 0, every `eval.every` steps and at the end; its KL is to the model the "
        "run started from (the KL moved in RL).",
    )
    trust_remote_code: bool = False
    queue: Literal["cpu", "gpu"] = "cpu"
    gpu: GpuSpec | None = Field(
        None, description="GPU settings (processes, DeepSpeed, vLLM, attention, bf16); null: the trainer's defaults."
    )
    trl: dict[str, Any] = Field(default_factory=dict, description="Further GRPOConfig options, passed through.")

    @model_validator(mode="after")
    def _rewards_need_tasks(self) -> TrainSpec:
        if self.dataset == TOY_PROMPTS and set(self.rewards) & {"safety", "helpfulness", "math"}:
            raise ValueError(
                "rewards 'safety', 'helpfulness' and 'math' need a labelled data set: set dataset to 'toy_safety' or "
                "'toy_math', a hub id or a file (the 'toy' prompts have no task and no answer)"
            )
        if "math" in self.rewards and set(self.rewards) & {"safety", "helpfulness"}:
            raise ValueError("reward 'math' reads math problems, which have no safety task: use it without them")
        return self

    @model_validator(mode="after")
    def _one_place_per_gpu_option(self) -> TrainSpec:
        if self.gpu is not None:
            doubled = sorted(GPU_TRL_OPTIONS & set(self.trl))
            if "attn_implementation" in self.trl.get("model_init_kwargs", {}):
                doubled.append("model_init_kwargs.attn_implementation")
            if doubled:
                raise ValueError(f"trl may not set {doubled} when gpu is given: set them in gpu")
        return self

    @field_validator("per_device_train_batch_size")
    @classmethod
    def _whole_groups(cls, value: int, info: ValidationInfo) -> int:
        generations = info.data.get("num_generations")
        if generations and value % generations:
            raise ValueError(
                f"must be a multiple of num_generations ({generations}) so every batch holds whole prompt groups"
            )
        return value

    @field_validator("trl")
    @classmethod
    def _not_reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        reserved = sorted(RESERVED_TRL_OPTIONS & set(value))
        if reserved:
            raise ValueError(f"may not set {reserved}: use the spec's own fields")
        return value

    def tags(self) -> dict[str, Any]:
        """What lists and charts group by."""
        return {
            "method": self.method,
            "lamb": self.lamb if self.method == "frpo" else None,
            "beta": self.beta,
            "seed": self.seed,
            "base_model": self.model if self.parent_id is None else f"run:{self.parent_id}",
            "dataset": self.dataset,
            "learning_rate": self.learning_rate,
            "max_steps": self.max_steps,
            **_preset_tags(self.preset),
        }


class FinetuneStage(_FromPreset, preset_kind="finetune"):
    """Downstream SFT settings: of a parent run's final model (whose policy is the reference for the KL)."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(None, description=_preset_help("finetune"), json_schema_extra=_preset_enum("finetune"))
    name: str | None = Field(None, max_length=200)
    mode: Literal["sft", "rl"] = Field(
        "sft", description="'sft' (SFTTrainer on `dataset`) or 'rl' (GRPO on `dataset`'s prompts with `rewards`)."
    )
    dataset: str = Field(
        "benign_sft", description="SFT data, or for 'rl' the prompts: a shipped name, a hub id or a local file."
    )
    dataset_limit: int | None = Field(None, ge=1, description="Use only the first this many examples.")
    learning_rate: float = Field(5e-4, gt=0)
    lr_scheduler_type: Literal["constant", "constant_with_warmup", "linear", "cosine"] = "constant"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_steps: int = Field(30, ge=1, le=1_000_000)
    per_device_train_batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping (the authors' code SFT: 0.3).")
    lora: bool = False
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    max_length: int = Field(256, ge=8)
    seed: int = Field(0, ge=0)
    save_steps: int = Field(10, ge=1)
    rewards: list[Literal["math", "helpfulness", "share_of_e"]] = Field(
        ["math"], min_length=1, description="Downstream RL's rewards; 'math' = boxed-answer / GSM8K correctness."
    )
    num_generations: int = Field(8, ge=2, description="Downstream RL: completions per prompt.")
    max_completion_length: int = Field(64, ge=1, description="Downstream RL: tokens per completion.")
    beta: float = Field(0.0, ge=0, description="Downstream RL: weight of the KL to the model it starts from.")
    eval: EvalSpec | None = Field(
        default_factory=EvalSpec, description="In-loop safety evaluation (null: none, e.g. for a warm start)."
    )
    queue: Literal["cpu", "gpu"] = "cpu"
    gpu: GpuBase | None = Field(
        None,
        description="GPU settings (processes, DeepSpeed, attention, bf16, gradient checkpointing); null: the "
        "trainer's defaults, fp32 weights.",
    )

    @model_validator(mode="after")
    def _streamed_sets_need_a_limit(self) -> FinetuneStage:
        if self.dataset in STREAMED_DATASETS and self.dataset_limit is None:
            raise ValueError(
                f"dataset {self.dataset!r} is streamed (millions of rows): give dataset_limit (the authors: 50000)"
            )
        return self

    @model_validator(mode="after")
    def _rl_groups(self) -> FinetuneStage:
        if self.mode == "rl" and self.per_device_train_batch_size % self.num_generations:
            raise ValueError(
                f"mode 'rl': per_device_train_batch_size ({self.per_device_train_batch_size}) must be a multiple of "
                f"num_generations ({self.num_generations}) so every batch holds whole prompt groups"
            )
        return self

    def tags(self) -> dict[str, Any]:
        return {
            "stage": "finetune",
            "finetune_mode": self.mode,
            "downstream_dataset": self.dataset,
            "finetune_seed": self.seed,
            **{f"finetune_{key}": value for key, value in _preset_tags(self.preset).items()},
        }


class FinetuneSpec(FinetuneStage):
    """Downstream SFT of a finished run's model (`parent_id`), or SFT of a base model (`model`, e.g. a warm start)."""

    kind: Literal["finetune"] = "finetune"
    parent_id: uuid.UUID | None = Field(
        None, description="The run whose final model is fine-tuned; it must have succeeded."
    )
    model: str | None = Field(None, description="Instead of parent_id: 'tiny', a hub id or a path under a model root.")

    @model_validator(mode="after")
    def _one_source(self) -> FinetuneSpec:
        if (self.parent_id is None) == (self.model is None):
            raise ValueError("give exactly one of parent_id (a finished run) and model (a base model)")
        return self

    def tags(self) -> dict[str, Any]:
        return {**super().tags(), **({"base_model": self.model} if self.model is not None else {})}


CODE_BENCHMARKS = ("mbpp+", "humaneval+")
"""EvalPlus's released sets, by name; a shipped HumanEval-format set (`toy_humaneval`) or a `.jsonl` file also runs
through EvalPlus-style scoring. Any other benchmark is an lm-eval task name or task folder."""


class EvaluateStage(BaseModel):
    """What an evaluation measures: benchmarks (lm-eval tasks, EvalPlus-style code sets) and/or the safety evaluation.

    The paper's math setting reports MATH500 (`minerva_math500`: 0-shot, chat template, the training system prompt,
    greedy, 2048 new tokens), MBPP+ and HumanEval+ (EvalPlus, greedy), MMLU and IFEval (method.md §3)."""

    model_config = ConfigDict(extra="forbid")

    eval: EvalSpec = Field(default_factory=EvalSpec, description="The safety evaluation's settings.")
    benchmarks: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list,
        max_length=32,
        description="lm-eval task names ('minerva_math500', 'mmlu', 'ifeval', the shipped 'toy_arith') or task "
        "folders, and code sets: 'mbpp+', 'humaneval+', the shipped 'toy_humaneval' or a HumanEval-format .jsonl "
        "file. Each metric is logged as bench/<task>/<metric> at step 0.",
    )
    safety: bool | None = Field(
        None, description="Also run the safety evaluation (`eval`); default: only when no benchmarks are given."
    )
    limit: int | None = Field(None, ge=1, description="Evaluate only the first this many items of each benchmark.")
    system_prompt: str | None = Field(
        None, max_length=10_000, description="System prompt for lm-eval tasks (MATH500: the math training one)."
    )
    code_system_prompt: str | None = Field(
        None, max_length=10_000, description="System prompt for the code sets (EvalPlus uses none)."
    )
    max_new_tokens: int | None = Field(
        None, ge=1, le=32_768, description="Generation budget (lm-eval's max_gen_toks); default: each task's own."
    )
    backend: Literal["auto", "hf", "vllm"] = Field(
        "auto", description="'auto': vLLM when it is installed and a GPU is present, else transformers ('hf')."
    )
    batch_size: int = Field(8, ge=1, le=1024)

    @field_validator("benchmarks")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"{repeated} given more than once")
        return value

    @model_validator(mode="after")
    def _default_safety(self) -> EvaluateStage:
        if self.safety is None:  # stored resolved, so a rerun of the spec does the same
            self.safety = not self.benchmarks
        if not self.safety and not self.benchmarks:
            raise ValueError("nothing to evaluate: give benchmarks or leave safety on")
        return self


class EvaluateSpec(EvaluateStage):
    """An evaluation, once, of a finished run's model: benchmarks and/or the safety evaluation (whose KL is against
    that run's parent, if it has one)."""

    kind: Literal["evaluate"] = "evaluate"
    run_id: uuid.UUID = Field(..., description="The run whose final model is evaluated; it must have succeeded.")
    name: str | None = Field(None, max_length=200)
    queue: Literal["cpu", "gpu"] = "cpu"

    def tags(self) -> dict[str, Any]:
        return {"stage": "evaluate", **({"benchmarks": list(self.benchmarks)} if self.benchmarks else {})}


def _kind(value: Any) -> str:
    """A body without "kind" is a training job, so `{"method": "frpo"}` alone is a valid submission."""
    return value.get("kind", "train") if isinstance(value, dict) else getattr(value, "kind", "train")


class PipelineSpec(_FromPreset, preset_kind="pipeline"):
    """Train → fine-tune → evaluate as one submission: linked runs, each started when the one before succeeds (a
    failure or cancellation cancels the stages after it). With `evaluate_before`, the trained model is evaluated
    too, by the same evaluation, as a second child of the training run: before and after fine-tuning, alike."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["pipeline"] = "pipeline"
    preset: str | None = Field(None, description=_preset_help("pipeline"), json_schema_extra=_preset_enum("pipeline"))
    train: TrainSpec = Field(default_factory=TrainSpec)
    finetune: FinetuneStage = Field(default_factory=FinetuneStage)
    evaluate: bool = Field(True, description="Also evaluate the fine-tuned model once it is done.")
    evaluate_before: bool = Field(
        False, description="Also evaluate the trained model before fine-tuning (same evaluation), for before/after."
    )
    evaluation: EvaluateStage | None = Field(
        None,
        description="What the evaluation stage(s) measure (benchmarks, safety, generation); null: the safety "
        "evaluation with the fine-tuning stage's eval settings.",
    )

    def tags(self) -> dict[str, Any]:
        """Tags every stage's run carries (the pipeline preset's name and notes)."""
        return {f"pipeline_{key}": value for key, value in _preset_tags(self.preset).items()}

    def finetune_spec(self, train_id: uuid.UUID) -> FinetuneSpec:
        """The fine-tuning stage's spec, once the training run has an id."""
        return FinetuneSpec(parent_id=train_id, **self.finetune.model_dump())

    def evaluate_spec(self, run_id: uuid.UUID) -> EvaluateSpec:
        """An evaluation stage's spec, of the fine-tuning run (or, with evaluate_before, of the training run)."""
        if self.evaluation is None:
            return EvaluateSpec(run_id=run_id, eval=self.finetune.eval or EvalSpec(), queue=self.finetune.queue)
        settings = self.evaluation.model_dump()
        if "eval" not in self.evaluation.model_fields_set and self.finetune.eval is not None:
            settings["eval"] = self.finetune.eval.model_dump()  # the safety evaluation fine-tuning ran, as before
        return EvaluateSpec(run_id=run_id, queue=self.finetune.queue, **settings)


JobSpec = Annotated[
    Annotated[TrainSpec, Tag("train")]
    | Annotated[FinetuneSpec, Tag("finetune")]
    | Annotated[EvaluateSpec, Tag("evaluate")]
    | Annotated[PipelineSpec, Tag("pipeline")],
    Discriminator(_kind),
]
JOB_SPEC = TypeAdapter(JobSpec)
JOB_KINDS: dict[str, type[BaseModel]] = {
    "train": TrainSpec,
    "finetune": FinetuneSpec,
    "evaluate": EvaluateSpec,
    "pipeline": PipelineSpec,
}

MAX_SWEEP_POINTS = 500


class SweepGrid(BaseModel):
    """The axes a sweep varies; each value obeys the job spec's own limits."""

    model_config = ConfigDict(extra="forbid")

    lamb: list[Annotated[float, Field(gt=0)]] | None = Field(None, min_length=1)
    beta: list[Annotated[float, Field(ge=0)]] | None = Field(None, min_length=1)
    lamb_beta: list[tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(ge=0)]]] | None = Field(
        None,
        min_length=1,
        description="(λ, β) pairs instead of separate λ and β axes, e.g. the paper's (store.presets); the GRPO "
        "baseline then runs once per distinct β.",
    )
    seed: list[Annotated[int, Field(ge=0)]] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _check(self) -> SweepGrid:
        if self.lamb_beta is not None and (self.lamb is not None or self.beta is not None):
            raise ValueError("lamb_beta replaces lamb and beta: give either the pairs or the separate axes")
        if not self.axes():
            raise ValueError("give at least one of lamb, beta, lamb_beta, seed")
        if len(self.frpo_points()) > MAX_SWEEP_POINTS:
            raise ValueError(f"more than {MAX_SWEEP_POINTS} points: split the sweep")
        return self

    def axes(self) -> dict[str, list[Any]]:
        return {axis: values for axis, values in self.model_dump().items() if values is not None}

    def frpo_points(self) -> list[dict[str, Any]]:
        """The FRPO runs' field values: the product of the axes (a (λ, β) pair counts as one axis)."""
        return self._product(self.axes())

    def grpo_points(self, budgets: GrpoBudgets | None = None) -> list[dict[str, Any]]:
        """The GRPO baseline's: the same product without λ (pairs reduced to their distinct β); with `budgets`, their
        axes replace the grid's (a budget's β replaces the grid's β) and multiply the rest."""
        axes = {axis: values for axis, values in self.axes().items() if axis not in ("lamb", "lamb_beta")}
        if self.lamb_beta is not None:
            axes["beta"] = sorted({beta for _, beta in self.lamb_beta})
        return self._product({**axes, **(budgets.axes() if budgets is not None else {})})

    @staticmethod
    def _product(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
        points = []
        for values in itertools.product(*axes.values()):
            point: dict[str, Any] = {}
            for axis, value in zip(axes, values, strict=True):
                point.update(dict(zip(("lamb", "beta"), value, strict=True)) if axis == "lamb_beta" else {axis: value})
            points.append(point)
        return points


class GrpoBudgets(BaseModel):
    """Budgets for the GRPO baseline alone, so that its runs trace a frontier of (KL moved, robustness): a run that
    moved further in RL keeps more, and FRPO is more robust only if it lies above that frontier (method.md §7)."""

    model_config = ConfigDict(extra="forbid")

    max_steps: list[Annotated[int, Field(ge=1)]] | None = Field(None, min_length=1)
    beta: list[Annotated[float, Field(ge=0)]] | None = Field(None, min_length=1)
    learning_rate: list[Annotated[float, Field(gt=0)]] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _check(self) -> GrpoBudgets:
        if not self.axes():
            raise ValueError("give at least one of max_steps, beta, learning_rate")
        return self

    def axes(self) -> dict[str, list[Any]]:
        return {axis: values for axis, values in self.model_dump().items() if values is not None}


class SweepSpec(_FromPreset, preset_kind="sweep"):
    """A base spec and a grid: one job (or one pipeline: train → finetune → evaluate) per grid point."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(None, description=_preset_help("sweep"), json_schema_extra=_preset_enum("sweep"))
    name: str = Field(..., min_length=1, max_length=200)
    base: Annotated[
        Annotated[TrainSpec, Tag("train")] | Annotated[PipelineSpec, Tag("pipeline")], Discriminator(_kind)
    ] = Field(..., description="A train spec, or a pipeline whose training stage the grid varies.")
    grid: SweepGrid
    include_grpo: bool = Field(
        True, description="Also run GRPO once per (β, seed) with the same spec: the baseline differs only in loss."
    )
    grpo_budgets: GrpoBudgets | None = Field(
        None,
        description="Run the GRPO baseline at each of these budgets (steps, β, learning rate) × seeds, each point "
        "followed by the same fine-tuning and evaluation, so that GRPO traces a frontier.",
    )

    @model_validator(mode="after")
    def _budgets_need_grpo(self) -> SweepSpec:
        if self.grpo_budgets is not None and not self.include_grpo:
            raise ValueError("grpo_budgets need include_grpo: they are budgets for the GRPO baseline")
        grpo = len(self.grid.grpo_points(self.grpo_budgets)) if self.include_grpo else 0
        if len(self.grid.frpo_points()) + grpo > MAX_SWEEP_POINTS:
            raise ValueError(f"more than {MAX_SWEEP_POINTS} points: split the sweep")
        return self

    def points(self) -> list[TrainSpec | PipelineSpec]:
        """One spec per grid point (FRPO at every λ; GRPO once per remaining point, or per budget and remaining
        point, if include_grpo). In a pipeline the seed also seeds the fine-tuning stage, so a seed's spread covers
        the whole pipeline."""
        specs = [self._point("frpo", values) for values in self.grid.frpo_points()]
        if self.include_grpo:
            specs += [self._point("grpo", values) for values in self.grid.grpo_points(self.grpo_budgets)]
        return specs

    def _point(self, method: str, values: dict[str, Any]) -> TrainSpec | PipelineSpec:
        train = self.base.train if isinstance(self.base, PipelineSpec) else self.base
        point = TrainSpec.model_validate({**train.model_dump(), "method": method, **values})
        if not isinstance(self.base, PipelineSpec):
            return point
        finetune = self.base.finetune.model_copy(update={"seed": values["seed"]}) if "seed" in values else None
        return self.base.model_copy(update={"train": point, "finetune": finetune or self.base.finetune})


def check_runnable(spec: TrainSpec | FinetuneSpec | EvaluateSpec | PipelineSpec, settings: Settings) -> None:
    """What the shape cannot say: local paths (models, data, judge and reward models, benchmarks) confined to the
    model roots, trust_remote_code only if the server allows it, and GPU-only options (vLLM, flash-attn, DeepSpeed,
    several GPUs) only on the gpu queue. (Whether a parent run exists and has finished is the store's to say:
    `store.queries.check_lineage`.)"""
    if isinstance(spec, PipelineSpec):
        check_runnable(spec.train, settings)
        _check_finetune(spec.finetune, settings, prefix="finetune.")
        if spec.evaluation is not None and (spec.evaluate or spec.evaluate_before):
            _check_evaluation(spec.evaluation, spec.finetune.queue, settings, prefix="evaluation.")
        return
    if isinstance(spec, TrainSpec):
        if spec.trust_remote_code and not settings.allow_trust_remote_code:
            raise SpecError("trust_remote_code", "this server does not allow it (FRPO_ALLOW_TRUST_REMOTE_CODE=false)")
        _check_source("model", spec.model, settings)
        if spec.dataset != TOY_PROMPTS:
            _check_source("dataset", spec.dataset, settings)
        if "math" in spec.rewards and spec.decontaminate not in (None, "auto"):
            _check_source("decontaminate", spec.decontaminate, settings)
        _check_judge("judge", spec.judge, settings)
        _check_source("helpfulness", spec.helpfulness, settings)
        _check_eval(spec.eval, settings)
        if spec.queue == "cpu":
            _check_cpu(spec)
    elif isinstance(spec, FinetuneStage):
        if isinstance(spec, FinetuneSpec) and spec.model is not None:
            _check_source("model", spec.model, settings)
        _check_finetune(spec, settings)
    else:
        _check_evaluation(spec, spec.queue, settings)


def _check_cpu(spec: TrainSpec) -> None:
    """GPU-only options on the cpu queue: refused now, naming the field, rather than failing in a CPU worker."""
    trl = {
        "trl.use_vllm": bool(spec.trl.get("use_vllm")),
        "trl.deepspeed": spec.trl.get("deepspeed") is not None,
        "trl.model_init_kwargs.attn_implementation": (
            (spec.trl.get("model_init_kwargs") or {}).get("attn_implementation") == "flash_attention_2"
        ),
    }
    _refuse_on_cpu(spec.gpu, tuple(field for field, on in trl.items() if on))


def _refuse_on_cpu(gpu: GpuBase | None, others: tuple[str, ...] = (), prefix: str = "") -> None:
    """Refuse a cpu-queue job, naming the first GPU-only field among its `gpu` settings' and `others`."""
    refused = [*(f"gpu.{name}" for name in (gpu.gpu_only() if gpu is not None else [])), *others]
    if refused:
        raise SpecError(f"{prefix}{refused[0]}", "needs a GPU worker: set queue to 'gpu' (the cpu queue has no CUDA)")


def _check_evaluation(spec: EvaluateStage, queue: str, settings: Settings, prefix: str = "") -> None:
    if spec.safety:
        _check_eval(spec.eval, settings, prefix=f"{prefix}eval.")
    for i, benchmark in enumerate(spec.benchmarks):
        if "/" in benchmark:  # a task folder or a code set's file; names have no slash
            _check_source(f"{prefix}benchmarks.{i}", benchmark, settings, hub_ok=False)
    if queue == "cpu" and spec.backend == "vllm":
        raise SpecError(f"{prefix}backend", "vLLM needs a GPU worker: use 'hf' or 'auto', or set queue to 'gpu'")


def _check_finetune(spec: FinetuneStage, settings: Settings, prefix: str = "") -> None:
    _check_source(f"{prefix}dataset", spec.dataset, settings)
    _check_eval(spec.eval, settings, prefix=f"{prefix}eval.")
    if spec.queue == "cpu":
        _refuse_on_cpu(spec.gpu, prefix=prefix)


def _check_eval(spec: EvalSpec | None, settings: Settings, prefix: str = "eval.") -> None:
    if spec is None:
        return
    _check_source(f"{prefix}prompts", spec.prompts, settings)
    _check_judge(f"{prefix}judge", spec.judge, settings)
    for field in ("harmless_prompts", "helpfulness", "strongreject"):
        if getattr(spec, field) is not None:
            _check_source(f"{prefix}{field}", getattr(spec, field), settings)
    if spec.strongreject_judge is not None:
        _check_judge(f"{prefix}strongreject_judge", spec.strongreject_judge, settings)


def _check_judge(field: str, judge: str, settings: Settings) -> None:
    """A judge is a name, or 'kind:<model>' where the model is a hub id or a path under a model root."""
    _, _, model = judge.partition(":")
    if model and "/" in model:
        _check_source(field, model, settings)


def _check_source(field: str, value: str, settings: Settings, hub_ok: bool = True) -> None:
    """A shipped name (no slash), a hub id (owner/name, not an existing path), or a path under a model root."""
    path = Path(value).expanduser()
    if "/" not in value and not path.exists():
        return  # a name: 'tiny', a shipped data set; unknown names fail when the job starts, naming the choices
    if hub_ok and HUB_ID.match(value.split(":", 1)[0]) and not path.exists():
        return  # a hub id: loaded by name (the worker may still find no hub access)
    if not any(path.resolve().is_relative_to(root) for root in settings.model_roots):
        roots = ", ".join(str(r) for r in settings.model_roots)
        raise SpecError(field, f"{value!r} is neither a name, a hub id, nor a path under a model root ({roots})")
