"""Tasks: a named set of Problems plus the parameters to run them.

:func:`load_task` picks a *loader* by the name's prefix and imports it only when used, so
``import evalharness.tasks`` never pulls in a heavy optional dependency:

* ``lm_eval:<task>`` → :mod:`evalharness.tasks.lmeval` (any lm-evaluation-harness task, built
  by lm-eval itself; needs the ``lm-eval`` extra);
* anything else (a built-in name or alias, or a task YAML path) →
  :mod:`evalharness.tasks.yaml_tasks` (the YAMLs in ``tasks/``).

Adding a loader is one entry in :data:`LOADERS`: ``prefix -> "module:function"``, the function
taking ``(name, data_file=, limit=, few_shot=)`` and returning a :class:`Task`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from evalharness.tasks.base import NORMALIZERS, Task, TaskLoadError, last_boxed
from evalharness.tasks.yaml_tasks import (
    DataFileError,
    data_env_var,
    list_yaml_tasks,
    read_rows,
    tasks_dir,
)

__all__ = [
    "LOADERS",
    "NORMALIZERS",
    "DataFileError",
    "Task",
    "TaskLoadError",
    "data_env_var",
    "last_boxed",
    "list_tasks",
    "load_task",
    "read_rows",
    "tasks_dir",
]

Loader = Callable[..., Task]

# "<prefix>:<name>" -> the loader of <name>, as "module:function" (imported on first use).
# A name without a known prefix goes to DEFAULT_LOADER.
LOADERS: dict[str, str] = {
    "lm_eval": "evalharness.tasks.lmeval:load",
}
DEFAULT_LOADER = "evalharness.tasks.yaml_tasks:load_yaml_task"


def _resolve(spec: str) -> Loader:
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


def _route(name_or_path: str) -> tuple[str, str]:
    """(loader spec, the name that loader gets)."""
    prefix, sep, rest = name_or_path.partition(":")
    if sep and prefix in LOADERS:
        return LOADERS[prefix], rest
    return DEFAULT_LOADER, name_or_path


def list_tasks() -> list[str]:
    """Names of the built-in tasks (aliases excluded). Prefixed names (``lm_eval:<name>``)
    reach the other loaders' tasks."""
    return list_yaml_tasks()


def load_task(
    name_or_path: str,
    data_file: str | Path | None = None,
    limit: int | None = None,
    few_shot: int | None = None,
) -> Task:
    """Load a built-in task by name (or alias), a task YAML by path, or ``lm_eval:<task>``.

    ``data_file`` overrides where the rows come from (json/jsonl/parquet/csv; for lm-eval also
    ``test=PATH,train=PATH``); ``limit`` keeps the first N problems; ``few_shot`` sets the
    number of few-shot examples (None = the task's default). Raises :class:`TaskLoadError`
    with a one-line message.
    """
    spec, name = _route(name_or_path)
    if not name:
        raise TaskLoadError(f"task {name_or_path!r}: give a task name after the prefix")
    return _resolve(spec)(name, data_file=data_file, limit=limit, few_shot=few_shot)
