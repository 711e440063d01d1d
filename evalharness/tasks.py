"""Tasks: a named set of Problems plus the parameters to run them.

A task is a YAML file in ``tasks/`` (data and parameters only, never logic) that says where its
rows come from (a Hugging Face dataset and/or a local file), which row fields hold the question,
answer, id and worked solution (a list of candidate names, so the hub's and the local files'
spellings both work), how the answer is normalised (a *named* normaliser implemented here),
the prompt templates (zero-shot and few-shot) and the default budgets and token limits.

Data lookup order for a task (first that exists wins):

1. ``data_file`` passed to :func:`load_task` (the CLI's ``--data-file``);
2. the environment variable ``EVALHARNESS_DATA_<NAME>`` (``NAME`` = the task name upper-cased,
   non-alphanumerics as ``_``, e.g. ``EVALHARNESS_DATA_GSM8K``);
3. ``$EVALHARNESS_DATA_DIR/<source.local>`` where the YAML names a ``source.local`` path;
4. ``source.file`` (relative to the YAML's folder: the shipped synthetic sets);
5. ``source.hf`` through ``datasets.load_dataset(path, name, split=split)``.

Names of the form ``lm_eval:<task>`` are handed to :mod:`evalharness.lmeval_bridge`.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import evalharness
from evalharness.types import Problem

__all__ = [
    "NORMALIZERS",
    "Task",
    "TaskLoadError",
    "data_env_var",
    "last_boxed",
    "list_tasks",
    "load_task",
    "read_rows",
    "tasks_dir",
]

LMEVAL_PREFIX = "lm_eval:"
ANSWER_TYPES = ("integer", "number", "math", "string", "choice")


class TaskLoadError(RuntimeError):
    """A task could not be found or its data could not be loaded (message is one line)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True)
class Task:
    name: str
    problems: tuple[Problem, ...]
    answer_type: str
    default_budgets: tuple[int, ...]
    max_answer_tokens: int
    max_thinking_tokens: int
    description: str = ""
    # few-shot (user turn, assistant turn) pairs, formatted; the prompt builder puts them before
    # each Problem.prompt (chat turns, or concatenated). Empty when zero-shot.
    few_shot: tuple[tuple[str, str], ...] = ()
    system_prompt: str | None = None
    # optional extraction regex for completions (group 1 if the pattern has groups, else match)
    answer_regex: str | None = None
    source: str = ""  # where the rows came from (file path or hub id), for the run manifest

    def __len__(self) -> int:
        return len(self.problems)


# ---------------------------------------------------------------------------------------------
# answer normalisers (named in YAML as `normalize: <name>`)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``, stripped: the scorer's extractor, one definition."""
    from evalharness.scoring import last_boxed as _last_boxed

    found = _last_boxed(text)
    return found.strip() if found is not None else None


def _norm_strip(x: Any) -> str:
    return str(x).strip()


def _norm_int(x: Any) -> str:
    s = str(x).strip().replace(",", "")
    if s.startswith("$") and s.endswith("$"):
        s = s[1:-1].strip()
    try:
        return str(int(s))
    except ValueError:
        f = float(s)
        if f != int(f):
            raise ValueError(f"not an integer: {x!r}") from None
        return str(int(f))


def _norm_gsm8k_hash(x: Any) -> str:
    s = str(x)
    if "####" not in s:
        raise ValueError("no '####' final-answer marker")
    return s.rsplit("####", 1)[1].strip().replace(",", "")


def _norm_boxed(x: Any) -> str:
    b = last_boxed(str(x))
    if b is None:
        raise ValueError("no \\boxed{...}")
    return b


NORMALIZERS: dict[str, Callable[[Any], str]] = {
    "none": str,
    "strip": _norm_strip,
    "int": _norm_int,
    "gsm8k_hash": _norm_gsm8k_hash,
    "boxed": _norm_boxed,
}


# ---------------------------------------------------------------------------------------------
# locating and reading


def tasks_dir() -> Path:
    """The folder of task YAMLs: ``$EVALHARNESS_TASKS_DIR`` or ``<repo>/tasks``."""
    env = os.environ.get("EVALHARNESS_TASKS_DIR")
    return Path(env) if env else Path(evalharness.__file__).resolve().parents[1] / "tasks"


def data_env_var(task_name: str) -> str:
    return "EVALHARNESS_DATA_" + re.sub(r"[^A-Za-z0-9]", "_", task_name).upper()


