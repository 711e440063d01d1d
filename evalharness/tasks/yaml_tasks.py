"""Task YAMLs: the built-in tasks in ``tasks/`` and any task YAML given by path.

A task YAML holds data and parameters only, never logic: where its rows come from (a Hugging
Face dataset and/or a local file), which row fields hold the question, answer, id, worked
solution and options (a list of candidate names, so the hub's and the local files' spellings
both work), how the answer is normalised (a *named* normaliser from :mod:`.base`), the prompt
templates (zero-shot and few-shot) and the default budgets and token limits. Every value is
type-checked on load: a wrong one is a one-line :class:`TaskLoadError` naming the file and the
field, and a bad data row names the data file and its line.

Data lookup order for a task (first that exists wins):

1. ``data_file`` passed to :func:`load_yaml_task` (the CLI's ``--data-file``);
2. the environment variable ``EVALHARNESS_DATA_<NAME>`` (``NAME`` = the task name upper-cased,
   non-alphanumerics as ``_``, e.g. ``EVALHARNESS_DATA_GSM8K``);
3. ``$EVALHARNESS_DATA_DIR/<source.local>`` where the YAML names a ``source.local`` path;
4. ``source.file`` (relative to the YAML's folder: the shipped synthetic sets);
5. ``source.hf`` through ``datasets.load_dataset(path, name, split=split)``.

Multiple-choice tasks (``answer_type: choice``) name a list column in ``fields.choices``; the
answer field holds the option letter (``"C"``) or a 0-based option index. Problems then carry
``reference`` = the letter, ``choices`` = the option texts and ``meta["choice_continuations"]``
= ``target_delimiter`` + each option (what a log-likelihood scorer appends to the prompt, as
lm-eval does); the prompt templates may show the options as ``{options}`` ("A. ...", one line
each).
"""

from __future__ import annotations

import copy
import csv
import functools
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import evalharness
from evalharness.tasks.base import (
    NORMALIZERS,
    Task,
    TaskLoadError,
    choice_letter,
    data_sha256,
    short_error,
)
from evalharness.types import Problem

__all__ = [
    "DataFileError",
    "data_env_var",
    "is_task_path",
    "list_yaml_tasks",
    "load_yaml_task",
    "read_rows",
    "tasks_dir",
]

# Every key a task YAML may have (a misspelt key is an error, not a silently ignored setting).
TOP_KEYS = {
    "name", "aliases", "description", "source", "fields", "answer_type", "normalize", "prompt",
    "few_shot_examples", "default_few_shot", "system_prompt", "answer_regex", "default_budgets",
    "max_thinking_tokens", "max_answer_tokens", "target_delimiter", "informative",
    "answer_fallback",
}
SOURCE_KEYS = {"file", "local", "hf", "records"}
HF_KEYS = {"path", "name", "split"}
FIELD_ROLES = {"question", "answer", "id", "solution", "thinking", "meta", "choices"}
FEW_SHOT_KEYS = {"header", "question", "answer", "query"}


# ---------------------------------------------------------------------------------------------
# locating and reading


def tasks_dir() -> Path:
    """The folder of task YAMLs: ``$EVALHARNESS_TASKS_DIR`` or ``<repo>/tasks``.

    ``<repo>`` is the folder holding the ``evalharness`` package: the checkout, for a clean
    clone on ``PYTHONPATH`` and for an editable install alike."""
    env = os.environ.get("EVALHARNESS_TASKS_DIR")
    return Path(env) if env else Path(evalharness.__file__).resolve().parents[1] / "tasks"


def data_env_var(task_name: str) -> str:
    return "EVALHARNESS_DATA_" + re.sub(r"[^A-Za-z0-9]", "_", task_name).upper()


def is_task_path(s: str) -> bool:
    """Whether a task name is a YAML path rather than a built-in name."""
    return s.endswith((".yaml", ".yml")) or os.sep in s or "/" in s


def _yaml_files() -> list[Path]:
    d = tasks_dir()
    return sorted([*d.glob("*.yaml"), *d.glob("*.yml")]) if d.is_dir() else []


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        cfg = copy.deepcopy(_parse_yaml(path.read_text(encoding="utf-8-sig")))
    except (OSError, yaml.YAMLError) as e:
        raise TaskLoadError(f"cannot read task file {path}: {e}") from e
    if not isinstance(cfg, dict) or not cfg.get("name"):
        raise TaskLoadError(f"task file {path} is not a mapping with a 'name'")
    return cfg


