"""The import paths of 0.1, kept working for one release: each old module stands for the modules its names moved to.

Up to 0.1 every part of the experiment lay in one flat package (``frpo_core.rl``, ``frpo_core.mathrl``,
``frpo_core.benchmarks``, ...). 0.2 keeps the method at the top and gives each of the experiment's concerns a
subpackage, so a script written against 0.1 would stop at its first import. Instead, an old module path still imports:
it is a stand-in whose every name is looked up in the modules it moved to, with a ``FutureWarning`` (shown by default:
these users are researchers running scripts, not library authors) naming the new place. ``python -m
frpo_core.quickstart`` runs the moved script the same way. Old paths go in 0.3.

Two old module names are now packages (``frpo_core.data``, ``frpo_core.toy``): their ``__init__`` forwards the old
names with :func:`forward_old_names`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

MOVED: dict[str, tuple[str, ...]] = {
    "frpo_core.rl": ("frpo_core.jobs.rl", "frpo_core.jobs.gpu", "frpo_core.toy.arithmetic"),
    "frpo_core.finetune": ("frpo_core.jobs.sft",),
    "frpo_core.gpu": ("frpo_core.jobs.gpu",),
    "frpo_core.rewards": (
        "frpo_core.safety.rewards",
        "frpo_core.jobs.rewards",
        "frpo_core.data.conversations",
        "frpo_core.toy.quickstart",
    ),
    "frpo_core.judges": ("frpo_core.safety.judges",),
    "frpo_core.reward_model": ("frpo_core.safety.reward_model",),
    "frpo_core.evals": ("frpo_core.safety.evaluation",),
    "frpo_core.mathrl": (
        "frpo_core.math.data",
        "frpo_core.math.verifier",
        "frpo_core.math.reward",
        "frpo_core.toy.arithmetic",
    ),
    "frpo_core.benchmarks": (
        "frpo_core.capability.harness",
        "frpo_core.capability.coding",
        "frpo_core.capability.results",
        "frpo_core.capability.harness_data",
    ),
    "frpo_core.lm_eval_data": ("frpo_core.capability.harness_data",),
    "frpo_core.sandbox": ("frpo_core.capability.sandbox",),
    "frpo_core.quickstart": ("frpo_core.toy.quickstart",),
    # old modules whose names are now packages: their __init__ forwards
    "frpo_core.data": ("frpo_core.data.sources", "frpo_core.data.conversations", "frpo_core.safety.prompts"),
    "frpo_core.toy": ("frpo_core.toy.safety",),
}
"""Old module → the modules its public names now live in, searched in order."""

RENAMED: dict[tuple[str, str], tuple[str, str]] = {
    ("frpo_core.rl", "TOY_PROMPTS"): ("frpo_core.toy.quickstart", "QUICKSTART_PROMPTS"),
}
"""(old module, old name) → (new module, new name) for the names that changed as well as moved."""


def _resolve(old: str, name: str) -> Any:
    """``old``'s name ``name`` from where it lives now, warning that it moved. Where several new modules hold the name
    (one imports it from another), the one that defines it is named."""
    new_module, new_name = RENAMED.get((old, name), (None, name))
    holders = [
        (candidate, getattr(module, new_name))
        for candidate in ((new_module,) if new_module else MOVED[old])
        if hasattr(module := importlib.import_module(candidate), new_name)
    ]
    if not holders:
        moved_to = ", ".join(MOVED[old])
        raise AttributeError(f"module {old!r} has no attribute {name!r} (its names moved to {moved_to})")
    home, value = next(((c, v) for c, v in holders if getattr(v, "__module__", None) == c), holders[0])
    warnings.warn(
        f"{old}.{name} moved to {home}.{new_name}; import it from there ({old} goes in 0.3)",
        FutureWarning,
        stacklevel=3,
    )
    return value


def forward_old_names(package: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for a package that replaced a module of the same name: old names resolve, warned."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _resolve(package, name)

    return __getattr__


class _StandIn(types.ModuleType):
    """An old module: every attribute is looked up where it moved."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _resolve(self.__name__, name)


class _StandInLoader(importlib.abc.Loader):
    """Creates the stand-in; for ``python -m old.module`` (runpy asks for code) it gives the moved module's code."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _StandIn(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        pass

    def get_code(self, fullname: str) -> types.CodeType | None:
        target = MOVED[fullname][0]
        message = f"python -m {fullname} moved to python -m {target} ({fullname} goes in 0.3)"
        warnings.warn(message, FutureWarning, stacklevel=2)
        return importlib.util.find_spec(target).loader.get_code(target)


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old modules of :data:`MOVED` that no longer exist as files."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED or fullname in _PACKAGES:
            return None
        # the moved module's file as the origin: what `python -m` puts in sys.argv[0]
        origin = importlib.util.find_spec(MOVED[fullname][0]).origin
        return importlib.util.spec_from_loader(fullname, _StandInLoader(), origin=origin)


_PACKAGES = ("frpo_core.data", "frpo_core.toy")  # old module names that are packages now: found as files


def install() -> None:
    """Make the old module paths importable (idempotent; ``frpo_core`` calls it on import). First on the meta path,
    so that a stale copy of an old module (an older editable install, say) is never picked up instead."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedModuleFinder())
