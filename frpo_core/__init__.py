"""frpo_core: the FRPO method (arXiv 2602.08813) on TRL: loss, trainer, and a tiny offline model.

The names below load lazily, so `import frpo_core.loss` does not pay for importing TRL.
"""

from importlib import import_module

_EXPORTS = {
    "FRPOConfig": "frpo_core.config",
    "FRPOTrainer": "frpo_core.trainer",
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


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'frpo_core' has no attribute {name!r}")
