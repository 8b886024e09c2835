"""Job specs: the one contract between the API (which validates them) and the workers (which run them). No torch.

Defaults are the toy task on the tiny offline model, so the smallest valid submission is
`{"kind": "train", "method": "frpo"}` and it finishes in well under a minute on a CPU.

One module per job kind (train, finetune, evaluate, pipeline, sweep), the settings they share (evaluation, gpu,
trl, base) and the server-side checks (checks); everything is importable from here.
"""

from store.specs.base import (
    HUB_ID,
    QUICKSTART_DATASET,
    STREAMED_DATASETS,
    TINY_MODEL,
    WARM_START_MODEL,
    SpecError,
)
from store.specs.checks import check_runnable
from store.specs.evaluate import CODE_BENCHMARKS, EvaluateSpec, EvaluateStage
from store.specs.finetune import FinetuneSpec, FinetuneStage
from store.specs.gpu import GpuBase, GpuSpec
from store.specs.pipeline import JOB_KINDS, JOB_SPEC, JobSpec, PipelineSpec
from store.specs.safety_eval import EvalSpec
from store.specs.sweep import MAX_SWEEP_POINTS, GrpoBudgets, SweepGrid, SweepSpec
from store.specs.train import TrainSpec
from store.specs.trl import REFUSED_TRL_OPTIONS, TrlOptions

__all__ = [
    "CODE_BENCHMARKS",
    "HUB_ID",
    "JOB_KINDS",
    "JOB_SPEC",
    "MAX_SWEEP_POINTS",
    "REFUSED_TRL_OPTIONS",
    "STREAMED_DATASETS",
    "TINY_MODEL",
    "WARM_START_MODEL",
    "QUICKSTART_DATASET",
    "EvalSpec",
    "EvaluateSpec",
    "EvaluateStage",
    "FinetuneSpec",
    "FinetuneStage",
    "GpuBase",
    "GpuSpec",
    "GrpoBudgets",
    "JobSpec",
    "PipelineSpec",
    "SpecError",
    "SweepGrid",
    "SweepSpec",
    "TrainSpec",
    "TrlOptions",
    "check_runnable",
]
