"""Where lm-eval tasks read their data, and whether it is here: checked before a benchmark's model loads.

A worker on a machine without network must never wait on the hub: ``datasets`` retries an unreachable hub for about
30 s, and behind a firewall that drops packets each try waits for its timeout. So :func:`lm_eval_task_data` reads each
task's dataset from the configs lm-eval indexed (groups such as ``mmlu`` expanded, without building the tasks, which
would load the data), and :func:`check_lm_eval_data` decides whether the run can go offline, or raises
:class:`BenchmarkDataMissing` naming each missing dataset, the command that fetches it and the cache to copy.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def offline_mode(enabled: bool = True) -> Iterator[None]:
    """Switch the hub and ``datasets`` to offline mode inside the block (environment and the libraries' flags, which
    they read once at import), so nothing waits on a network that is not there; restored afterwards."""
    if not enabled:
        yield
        return
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved_env = {name: os.environ.get(name) for name in names}
    saved_flags = _offline_flags()
    saved_values = [getattr(module, name) for module, name in saved_flags]
    os.environ.update(dict.fromkeys(names, "1"))
    for module, name in saved_flags:
        setattr(module, name, True)
    try:
        yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for (module, name), value in zip(saved_flags, saved_values, strict=True):
            setattr(module, name, value)


class BenchmarkDataMissing(RuntimeError):
    """lm-eval data that is neither on this machine nor fetchable now: raised before the model loads, naming each
    task's dataset and the command that fetches it, so a worker without network fails at once with what to do
    instead of waiting on the hub's retries."""


@dataclass(frozen=True)
class TaskData:
    """Where one lm-eval task reads its documents, as its config says: ``load_dataset(path, name, **kwargs)``
    (``dataset_path``, ``dataset_name``, ``dataset_kwargs``). ``requested`` is the name asked for: a group's for
    its subtasks, so a report can say "mmlu" rather than 57 subtask names."""

    requested: str
    task: str
    path: str
    name: str | None
    kwargs: dict[str, Any]

    def key(self) -> tuple[str, str | None, str]:
        """What makes two tasks read the same data (57 MMLU subtasks are 57 configs of one hub dataset)."""
        return self.path, self.name, json.dumps(self.kwargs, sort_keys=True, default=str)


def lm_eval_task_data(task_manager: Any, names: Sequence[str]) -> list[TaskData]:
    """The dataset of every task that ``names`` stand for (groups and tags expanded, a group's overrides applied),
    read from the configs ``task_manager`` indexed, without building the tasks: building a task loads its data,
    which is what must not wait on the network. Tasks that load their own data (``custom_dataset``, like the shipped
    ``toy_arith``, or a Python task class with no ``dataset_path``) are not listed. An unknown name raises
    ``ValueError`` here, before the model loads, rather than in lm-eval after it."""
    found = []
    for requested in names:
        for config in _task_configs(task_manager.task_index, requested, {}):
            if config.get("dataset_path") and not config.get("custom_dataset"):
                found.append(
                    TaskData(
                        requested=requested,
                        task=str(config["task"]),
                        path=str(config["dataset_path"]),
                        name=config.get("dataset_name"),
                        kwargs=dict(config.get("dataset_kwargs") or {}),
                    )
                )
    return found