def _yaml_files() -> list[Path]:
    d = tasks_dir()
    return sorted([*d.glob("*.yaml"), *d.glob("*.yml")]) if d.is_dir() else []


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise TaskLoadError(f"cannot read task file {path}: {e}") from e
    if not isinstance(cfg, dict) or not cfg.get("name"):
        raise TaskLoadError(f"task file {path} is not a mapping with a 'name'")
    return cfg


def _registry() -> dict[str, Path]:
    """name or alias -> YAML path."""
    reg: dict[str, Path] = {}
    for p in _yaml_files():
        try:
            cfg = _read_yaml(p)
        except TaskLoadError:
            continue
        reg.setdefault(str(cfg["name"]), p)
        for alias in cfg.get("aliases") or ():
            reg.setdefault(str(alias), p)
    return reg


def list_tasks() -> list[str]:
    """Names of the built-in tasks (aliases excluded). ``lm_eval:<name>`` reaches lm-eval's."""
    names = []
    for p in _yaml_files():
        try:
            names.append(str(_read_yaml(p)["name"]))
        except TaskLoadError:
            continue
    return sorted(set(names))


def read_rows(path: str | Path, records_key: str | None = None) -> list[dict[str, Any]]:
    """Rows of a local json / jsonl / parquet / csv file as dicts.

    A ``.json`` file may be a list of rows, one object per line, or a single object holding the
    row list under ``records_key`` (or, failing that, the first of ``examples``/``data``/``rows``
    /``test``/``instances`` present), as in BIG-Bench Hard's ``{"canary":…, "examples": [...]}``.
    """
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in (".gz", ".bz2", ".xz", ".zst") and len(suffixes) > 1:
        suffix = suffixes[-2]  # pandas/pyarrow read compressed inputs below
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist()
    if suffix in (".csv", ".tsv"):
        with p.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ","))
    if suffix in (".jsonl", ".ndjson"):
        with p.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    if suffix == ".json":
        text = p.read_text(encoding="utf-8")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:  # json-lines with a .json suffix
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        if isinstance(obj, list):
            return obj
        if isinstance(obj, dict):
            keys = [records_key] if records_key else []
            keys += ["examples", "data", "rows", "test", "instances"]
            for k in keys:
                if k and isinstance(obj.get(k), list):
                    return obj[k]
            raise ValueError(f"JSON object has no list of rows under any of {keys}")
        raise ValueError("JSON file holds neither a list of rows nor an object with one")
    raise ValueError(f"unsupported file type {p.suffix!r} (use .json, .jsonl, .parquet or .csv)")


def _load_hf(hf: dict[str, Any]) -> list[dict[str, Any]]:
    import datasets

    ds = datasets.load_dataset(hf["path"], hf.get("name"), split=hf.get("split", "test"))
    return [dict(r) for r in ds]


