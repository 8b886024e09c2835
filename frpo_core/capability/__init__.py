"""Capability benchmarks, run on a model before and after downstream fine-tuning (docs/method.md §3):
lm-evaluation-harness tasks such as MATH500, MMLU and IFEval (:mod:`.harness`, with each task's data checked first in
:mod:`.harness_data`), EvalPlus-style code pass@1 (:mod:`.coding`), both returning a :class:`.results.BenchmarkResult`,
and the sandbox that runs model-written code (:mod:`.sandbox`).

"Capability benchmarks" is this package's word; the repository's top-level ``benchmarks/`` holds performance scripts.
May import the method and ``data``; never ``safety``, ``math``, ``toy``, ``jobs`` or anything of the service.
"""
