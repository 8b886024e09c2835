"""frpo_core: the FRPO method (arXiv 2602.08813) on TRL, and the paper's experiments built on it. A plain library: it
knows nothing of the service (no database, HTTP or Celery; import-linter enforces it).

Two layers, dependencies pointing down only (the contracts in pyproject.toml enforce both):

- **The method**, at the top of the package: ``loss`` (the FRPO loss, a pure tensor function), ``groups`` (prompt
  groups as a dense layout), ``distributed`` (cross-rank gathering), ``config`` and ``trainer`` (TRL's GRPO with the
  FRPO loss), ``tiny`` (a 140k-parameter chat model built offline). It imports none of the experiment's parts.
- **The experiment's parts**, one subpackage per concern:

  - ``data``: where data sets come from (shipped, hub, files) and SFT conversations;
  - ``safety``: safety prompts (HarmBench, StrongREJECT, the authors' mix), judges, the safety and helpfulness
    rewards, the reward model, the in-loop safety evaluation;
  - ``math``: MATH-style data with decontamination, the boxed-answer verifier and the math reward;
  - ``capability``: capability benchmarks (lm-eval tasks, EvalPlus-style code pass@1) and the sandbox that runs
    model-written code;
  - ``toy``: every shipped toy set and warm start, and the quickstart;
  - ``jobs``: RL and SFT runs described as data (the service's workers fill them in), GPU options, rewards by name.

  From the bottom up: ``data``; ``safety``, ``math`` and ``capability`` (independent of one another); ``toy``;
  ``jobs``.

The names below load lazily, so ``import frpo_core.loss`` does not pay for importing TRL. Module paths of 0.1
(``frpo_core.rl``, ``frpo_core.mathrl``, ...) still import, with a warning naming the new place
(:mod:`frpo_core._moved`).
"""

from importlib import import_module

from frpo_core import _moved

_EXPORTS = {
    "FRPOConfig": "frpo_core.config",
    "FRPOTrainer": "frpo_core.trainer",
    "FRPOLossOptions": "frpo_core.loss",
    "FRPOLossOutput": "frpo_core.loss",
    "frpo_loss": "frpo_core.loss",
    "frpo_loss_terms": "frpo_core.loss",
    "effective_advantages": "frpo_core.loss",
    "robust_reward": "frpo_core.loss",
    "TinyModelConfig": "frpo_core.tiny",
    "build_tiny_model": "frpo_core.tiny",
    "load_tiny_model": "frpo_core.tiny",
}
__all__ = sorted(_EXPORTS)

_moved.install()


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'frpo_core' has no attribute {name!r}")