def _short(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    msg = lines[0] if lines else ""
    return f"{type(e).__name__}: {msg[:200]}"


def _fetch_rows(
    cfg: dict[str, Any], base: Path, data_file: str | Path | None
) -> tuple[list[dict[str, Any]], str]:
    name = str(cfg["name"])
    src = cfg.get("source") or {}
    records_key = src.get("records")
    env = data_env_var(name)
    hint = f"point at a local file with --data-file PATH or {env}=PATH (json/jsonl/parquet/csv)"
    # explicit local files: a missing one is an error, never silently replaced by the hub
    explicit: list[tuple[str, Path]] = []
    if data_file is not None:
        explicit.append(("--data-file", Path(data_file)))
    elif os.environ.get(env):
        explicit.append((env, Path(os.environ[env])))
    for label, p in explicit:
        p = p.expanduser()
        if not p.is_file():
            raise TaskLoadError(f"task {name!r}: data file {p} ({label}) does not exist; {hint}")
        try:
            return read_rows(p, records_key), str(p)
        except Exception as e:  # noqa: BLE001 - any parse failure becomes one clear line
            raise TaskLoadError(f"task {name!r}: cannot read {p} ({_short(e)}); {hint}") from e

    looked: list[str] = []
    candidates: list[Path] = []
    if src.get("local"):
        data_dir = os.environ.get("EVALHARNESS_DATA_DIR")
        if data_dir:
            candidates.append(Path(data_dir) / src["local"])
        else:
            looked.append(f"$EVALHARNESS_DATA_DIR/{src['local']} (EVALHARNESS_DATA_DIR unset)")
    if src.get("file"):
        candidates.append(base / src["file"])
    for p in candidates:
        if p.is_file():
            try:
                return read_rows(p, records_key), str(p)
            except Exception as e:  # noqa: BLE001
                raise TaskLoadError(f"task {name!r}: cannot read {p} ({_short(e)}); {hint}") from e
        looked.append(f"{p} (missing)")

    hf = src.get("hf")
    if hf:
        where = f"hf:{hf['path']}" + (f"/{hf['name']}" if hf.get("name") else "")
        where += f"[{hf.get('split', 'test')}]"
        try:
            return _load_hf(hf), where
        except Exception as e:  # noqa: BLE001
            looked.append(f"{where} ({_short(e)})")
    tried = "; ".join(looked) if looked else "no source configured"
    raise TaskLoadError(f"task {name!r}: cannot load data; looked at: {tried}; {hint}")


# ---------------------------------------------------------------------------------------------
# building problems


def _candidates(spec: Any) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        return [spec]
    return [str(s) for s in spec]


def _pick(row: dict[str, Any], names: Sequence[str]) -> tuple[str | None, Any]:
    for n in names:
        if n in row and row[n] is not None:
            return n, row[n]
    return None, None


def _resolve_field(
    rows: list[dict[str, Any]], role: str, names: list[str], task: str, where: str, required: bool
) -> str | None:
    """The first candidate name present in the first row (all rows are checked later)."""
    if not names:
        if required:
            raise TaskLoadError(f"task {task!r}: no field names given for {role!r} in its YAML")
        return None
    first = rows[0]
    for n in names:
        if n in first:
            return n
    if required:
        raise TaskLoadError(
            f"task {task!r}: none of the fields {names} for {role!r} is in {where}; "
            f"its columns are {sorted(first)}; fix `fields.{role}` in the task YAML"
        )
    return None


def _fmt(template: str, task: str, **values: Any) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as e:
        raise TaskLoadError(
            f"task {task!r}: bad prompt template {template!r} ({_short(e)}); use {{question}} "
            "and double literal braces as {{{{ }}}}"
        ) from e


def _build(
    cfg: dict[str, Any],
    base: Path,
    data_file: str | Path | None,
    limit: int | None,
    few_shot: int | None,
) -> Task:
    name = str(cfg["name"])
    answer_type = str(cfg.get("answer_type", "string"))
    if answer_type not in ANSWER_TYPES:
        raise TaskLoadError(f"task {name!r}: answer_type {answer_type!r} not in {ANSWER_TYPES}")
    norm_name = str(cfg.get("normalize", "strip"))
    if norm_name not in NORMALIZERS:
        raise TaskLoadError(
            f"task {name!r}: unknown normaliser {norm_name!r}; choose one of {sorted(NORMALIZERS)}"
        )
    normalize = NORMALIZERS[norm_name]

    rows, where = _fetch_rows(cfg, base, data_file)
    if not rows:
        raise TaskLoadError(f"task {name!r}: {where} has no rows")
    if limit is not None:
        if limit < 0:
            raise TaskLoadError(f"task {name!r}: limit must be >= 0, got {limit}")
        rows = rows[:limit]
        if not rows:
            raise TaskLoadError(f"task {name!r}: limit={limit} leaves no problems")

    fields_cfg = cfg.get("fields") or {}
    q_field = _resolve_field(
        rows, "question", _candidates(fields_cfg.get("question")), name, where, True
    )
    a_field = _resolve_field(
        rows, "answer", _candidates(fields_cfg.get("answer")), name, where, True
    )
    id_field = _resolve_field(rows, "id", _candidates(fields_cfg.get("id")), name, where, False)
    sol_field = _resolve_field(
        rows, "solution", _candidates(fields_cfg.get("solution")), name, where, False
    )
    think_field = _resolve_field(
        rows, "thinking", _candidates(fields_cfg.get("thinking")), name, where, False
    )
    meta_fields = _candidates(fields_cfg.get("meta"))

    prompt_cfg = cfg.get("prompt") or {}
    if isinstance(prompt_cfg, str):
        prompt_cfg = {"zero_shot": prompt_cfg}
    zero_tpl = str(prompt_cfg.get("zero_shot", "{question}"))
    fs_cfg = prompt_cfg.get("few_shot") or {}
    examples = [
        (str(e["question"]), str(e["answer"])) for e in (cfg.get("few_shot_examples") or [])
    ]
    k = int(cfg.get("default_few_shot", 0) or 0) if few_shot is None else int(few_shot)
    if k < 0:
        raise TaskLoadError(f"task {name!r}: few_shot must be >= 0, got {k}")
    if k > len(examples):
        raise TaskLoadError(
            f"task {name!r}: {k} few-shot examples asked for, its YAML has {len(examples)}"
        )
    # Few-shot examples are rendered by the prompt builder (formats.render_prompt) as chat turns
    # (user: question, assistant: answer) or, without a chat template, as question + answer +
    # "\n\n" before the prompt; so Task.few_shot holds the formatted pairs and Problem.prompt
    # is the query alone.
    shots: list[tuple[str, str]] = []
    if k:
        q_tpl = str(fs_cfg.get("question", "{question}\n"))
        a_tpl = str(fs_cfg.get("answer", "{answer}"))
        query_tpl = str(fs_cfg.get("query", zero_tpl))
        header = str(fs_cfg.get("header", "") or "")
        for j, (q, a) in enumerate(examples[:k]):
            fq = (header if j == 0 else "") + _fmt(q_tpl, name, question=q, answer=a)
            shots.append((fq, _fmt(a_tpl, name, question=q, answer=a)))
    else:
        query_tpl = zero_tpl

    problems: list[Problem] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        q = row.get(q_field) if q_field else None
        a = row.get(a_field) if a_field else None
        if q is None or a is None:
            raise TaskLoadError(
                f"task {name!r}: row {i} of {where} lacks {q_field!r} or {a_field!r}"
            )
        try:
            ref = normalize(a)
        except Exception as e:  # noqa: BLE001
            raise TaskLoadError(
                f"task {name!r}: row {i} of {where}: answer {str(a)[:60]!r} fails normaliser "
                f"{norm_name!r} ({_short(e)}); check `fields.answer`/`normalize` in the task YAML"
            ) from e
        if ref == "":
            raise TaskLoadError(f"task {name!r}: row {i} of {where} has an empty answer")
        raw_id = row.get(id_field) if id_field else None
        pid = str(raw_id) if raw_id is not None and str(raw_id) != "" else f"{name}-{i}"
        if pid in seen:
            raise TaskLoadError(f"task {name!r}: duplicate problem id {pid!r} in {where}")
        seen.add(pid)
        meta: dict[str, Any] = {"index": i, "question": str(q)}
        if sol_field and row.get(sol_field) is not None:
            meta["solution"] = str(row[sol_field])
        for m in meta_fields:
            if m in row:
                meta[m] = row[m]
        thinking = row.get(think_field) if think_field else None
        problems.append(
            Problem(
                id=pid,
                prompt=_fmt(query_tpl, name, question=q),
                reference=ref,
                answer_type=answer_type,  # type: ignore[arg-type]
                gold_thinking=str(thinking) if thinking is not None else None,
                meta=meta,
            )
        )

    budgets = tuple(int(b) for b in (cfg.get("default_budgets") or (0,)))
    return Task(
        name=name,
        problems=tuple(problems),
        answer_type=answer_type,
        default_budgets=budgets,
        max_answer_tokens=int(cfg.get("max_answer_tokens", 256)),
        max_thinking_tokens=int(cfg.get("max_thinking_tokens", max(budgets))),
        description=str(cfg.get("description", "") or "").strip(),
        few_shot=tuple(shots),
        system_prompt=cfg.get("system_prompt"),
        answer_regex=cfg.get("answer_regex"),
        source=where,
    )


def _is_path(s: str) -> bool:
    return s.endswith((".yaml", ".yml")) or os.sep in s or "/" in s


def load_task(
    name_or_path: str,
    data_file: str | Path | None = None,
    limit: int | None = None,
    few_shot: int | None = None,
) -> Task:
    """Load a built-in task by name (or alias), a task YAML by path, or ``lm_eval:<task>``.

    ``data_file`` overrides where the rows come from (json/jsonl/parquet/csv); ``limit`` keeps
    the first N problems; ``few_shot`` picks how many of the YAML's examples go in each prompt
    (None = the YAML's ``default_few_shot``). Raises :class:`TaskLoadError` with one line.
    """
    if name_or_path.startswith(LMEVAL_PREFIX):
        from evalharness.lmeval_bridge import load_lmeval_task

        return load_lmeval_task(
            name_or_path[len(LMEVAL_PREFIX) :],
            data_files=data_file,
            limit=limit,
            num_fewshot=few_shot,
        )
    if _is_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise TaskLoadError(f"task file {path} does not exist")
    else:
        reg = _registry()
        if name_or_path not in reg:
            avail = ", ".join(list_tasks()) or f"none (no YAMLs in {tasks_dir()})"
            raise TaskLoadError(
                f"unknown task {name_or_path!r}; available: {avail}; "
                "or a task YAML path, or lm_eval:<name> for an lm-eval task"
            )
        path = reg[name_or_path]
    cfg = _read_yaml(path)
    return _build(cfg, path.parent, data_file, limit, few_shot)