@functools.lru_cache(maxsize=128)
def _parse_yaml(text: str) -> Any:
    # Every task lookup reads every task file (the name -> file registry); parsing them was
    # most of a dry run's time. Keyed on the text itself, so an edited file is parsed anew.
    return yaml.safe_load(text)


def _registry() -> dict[str, Path]:
    """name or alias -> YAML path (a YAML that cannot be read is left out, not fatal here)."""
    reg: dict[str, Path] = {}
    for p in _yaml_files():
        try:
            cfg = _read_yaml(p)
        except TaskLoadError:
            continue
        reg.setdefault(str(cfg["name"]), p)
        aliases = cfg.get("aliases") or ()
        for alias in aliases if isinstance(aliases, list) else ():
            reg.setdefault(str(alias), p)
    return reg


def list_yaml_tasks() -> list[str]:
    """Names of the built-in tasks (aliases excluded)."""
    names = []
    for p in _yaml_files():
        try:
            names.append(str(_read_yaml(p)["name"]))
        except TaskLoadError:
            continue
    return sorted(set(names))


class DataFileError(ValueError):
    """A data file that cannot be parsed; the message names the file and the 1-based line."""

    def __init__(self, path: Path, line: int | None, message: str):
        self.path, self.line = path, line
        super().__init__(f"{path}" + (f" line {line}" if line else "") + f": {message}")


def _json_lines(p: Path, text: str) -> tuple[list[Any], list[int]]:
    rows, lines = [], []
    for n, line in enumerate(text.splitlines(), start=1):  # n: the line as an editor shows it
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataFileError(p, n, f"invalid JSON ({e.msg} at column {e.colno})") from e
        lines.append(n)
    return rows, lines