def _task_configs(index: Mapping[str, Any], name: str, overrides: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The configs of the tasks ``name`` (an indexed task, group or tag, or a task YAML file) stands for."""
    entry = index.get(name)
    if entry is not None and entry.kind.name == "TAG":  # by name: lm-eval's Kind lives in a private module
        for task in sorted(entry.tags):
            yield from _task_configs(index, task, overrides)
        return
    if entry is not None:
        config = entry.cfg
    elif Path(name).is_file():
        from lm_eval.tasks._yaml_loader import load_yaml

        config = load_yaml(name, resolve_func=False)
    else:
        raise ValueError(f"{name!r} is no lm-eval task, group or tag (nor a task YAML file)")
    yield from _config_tasks(index, config, overrides)


def _config_tasks(
    index: Mapping[str, Any], config: Mapping[str, Any], overrides: Mapping[str, Any]
) -> Iterator[dict[str, Any]]:
    """A task's config with ``overrides`` applied, or a group's members' configs, merged as lm-eval's TaskFactory
    merges them: the group's own non-group keys under the caller's overrides, a member's inline keys over both."""
    if "group" not in config or "class" in config:
        yield {**config, **overrides}
        return
    from dataclasses import fields

    from lm_eval.config.group import GroupConfig

    group_fields = {item.name for item in fields(GroupConfig)}
    merged = {**{key: value for key, value in config.items() if key not in group_fields}, **overrides}
    for member in config.get("task") or []:
        if isinstance(member, str):
            yield from _task_configs(index, member, merged)
        elif "group" in member and member["group"] in index:
            inline = {key: value for key, value in member.items() if key != "group"}
            yield from _task_configs(index, member["group"], {**merged, **inline})
        elif "group" in member:
            yield from _config_tasks(index, member, merged)
        elif member["task"] in index:
            inline = {key: value for key, value in member.items() if key != "task"}
            yield from _task_configs(index, member["task"], {**merged, **inline})
        else:
            yield {**merged, **member}


def check_lm_eval_data(data: Sequence[TaskData], offline: bool | None = None) -> bool:
    """Whether lm-eval should run offline; raises :class:`BenchmarkDataMissing` first when it could not get its data.

    Local data (a folder, or data files on disk) must exist. A hub dataset must be in the ``datasets`` cache, unless
    the hub can be reached and offline mode is off. ``offline``: ``True`` never contacts the network; ``None``
    (decide) runs offline when the environment says so (``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE``) or when
    everything is already here, so nothing waits on the hub, and otherwise online after one short reachability
    probe; ``False`` runs online even when everything is cached (to pick up a newer revision), with the same probe
    when something is missing. Each distinct dataset is checked once, against the cache only (fast, no network).
    """
    import datasets.config

    absent = {task.task: files for task in data if (files := _missing_local_files(task))}
    unique = {task.key(): task for task in data if _needs_cache(task)}
    cached = {key: _in_datasets_cache(task) for key, task in unique.items()}
    uncached = [task for task in data if _needs_cache(task) and not cached[task.key()]]
    forced = offline is True or _offline_by_environment()
    why = ""
    if uncached and forced:
        why = "offline mode is on (offline=True, HF_HUB_OFFLINE or HF_DATASETS_OFFLINE)"
    elif uncached and not _hub_reachable(datasets.config.HF_ENDPOINT):
        why = f"the Hugging Face Hub ({datasets.config.HF_ENDPOINT}) cannot be reached"
    if absent or why:
        raise BenchmarkDataMissing(_missing_data_report(absent, uncached if why else [], why))
    return forced or (offline is None and not uncached)


def _offline_flags() -> list[tuple[Any, str]]:
    """The hub's and ``datasets``' own offline switches, as (module, attribute): they read the environment once, at
    import, so switching offline means setting these too, and reading them says what the environment asked for."""
    import datasets.config
    import huggingface_hub.constants

    return [
        (huggingface_hub.constants, "HF_HUB_OFFLINE"),
        (datasets.config, "HF_HUB_OFFLINE"),
        (datasets.config, "HF_DATASETS_OFFLINE"),
    ]


def _offline_by_environment() -> bool:
    """Whether any of :func:`_offline_flags` is on (set from the environment when the libraries were imported)."""
    return any(getattr(module, name) for module, name in _offline_flags())


def _is_remote(path: str) -> bool:
    """A URL (``hf://``, ``https://``) or a hub dataset id (``owner/name``, as ``datasets`` tells them from paths:
    relative, at most one slash, not an existing folder)."""
    if "://" in path:
        return True
    plain = not path.startswith((".", "~", "/")) and path.count("/") <= 1
    return plain and not Path(path).is_dir()


def _data_file_patterns(data_files: Any) -> list[str]:
    """``dataset_kwargs["data_files"]`` (a path, a list, or a split → path(s) mapping) as a flat list."""
    if data_files is None:
        return []
    if isinstance(data_files, str):
        return [data_files]
    if isinstance(data_files, Mapping):
        return [pattern for value in data_files.values() for pattern in _data_file_patterns(value)]
    return [str(pattern) for pattern in data_files]


def _is_packaged(path: str) -> bool:
    """A builder that ``datasets`` ships (``json``, ``csv``, ``parquet``, …): its data files say where the data is."""
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    return path in _PACKAGED_DATASETS_MODULES


def _needs_cache(task: TaskData) -> bool:
    """Whether the task's data comes from the hub (or a URL), so it must be in the ``datasets`` cache offline."""
    if _is_packaged(task.path):
        return any("://" in pattern for pattern in _data_file_patterns(task.kwargs.get("data_files")))
    return _is_remote(task.path)


def _missing_local_files(task: TaskData) -> list[str]:
    """The task's local dataset folder or data files that do not exist, as absolute paths (``datasets`` reads a
    packaged builder's relative data files from the working directory, a folder's from that folder)."""
    packaged = _is_packaged(task.path)
    if not packaged and _is_remote(task.path):
        return []
    base = Path.cwd() if packaged else Path(task.path).expanduser().absolute()
    if not packaged and not base.is_dir():
        return [str(base)]
    base = base / (task.kwargs.get("data_dir") or "")
    patterns = [p for p in _data_file_patterns(task.kwargs.get("data_files")) if "://" not in p]
    paths = [base / Path(pattern).expanduser() for pattern in patterns]
    return [str(path) for path in paths if not glob.glob(str(path), recursive=True)]


def _in_datasets_cache(task: TaskData) -> bool:
    """Whether ``datasets`` can load the task's data without the network: its dataset builder is made in offline
    mode, which finds a downloaded dataset in the cache (``HF_DATASETS_CACHE``) or fails at once. Any failure counts
    as absent: the run would fail the same way offline."""
    import inspect

    import datasets

    builder_only = set(inspect.signature(datasets.load_dataset).parameters) - set(
        inspect.signature(datasets.load_dataset_builder).parameters
    )
    kwargs = {key: value for key, value in task.kwargs.items() if key not in builder_only | {"trust_remote_code"}}
    try:
        with offline_mode():
            datasets.load_dataset_builder(task.path, task.name, **kwargs)
    except Exception:  # whatever stops the builder offline stops the run offline
        return False
    return True


def _hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """One HEAD request to the hub: any HTTP answer means it can be reached. Made once, only when data is missing,
    so a machine behind a firewall that drops packets waits seconds here, not through ``datasets``' retries."""
    import httpx

    try:
        httpx.head(endpoint, timeout=timeout)
    except httpx.HTTPError:
        return False
    return True


def _missing_data_report(absent: Mapping[str, list[str]], uncached: Sequence[TaskData], why: str) -> str:
    """The error text: each missing local file by task; each dataset not cached, by the task (or group) asked for;
    one ``load_dataset`` command per dataset to run where there is network; and the cache folder to copy here.
    ``load_dataset`` rather than ``hf download``: offline, ``datasets`` reads only its own prepared cache
    (``HF_DATASETS_CACHE``), not the hub's file cache."""
    import datasets.config

    lines = ["lm-eval data is missing on this machine:"]
    lines += [f"  {task}: {', '.join(files)} does not exist" for task, files in absent.items()]
    if not uncached:
        return "\n".join(lines)
    by_request: dict[tuple[str, str], list[TaskData]] = {}
    by_path: dict[str, list[TaskData]] = {}
    for task in uncached:
        by_request.setdefault((task.requested, task.path), []).append(task)
        by_path.setdefault(task.path, []).append(task)
    for (requested, _), tasks in by_request.items():
        named = f"{requested} ({len(tasks)} tasks)" if len(tasks) > 1 else tasks[0].task
        lines.append(f"  {named}: {_describe_source(tasks)}, not in the datasets cache")
    lines.append(f"and {why}. Fetch them on a machine with network (same datasets version):")
    lines += [f"  {_fetch_command(tasks)}" for tasks in by_path.values()]
    lines.append(
        f"then copy its datasets cache ({datasets.config.HF_DATASETS_CACHE}: HF_DATASETS_CACHE, or HF_HOME/datasets) "
        "to the same place here, or point HF_DATASETS_CACHE at the copy; HF_HUB_OFFLINE=1 keeps runs off the network."
    )
    return "\n".join(lines)


def _describe_source(tasks: Sequence[TaskData]) -> str:
    """Where tasks that read one dataset path get their data: a hub dataset and its configs, or the remote data
    files of a packaged builder (``json``, ``csv``, …)."""
    path = tasks[0].path
    if _is_packaged(path):
        remote = {p for task in tasks for p in _data_file_patterns(task.kwargs.get("data_files")) if "://" in p}
        return f"{path} data files {', '.join(sorted(remote))}"
    configs = sorted({str(task.name) for task in tasks if task.name is not None})
    return f"hub dataset {path}" + (
        f", config{'s' if len(configs) > 1 else ''} {', '.join(configs)}" if configs else ""
    )


def _fetch_command(tasks: Sequence[TaskData]) -> str:
    """A shell command that loads, as lm-eval would, the data of ``tasks`` (all on one dataset path, in any number
    of configs) into the ``datasets`` cache: one call, a loop over config names, or a loop over keyword sets."""
    path = tasks[0].path
    variants = {}
    for task in tasks:
        kwargs = {key: value for key, value in task.kwargs.items() if key != "trust_remote_code"}
        variant = ({"name": task.name} if task.name is not None else {}) | kwargs
        variants[json.dumps(variant, sort_keys=True, default=str)] = variant
    calls = list(variants.values())
    shared = [{key: value for key, value in call.items() if key != "name"} for call in calls]
    if len(calls) == 1:
        code = f"datasets.load_dataset({path!r}{_keywords(calls[0])})"
    elif all(rest == shared[0] for rest in shared):
        names = [call.get("name") for call in calls]
        code = f"[datasets.load_dataset({path!r}, name=name{_keywords(shared[0])}) for name in {names!r}]"
    else:
        code = f"[datasets.load_dataset({path!r}, **kwargs) for kwargs in {calls!r}]"
    code = f"import datasets; {code}"
    return f'python -c "{code}"' if not set('"$`\\!') & set(code) else f"python -c {shlex.quote(code)}"


def _keywords(kwargs: Mapping[str, Any]) -> str:
    """``kwargs`` as the keyword arguments of a Python call (``, key=value``…), for :func:`_fetch_command`."""
    return "".join(f", {key}={value!r}" for key, value in kwargs.items())