def _read_located(
    path: str | Path, records_key: str | None = None
) -> tuple[list[Any], list[int] | None]:
    """Rows of a data file and, for line-based formats, the 1-based line of each row."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in (".gz", ".bz2", ".xz", ".zst") and len(suffixes) > 1:
        suffix = suffixes[-2]  # pandas/pyarrow read compressed inputs below
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist(), None
    if suffix in (".csv", ".tsv"):
        with p.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
            rows, lines = [], []
            for row in reader:
                rows.append(row)
                lines.append(reader.line_num)
            return rows, lines
    if suffix in (".jsonl", ".ndjson"):
        return _json_lines(p, p.read_text(encoding="utf-8-sig"))
    if suffix == ".json":
        text = p.read_text(encoding="utf-8-sig")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            # json-lines with a .json suffix, if its first line is a JSON value on its own;
            # otherwise one broken document, whose error line is the right one to report
            first = next((ln for ln in text.splitlines() if ln.strip()), "")
            try:
                json.loads(first)
            except json.JSONDecodeError:
                msg = f"invalid JSON ({e.msg} at column {e.colno})"
                raise DataFileError(p, e.lineno, msg) from e
            return _json_lines(p, text)
        if isinstance(obj, list):
            return obj, None
        if isinstance(obj, dict):
            keys = [records_key] if records_key else []
            keys += ["examples", "data", "rows", "test", "instances"]
            for k in keys:
                if k and isinstance(obj.get(k), list):
                    return obj[k], None
            raise DataFileError(p, None, f"JSON object has no list of rows under any of {keys}")
        raise DataFileError(p, None, "holds neither a list of rows nor an object with one")
    raise ValueError(f"unsupported file type {p.suffix!r} (use .json, .jsonl, .parquet or .csv)")


def _read_objects(
    path: str | Path, records_key: str | None
) -> tuple[list[dict[str, Any]], list[int] | None]:
    rows, lines = _read_located(path, records_key)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            line = lines[i] if lines else None
            what = "" if line else f"row {i + 1} "
            raise DataFileError(Path(path), line, f"{what}is not an object: {str(row)[:60]!r}")
    return rows, lines


def read_rows(path: str | Path, records_key: str | None = None) -> list[dict[str, Any]]:
    """Rows of a local json / jsonl / parquet / csv file as dicts.

    A ``.json`` file may be a list of rows, one object per line, or a single object holding the
    row list under ``records_key`` (or, failing that, the first of ``examples``/``data``/``rows``
    /``test``/``instances`` present), as in BIG-Bench Hard's ``{"canary":…, "examples": [...]}``.
    A row that cannot be parsed, or is not an object, raises :class:`DataFileError` naming the
    file and its 1-based line (or row number, for formats without lines).
    """
    return _read_objects(path, records_key)[0]


@dataclass(frozen=True)
class _Rows:
    rows: list[dict[str, Any]]
    where: str  # the file path or hub id, for messages and the manifest
    lines: list[int] | None  # 1-based line of each row, for line-based files

    def place(self, i: int) -> str:
        """Where row ``i`` is, as a person finds it: ``file line N`` or ``file row N``."""
        return f"{self.where} line {self.lines[i]}" if self.lines else f"{self.where} row {i + 1}"


def _read_file(name: str, p: Path, records_key: str | None, hint: str) -> _Rows:
    try:
        rows, lines = _read_objects(p, records_key)
    except DataFileError as e:  # already says which file and line
        raise TaskLoadError(f"task {name!r}: cannot read {e}; {hint}") from e
    except Exception as e:  # noqa: BLE001 - any parse failure becomes one clear line
        raise TaskLoadError(f"task {name!r}: cannot read {p} ({short_error(e)}); {hint}") from e
    return _Rows(rows, str(p), lines)


def _load_hf(hf: dict[str, Any]) -> list[dict[str, Any]]:
    import datasets

    ds = datasets.load_dataset(hf["path"], hf.get("name"), split=hf.get("split", "test"))
    return [dict(r) for r in ds]


def _fetch_rows(spec: _Spec, base: Path, data_file: str | Path | None) -> _Rows:
    name = spec.name
    src = spec.mapping("source", SOURCE_KEYS)
    records_key = spec.opt_str("source.records", src.get("records"))
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
        return _read_file(name, p, records_key, hint)

    looked: list[str] = []
    candidates: list[Path] = []
    local = spec.opt_str("source.local", src.get("local"))
    if local:
        data_dir = os.environ.get("EVALHARNESS_DATA_DIR")
        if data_dir:
            candidates.append(Path(data_dir) / local)
        else:
            looked.append(f"$EVALHARNESS_DATA_DIR/{local} (EVALHARNESS_DATA_DIR unset)")
    file = spec.opt_str("source.file", src.get("file"))
    if file:
        candidates.append(base / file)
    for p in candidates:
        if p.is_file():
            return _read_file(name, p, records_key, hint)
        looked.append(f"{p} (missing)")

    hf = src.get("hf")
    if hf is not None:
        hf = spec.mapping("source.hf", HF_KEYS, hf)
        for key in HF_KEYS:
            spec.opt_str(f"source.hf.{key}", hf.get(key))
        if not hf.get("path"):
            raise spec.bad("source.hf.path", "a hub dataset id", hf.get("path"))
        where = f"hf:{hf['path']}" + (f"/{hf['name']}" if hf.get("name") else "")
        where += f"[{hf.get('split', 'test')}]"
        try:
            return _Rows(_load_hf(hf), where, None)
        except Exception as e:  # noqa: BLE001
            looked.append(f"{where} ({short_error(e)})")
    tried = "; ".join(looked) if looked else "no source configured"
    raise TaskLoadError(f"task {name!r}: cannot load data; looked at: {tried}; {hint}")


# ---------------------------------------------------------------------------------------------
# the YAML's values, type-checked


class _Spec:
    """A task YAML's mapping with typed getters: a wrong value fails as one line naming the
    YAML file and the (dotted) field, e.g. ``field 'prompt.zero_shot' must be a string``."""

    def __init__(self, cfg: dict[str, Any], path: Path):
        self.cfg, self.path = cfg, path
        self.name = str(cfg["name"])
        self._known("", cfg, TOP_KEYS)

    def bad(self, field: str, want: str, got: Any) -> TaskLoadError:
        return TaskLoadError(
            f"task file {self.path}: field {field!r} must be {want}, got {got!r:.80}"
        )

    def _known(self, field: str, value: dict[str, Any], keys: set[str]) -> None:
        unknown = sorted(str(k) for k in value if k not in keys)
        if unknown:
            where = f"field {field!r}" if field else "top level"
            raise TaskLoadError(
                f"task file {self.path}: unknown key {unknown[0]!r} at {where}; "
                f"known keys: {', '.join(sorted(keys))}"
            )

    def _get(self, field: str) -> Any:
        return self.cfg.get(field)

    def mapping(self, field: str, keys: set[str], value: Any = None) -> dict[str, Any]:
        value = self._get(field) if value is None else value
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.bad(field, "a mapping", value)
        self._known(field, value, keys)
        return value

    def integer(self, field: str, default: int, value: Any = None, minimum: int = 0) -> int:
        value = self._get(field) if value is None else value
        if value is None:
            return default
        # bool is an int in Python, but `max_answer_tokens: yes` is a mistake, not 1
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.bad(field, f"an integer >= {minimum}", value)
        return value

    def integers(self, field: str, default: tuple[int, ...]) -> tuple[int, ...]:
        value = self._get(field)
        if value is None:
            return default
        if not isinstance(value, list) or not value:
            raise self.bad(field, "a non-empty list of integers >= 0", value)
        return tuple(self.integer(f"{field}[{i}]", 0, v) for i, v in enumerate(value))

    def opt_str(self, field: str, value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            raise self.bad(field, "a string", value)
        return value

    def boolean(self, field: str, default: bool) -> bool:
        value = self.cfg.get(field)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.bad(field, "true or false", value)
        return value

    def opt_regex(self, field: str) -> str | None:
        """An optional top-level regex, compiled once here so a bad one fails at load."""
        value = self.opt_str(field, self.cfg.get(field))
        if value is not None:
            try:
                re.compile(value)
            except re.error as e:
                raise self.bad(field, f"a valid regex ({e})", value) from e
        return value

    def string(self, field: str, default: str, value: Any = None) -> str:
        value = self._get(field) if value is None else value
        return default if value is None else str(self.opt_str(field, value))

    def one_of(self, field: str, options: Sequence[str], default: str) -> str:
        value = self.string(field, default)
        if value not in options:
            raise self.bad(field, f"one of {', '.join(options)}", value)
        return value

    def names(self, field: str, value: Any) -> list[str]:
        """A column-name list (or one name)."""
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.bad(field, "a column name or a list of them", value)
        return list(value)


# ---------------------------------------------------------------------------------------------
# building problems


def _resolve_field(
    data: _Rows, role: str, names: list[str], task: str, required: bool
) -> str | None:
    """The first candidate name present in the first row (every row is checked later)."""
    if not names:
        if required:
            raise TaskLoadError(f"task {task!r}: no field names given for {role!r} in its YAML")
        return None
    first = data.rows[0]
    for n in names:
        if n in first:
            return n
    if required:
        raise TaskLoadError(
            f"task {task!r}: none of the fields {names} for {role!r} is in {data.place(0)}; "
            f"its columns are {sorted(first)}; fix `fields.{role}` in the task YAML"
        )
    return None


def _fmt(template: str, task: str, **values: Any) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as e:
        raise TaskLoadError(
            f"task {task!r}: bad prompt template {template!r} ({short_error(e)}); use "
            "{question} (and {options} in choice tasks) and double literal braces as {{ }}"
        ) from e


def _choice_reference(answer: Any, choices: list[str]) -> str:
    """The option letter from an answer cell: a letter ("C") or a 0-based index (2)."""
    if isinstance(answer, int) and not isinstance(answer, bool):
        return choice_letter(answer, len(choices))
    s = str(answer).strip().upper()
    if len(s) == 1 and s.isalpha():
        return choice_letter(ord(s) - ord("A"), len(choices))
    raise ValueError(f"not an option letter or index: {str(answer)[:40]!r}")


def _options_block(choices: list[str]) -> str:
    return "\n".join(f"{choice_letter(i, len(choices))}. {c}" for i, c in enumerate(choices))


def _build(
    spec: _Spec,
    base: Path,
    data_file: str | Path | None,
    limit: int | None,
    few_shot: int | None,
) -> Task:
    from evalharness.scoring.answer_types import ANSWER_TYPES  # the registry, loaded lazily

    name = spec.name
    if spec.cfg.get("answer_type") is None:
        # no silent "string": the answer type decides how every answer is graded
        raise TaskLoadError(f"task file {spec.path}: field 'answer_type' is missing; set one of "
                            f"{', '.join(ANSWER_TYPES)}")
    answer_type = spec.one_of("answer_type", ANSWER_TYPES, "string")
    norm_name = spec.one_of("normalize", sorted(NORMALIZERS), "strip")
    normalize = NORMALIZERS[norm_name]
    fields_cfg = spec.mapping("fields", FIELD_ROLES)
    names = {role: spec.names(f"fields.{role}", fields_cfg.get(role)) for role in FIELD_ROLES}
    if answer_type == "choice" and not names["choices"]:
        raise spec.bad("fields.choices", "the option-list column(s) of a choice task", None)
    delim = spec.string("target_delimiter", " ")
    prompt_cfg = spec.cfg.get("prompt")
    if isinstance(prompt_cfg, str):
        prompt_cfg = {"zero_shot": prompt_cfg}
    prompt_cfg = spec.mapping("prompt", {"zero_shot", "few_shot"}, prompt_cfg)
    zero_tpl = spec.string("prompt.zero_shot", "{question}", prompt_cfg.get("zero_shot"))
    fs_cfg = spec.mapping("prompt.few_shot", FEW_SHOT_KEYS, prompt_cfg.get("few_shot") or {})
    raw_examples = spec.cfg.get("few_shot_examples") or []
    if not isinstance(raw_examples, list):
        raise spec.bad("few_shot_examples", "a list of {question, answer} mappings", raw_examples)
    examples = []
    for j, e in enumerate(raw_examples):
        if not (isinstance(e, dict) and "question" in e and "answer" in e):
            raise spec.bad(f"few_shot_examples[{j}]", "a mapping with question and answer", e)
        examples.append((str(e["question"]), str(e["answer"])))
    default_k = spec.integer("default_few_shot", 0)
    budgets = spec.integers("default_budgets", (0,))
    max_answer = spec.integer("max_answer_tokens", 256, minimum=1)
    max_think = spec.integer("max_thinking_tokens", max(budgets))
    system_prompt = spec.opt_str("system_prompt", spec.cfg.get("system_prompt"))
    answer_regex = spec.opt_regex("answer_regex")
    answer_fallback = spec.boolean("answer_fallback", False)
    if answer_fallback and answer_regex is None:
        raise spec.bad("answer_fallback", "set only with an answer_regex (it is what the "
                       "regex falls back from)", answer_fallback)
    informative = spec.opt_regex("informative")
    description = spec.string("description", "")

    k = default_k if few_shot is None else int(few_shot)
    if k < 0:
        raise TaskLoadError(f"task {name!r}: few_shot must be >= 0, got {k}")
    if k > len(examples):
        raise TaskLoadError(
            f"task {name!r}: {k} few-shot examples asked for, its YAML has {len(examples)}"
        )
    data = _fetch_rows(spec, base, data_file)
    if not data.rows:
        raise TaskLoadError(f"task {name!r}: {data.where} has no rows")
    data_sha = data_sha256(data.rows)  # the whole data, so --limit extends one run
    if limit is not None:
        if limit < 0:
            raise TaskLoadError(f"task {name!r}: limit must be >= 0, got {limit}")
        data = _Rows(data.rows[:limit], data.where, data.lines)
        if not data.rows:
            raise TaskLoadError(f"task {name!r}: limit={limit} leaves no problems")

    q_field = _resolve_field(data, "question", names["question"], name, True)
    a_field = _resolve_field(data, "answer", names["answer"], name, True)
    id_field = _resolve_field(data, "id", names["id"], name, False)
    sol_field = _resolve_field(data, "solution", names["solution"], name, False)
    think_field = _resolve_field(data, "thinking", names["thinking"], name, False)
    c_field = _resolve_field(data, "choices", names["choices"], name, answer_type == "choice")

    # Few-shot examples are rendered by the prompt builder (formats.render_prompt) as chat turns
    # (user: question, assistant: answer) or, without a chat template, as question + answer +
    # "\n\n" before the prompt; so Task.few_shot holds the formatted pairs and Problem.prompt
    # is the query alone.
    shots: list[tuple[str, str]] = []
    if k:
        q_tpl = spec.string("prompt.few_shot.question", "{question}\n", fs_cfg.get("question"))
        a_tpl = spec.string("prompt.few_shot.answer", "{answer}", fs_cfg.get("answer"))
        query_tpl = spec.string("prompt.few_shot.query", zero_tpl, fs_cfg.get("query"))
        header = spec.string("prompt.few_shot.header", "", fs_cfg.get("header"))
        for j, (q, a) in enumerate(examples[:k]):
            fq = (header if j == 0 else "") + _fmt(q_tpl, name, question=q, answer=a)
            shots.append((fq, _fmt(a_tpl, name, question=q, answer=a)))
    else:
        query_tpl = zero_tpl

    problems: list[Problem] = []
    seen: set[str] = set()
    for i, row in enumerate(data.rows):
        q = row.get(q_field) if q_field else None
        a = row.get(a_field) if a_field else None
        if q is None or a is None:
            raise TaskLoadError(
                f"task {name!r}: {data.place(i)} lacks {q_field!r} or {a_field!r}"
            )
        meta: dict[str, Any] = {"index": i, "question": str(q)}
        values: dict[str, Any] = {"question": q}
        choices: list[str] | None = None
        try:
            if c_field:
                raw = row.get(c_field)
                if not isinstance(raw, list) or len(raw) < 2:
                    raise ValueError(f"{c_field!r} is not a list of >= 2 options: {raw!r:.60}")
                choices = [str(c) for c in raw]
                ref = _choice_reference(a, choices)
                values["options"] = _options_block(choices)
                meta["choice_continuations"] = [delim + c for c in choices]
                meta["target_delimiter"] = delim
            else:
                ref = normalize(a)
        except Exception as e:  # noqa: BLE001
            how = f"as an option of {c_field!r}" if c_field else f"normaliser {norm_name!r}"
            raise TaskLoadError(
                f"task {name!r}: {data.place(i)}: answer {str(a)[:60]!r} fails {how} "
                f"({short_error(e)}); check `fields.answer`/`normalize` in the task YAML"
            ) from e
        if ref == "":
            raise TaskLoadError(f"task {name!r}: {data.place(i)} has an empty answer")
        raw_id = row.get(id_field) if id_field else None
        pid = str(raw_id) if raw_id is not None and str(raw_id) != "" else f"{name}-{i}"
        if pid in seen:
            raise TaskLoadError(f"task {name!r}: duplicate problem id {pid!r} at {data.place(i)}")
        seen.add(pid)
        if sol_field and row.get(sol_field) is not None:
            meta["solution"] = str(row[sol_field])
        for m in names["meta"]:
            if m in row:
                meta[m] = row[m]
        thinking = row.get(think_field) if think_field else None
        problems.append(
            Problem(
                id=pid,
                prompt=_fmt(query_tpl, name, **values),
                reference=ref,
                answer_type=answer_type,  # type: ignore[arg-type]
                choices=tuple(choices) if choices is not None else None,
                gold_thinking=str(thinking) if thinking is not None else None,
                meta=meta,
            )
        )

    return Task(
        name=name,
        problems=tuple(problems),
        answer_type=answer_type,
        default_budgets=budgets,
        max_answer_tokens=max_answer,
        max_thinking_tokens=max_think,
        description=description.strip(),
        few_shot=tuple(shots),
        system_prompt=system_prompt,
        answer_regex=answer_regex,
        answer_fallback=answer_fallback,
        source=data.where,
        data_sha=data_sha,
        informative=informative,
    )


def load_yaml_task(
    name_or_path: str,
    data_file: str | Path | None = None,
    limit: int | None = None,
    few_shot: int | None = None,
) -> Task:
    """A built-in task by name (or alias) or a task YAML by path (see the module docstring)."""
    if is_task_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise TaskLoadError(f"task file {path} does not exist")
    else:
        reg = _registry()
        if name_or_path not in reg:
            avail = ", ".join(list_yaml_tasks()) or f"none (no YAMLs in {tasks_dir()})"
            raise TaskLoadError(
                f"unknown task {name_or_path!r}; available: {avail}; "
                "or a task YAML path, or lm_eval:<name> for an lm-eval task"
            )
        path = reg[name_or_path]
    return _build(_Spec(_read_yaml(path), path), path.parent, data_file, limit, few_shot)
