"""Bridge to lm-evaluation-harness: ``--task lm_eval:<name>`` becomes our Problems.

Everything task-specific comes from lm-eval itself: the task is built by its ``TaskManager``,
the prompts (few-shot context included) by the task's own ``build_all_requests`` /
``fewshot_context`` with lm-eval's default few-shot seed, the targets by ``doc_to_target`` and
the options by ``doc_to_choice``. So the budget sweep, best-of-N and our metrics run on exactly
the inputs lm-eval would send to a model.

* ``generate_until`` tasks become Problems whose prompt is lm-eval's context and whose reference
  is the target with the exact-match metric's ``regexes_to_ignore`` applied (as lm-eval applies
  them to references); the answer type is ``integer``/``number`` when every reference parses as
  one, else ``string``. The filter pipelines, metric settings and stop strings are kept in
  ``Problem.meta`` and the first regex filter becomes ``Task.answer_regex``. Where the first
  filter pipeline is a ``regex`` (first or last match) and ``take_first``, answers are graded
  as lm-eval grades them (``Task.exact_match`` = its exact_match settings): per problem the
  same verdict as lm-eval's first filter (gsm8k: ``strict-match``), a completion without the
  pattern included (no answer).
* ``multiple_choice`` tasks become Problems with ``answer_type="choice"``, ``choices`` = the
  option texts (``doc_to_choice``), ``reference`` = the correct option's letter ("A" for the
  first option, as the scorer grades choices by letter) and ``meta["choice_continuations"]`` =
  the exact strings lm-eval scores (``target_delimiter`` + choice). ``Problem.prompt`` is
  lm-eval's context unchanged: log p of each continuation right after it is what lm-eval's
  ``acc``/``acc_norm`` are computed from. (Options are *not* appended as "A. ..." lines even
  where the context does not show them: the sweep uses one prompt per problem for generation
  and for those log-likelihoods, so appending would change lm-eval's context and its numbers.
  On such tasks a generated answer is graded by letter, so generative accuracy is only
  meaningful where the task's own prompt shows lettered options, e.g. MMLU.)

:func:`lmeval_exact_match` and :func:`lmeval_choice_metrics` run lm-eval's own filters and
``process_results`` on given completions / option log-likelihoods, for cross-checks.

No hub access is needed when ``data_files`` point at local json/jsonl/parquet/csv files: the
task's dataset is redirected to ``datasets``' file builders with those files as its splits.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from evalharness.tasks.base import Task, TaskLoadError, choice_letter, data_sha256
from evalharness.types import Problem

__all__ = [
    "DEFAULT_FEWSHOT_SEED",
    "load",
    "lmeval_choice_metrics",
    "lmeval_exact_match",
    "lmeval_task_spec",
    "load_lmeval_task",
    "parse_data_files",
]

DEFAULT_FEWSHOT_SEED = 1234  # lm_eval.evaluator.simple_evaluate's fewshot_random_seed default
GEN_BUDGETS = (0, 256, 512, 1024, 2048, 4096)

DataFiles = dict[str, str | Path | list[str | Path]] | str | Path | None

_TM_CACHE: dict[tuple[str, ...], Any] = {}
_TASK_CACHE: dict[tuple, Any] = {}


def _require_lm_eval():
    try:
        import lm_eval  # noqa: F401
    except ImportError as e:  # pragma: no cover - lm-eval is an optional extra
        raise TaskLoadError(
            "lm_eval:<task> needs lm-eval: pip install 'evalharness[lm-eval]'"
        ) from e


def _task_manager(include_path: str | Path | Sequence[str | Path] | None = None):
    """One TaskManager per include path (indexing lm-eval's ~13k YAMLs takes seconds)."""
    _require_lm_eval()
    from lm_eval.tasks import TaskManager

    if include_path is None:
        paths: tuple[str, ...] = ()
    elif isinstance(include_path, (str, Path)):
        paths = (str(Path(include_path).resolve()),)
    else:
        paths = tuple(str(Path(p).resolve()) for p in include_path)
    if paths not in _TM_CACHE:
        _TM_CACHE[paths] = TaskManager(include_path=list(paths) or None)
    return _TM_CACHE[paths]


def parse_data_files(data_files: DataFiles) -> dict[str, list[str]] | str | None:
    """Normalise ``data_files``: a dict {split: path(s)}, ``"test=a.jsonl,train=b.jsonl"`` (the
    CLI form) or a single path (returned as str: it becomes the task's evaluation split)."""
    if data_files is None:
        return None
    if isinstance(data_files, dict):
        out: dict[str, list[str]] = {}
        for split, paths in data_files.items():
            seq = paths if isinstance(paths, (list, tuple)) else [paths]
            out[str(split)] = [str(Path(p).expanduser()) for p in seq]
        return out
    s = str(data_files)
    parts = [p.strip() for p in s.split(",") if p.strip()]
    if parts and all(re.match(r"^[A-Za-z_][\w.-]*=", p) for p in parts):
        out = defaultdict(list)
        for p in parts:
            split, path = p.split("=", 1)
            out[split].append(str(Path(path).expanduser()))
        return dict(out)
    return str(Path(s).expanduser())


def _builder_for(paths: list[str]) -> str:
    kinds = set()
    for p in paths:
        suf = [
            x.lower() for x in Path(p).suffixes if x.lower() not in (".gz", ".bz2", ".xz", ".zst")
        ]
        ext = suf[-1] if suf else ""
        kinds.add(
            {
                ".json": "json",
                ".jsonl": "json",
                ".ndjson": "json",
                ".parquet": "parquet",
                ".csv": "csv",
                ".tsv": "csv",
            }.get(ext, "?")
        )
    if len(kinds) != 1 or "?" in kinds:
        raise TaskLoadError(f"data files {paths} must all be one of json/jsonl, parquet or csv")
    return kinds.pop()


def _unknown(name: str, tm) -> TaskLoadError:
    close = difflib.get_close_matches(name, tm.all_subtasks, n=8, cutoff=0.6)
    more = f"; close matches: {', '.join(close)}" if close else ""
    return TaskLoadError(
        f"unknown lm-eval task {name!r}{more}; `lm-eval ls tasks` lists all "
        f"{len(tm.all_subtasks)}, or add a task YAML folder with include_path"
    )


def lmeval_task_spec(
    name: str,
    data_files: DataFiles = None,
    include_path: str | Path | Sequence[str | Path] | None = None,
    num_fewshot: int | None = None,
) -> str | dict[str, Any]:
    """What we hand to ``TaskManager.load``: the name, or (with ``data_files``) the task's full
    config with its dataset redirected to the local files. ``lm_eval.simple_evaluate`` accepts
    the same spec in ``tasks=[...]``, which the cross-check tests use."""
    tm = _task_manager(include_path)
    from lm_eval.tasks._index import Kind

    entry = tm.task_index.get(name)
    if entry is None:
        raise _unknown(name, tm)
    if entry.kind in (Kind.GROUP, Kind.TAG):
        raise TaskLoadError(
            f"lm-eval name {name!r} is a {entry.kind.name.lower()}, not a single task; "
            "pick one of its tasks (lm-eval ls tasks)"
        )
    files = parse_data_files(data_files)
    if files is None:
        return name
    if entry.yaml_path is None:
        raise TaskLoadError(
            f"lm-eval task {name!r} is defined in Python; its dataset cannot be redirected "
            "to local files"
        )
    from lm_eval.tasks._yaml_loader import load_yaml

    cfg = load_yaml(entry.yaml_path, resolve_func=True)
    for key in ("tag", "group", "task_list"):
        cfg.pop(key, None)
    cfg["task"] = name
    if isinstance(files, str):
        eval_split = cfg.get("test_split") or cfg.get("validation_split") or "test"
        files = {eval_split: [files]}
    for split, paths in files.items():
        for p in paths:
            if not Path(p).is_file():
                raise TaskLoadError(
                    f"lm-eval task {name!r}: data file {p} for split {split!r} does not exist"
                )
    builder = _builder_for([p for ps in files.values() for p in ps])
    for key in ("training_split", "validation_split", "test_split", "fewshot_split"):
        if cfg.get(key) is not None and cfg[key] not in files:
            cfg[key] = None
    if not (cfg.get("test_split") or cfg.get("validation_split")):
        raise TaskLoadError(
            f"lm-eval task {name!r}: data_files {sorted(files)} lack its evaluation split "
            f"(test_split/validation_split of its YAML); name the split, e.g. test=PATH"
        )
    shots = num_fewshot if num_fewshot is not None else cfg.get("num_fewshot") or 0
    fs_cfg = cfg.get("fewshot_config") or {}
    has_samples = isinstance(fs_cfg, dict) and fs_cfg.get("samples") is not None
    if (
        shots > 0
        and not has_samples
        and not (
            cfg.get("fewshot_split") or cfg.get("training_split") or cfg.get("validation_split")
        )
    ):
        raise TaskLoadError(
            f"lm-eval task {name!r} uses {shots}-shot prompts drawn from a split not given in "
            f"data_files {sorted(files)}; add it (e.g. train=PATH) or use few_shot=0"
        )
    cfg["dataset_path"] = builder
    cfg["dataset_name"] = None
    kwargs = dict(cfg.get("dataset_kwargs") or {})
    kwargs.pop("trust_remote_code", None)
    kwargs["data_files"] = files
    cfg["dataset_kwargs"] = kwargs
    return cfg


def _spec_key(name, data_files, include_path) -> tuple:
    files = parse_data_files(data_files)
    if isinstance(files, dict):
        files = tuple(sorted((k, tuple(v)) for k, v in files.items()))
    inc = (
        None
        if include_path is None
        else tuple(
            str(p)
            for p in ([include_path] if isinstance(include_path, (str, Path)) else include_path)
        )
    )
    return (name, files, inc)


def _lm_task(name, data_files=None, include_path=None, num_fewshot=None):
    """The built lm-eval Task object (cached: building it loads its dataset)."""
    key = _spec_key(name, data_files, include_path)
    if key in _TASK_CACHE:
        return _TASK_CACHE[key]
    spec = lmeval_task_spec(name, data_files, include_path, num_fewshot)
    tm = _task_manager(include_path)
    try:
        loaded = tm.load([spec])["tasks"]
    except TaskLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - one clear line instead of a datasets traceback
        first = (str(e).strip().splitlines() or [""])[0][:200]
        if isinstance(spec, str):
            entry_cfg = getattr(tm.task_index.get(name), "cfg", None) or {}
            where = "hf:" + "/".join(
                str(x) for x in (entry_cfg.get("dataset_path"), entry_cfg.get("dataset_name")) if x
            )
        else:
            where = f"{spec['dataset_path']} files {spec['dataset_kwargs']['data_files']}"
        raise TaskLoadError(
            f"lm-eval task {name!r}: cannot load its data ({where}): {type(e).__name__}: {first}; "
            "without hub access pass local files: --data-file test=PATH[,train=PATH] "
            "(json/jsonl/parquet/csv)"
        ) from e
    if name not in loaded:
        raise TaskLoadError(f"lm-eval returned tasks {sorted(loaded)} for {name!r}")
    _TASK_CACHE[key] = loaded[name]
    return loaded[name]


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return repr(x)


def _filter_specs(task) -> list[dict[str, Any]]:
    fl = task.config.filter_list
    if not fl:
        return [{"name": "none", "filter": [{"function": "take_first"}]}]
    return _jsonable(fl)


def _answer_regex(filters: list[dict[str, Any]]) -> str | None:
    """The first filter pipeline's regex, rewritten for ``scoring.extract_answer(pattern=)``,
    which takes the *last* match (its group; the first non-empty of several, as lm-eval).
    lm-eval's ``regex`` filter takes match ``group_select`` (default 0, the first), so a
    first-match pattern is anchored at the start with a lazy prefix: its only match is
    lm-eval's first one. Other ``group_select`` values cannot be expressed (None)."""
    for f in filters[:1]:
        for step in f.get("filter") or []:
            if step.get("function") != "regex":
                continue
            pat = step.get("regex_pattern", r"#### (\-?[0-9\.\,]+)")
            try:
                groups = re.compile(pat).groups
            except re.error:
                return None
            sel = int(step.get("group_select", 0))
            if sel == -1:
                return pat
            if sel != 0:
                return None
            return rf"(?s)\A.*?(?:{pat})" if groups == 1 else rf"(?s)\A.*?({pat})"
    return None


def _lmeval_grading(filters: list[dict[str, Any]], metric_kwargs: dict[str, Any],
                    regex: str | None) -> dict[str, Any] | None:
    """lm-eval's exact_match settings where the bridge reproduces the task's first filter
    pipeline exactly (``regex`` with a first or last match, ``take_first``): its answers are
    then graded as lm-eval grades them. None otherwise (our extraction and grading by type)."""
    if "exact_match" not in metric_kwargs:
        return None
    steps = [s.get("function") for s in ((filters[:1] or [{}])[0].get("filter") or [])]
    if any(s not in ("regex", "take_first") for s in steps) or steps.count("regex") > 1:
        return None
    if "regex" in steps and regex is None:
        return None
    return dict(metric_kwargs.get("exact_match") or {})


def _metric_kwargs(task) -> dict[str, dict[str, Any]]:
    return {m: _jsonable(kw) for m, kw in task._metric_fn_kwargs.items()}


def _normalise_reference(text: str, em_kwargs: dict[str, Any] | None) -> str:
    for pat in (em_kwargs or {}).get("regexes_to_ignore") or []:
        text = re.sub(pat, "", text)
    return text.strip()


def _is_int(ref: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", ref.replace(",", "")) is not None


def _is_num(ref: str) -> bool:
    try:
        float(ref.replace(",", ""))
        return True
    except ValueError:
        return False


# How a bridged task's answers are graded, by the names of registered answer types: a
# generate_until task gets the first type whose test all its references pass, else
# _OTHER_REFERENCES; a multiple_choice task gets _CHOICE_TYPE. Checked against the registry at
# load (`_registered`), so a name that is not registered fails the load, not the scoring.
_REFERENCE_TYPES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("integer", _is_int),
    ("number", _is_num),
)
_OTHER_REFERENCES = "string"
_CHOICE_TYPE = "choice"


def _registered(answer_type: str) -> str:
    """`answer_type` if it is registered; TaskLoadError (one line, listing those that are)."""
    from evalharness.scoring.answer_types import UnknownAnswerType, answer_kind

    try:
        return answer_kind(answer_type).name
    except UnknownAnswerType as e:
        raise TaskLoadError(f"lm-eval bridge: its answer-type mapping names an {e}") from None


def _answer_type(refs: list[str]) -> str:
    for answer_type, fits in _REFERENCE_TYPES:
        if refs and all(fits(r) for r in refs):
            return _registered(answer_type)
    return _registered(_OTHER_REFERENCES)


def load_lmeval_task(
    name: str,
    data_files: DataFiles = None,
    limit: int | None = None,
    num_fewshot: int | None = None,
    *,
    include_path: str | Path | Sequence[str | Path] | None = None,
    fewshot_seed: int | None = DEFAULT_FEWSHOT_SEED,
) -> Task:
    """Build our Task from lm-eval task ``name`` through lm-eval's own TaskManager.

    ``data_files``: {split: path} (or ``"test=a.jsonl,train=b.jsonl"``, or one path for the
    evaluation split) to read documents locally instead of from the hub; ``num_fewshot``:
    None = the task's default (0 if it has none), as ``lm_eval.simple_evaluate`` does;
    ``include_path``: extra folders of lm-eval task YAMLs.
    """
    if data_files is not None:  # validates files/splits for this few-shot setting (cheap)
        lmeval_task_spec(name, data_files, include_path, num_fewshot)
    task = _lm_task(name, data_files, include_path, num_fewshot)
    out_type = task.OUTPUT_TYPE
    if out_type not in ("generate_until", "multiple_choice"):
        raise TaskLoadError(
            f"lm-eval task {name!r} has output_type {out_type!r}; only generate_until and "
            "multiple_choice tasks are supported"
        )
    if num_fewshot is not None:
        task.set_config(key="num_fewshot", value=int(num_fewshot))
    elif task.get_config("num_fewshot") is None:
        task.set_config(key="num_fewshot", value=0)
    task.set_fewshot_seed(seed=fewshot_seed)
    shots = int(task.get_config("num_fewshot") or 0)

    logging.getLogger("lm_eval").setLevel(max(logging.getLogger("lm_eval").level, logging.WARNING))
    try:
        task.build_all_requests(limit=limit)
    except Exception as e:  # noqa: BLE001
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise TaskLoadError(
            f"lm-eval task {name!r}: building prompts failed: {type(e).__name__}: {first}"
        ) from e
    by_doc: dict[int, list] = defaultdict(list)
    for inst in task.instances:
        by_doc[inst.doc_id].append(inst)

    filters = _filter_specs(task)
    metric_kwargs = _metric_kwargs(task)
    em = metric_kwargs.get("exact_match")
    delim = task.config.target_delimiter
    problems: list[Problem] = []
    all_refs: list[str] = []
    gen_kwargs: dict[str, Any] = {}
    for doc_id in sorted(by_doc):
        insts = sorted(by_doc[doc_id], key=lambda i: i.idx)
        doc = insts[0].doc
        ctx = insts[0].args[0]
        if not isinstance(ctx, str) or task.multiple_input:
            raise TaskLoadError(
                f"lm-eval task {name!r} puts the options in the context (multiple inputs); "
                "not supported"
            )
        meta: dict[str, Any] = {
            "lmeval_task": name,
            "doc_id": doc_id,
            "doc": _jsonable(dict(doc)),
            "output_type": out_type,
            "num_fewshot": shots,
        }
        target = task.doc_to_target(doc)
        if out_type == "generate_until":
            gen_kwargs = dict(insts[0].args[1] or {})
            if task.config.doc_to_choice is not None and isinstance(target, int):
                target = task.doc_to_choice(doc)[target]
            targets = [str(t) for t in target] if isinstance(target, list) else [str(target)]
            refs = [_normalise_reference(t, em) for t in targets]
            all_refs.extend(refs)
            meta.update(
                target=targets[0] if len(targets) == 1 else targets,
                references=refs,
                until=list(gen_kwargs.get("until") or []),
                generation_kwargs=_jsonable(gen_kwargs),
                filters=filters,
                metrics=sorted(metric_kwargs),
                metric_kwargs=metric_kwargs,
            )
            problems.append(
                Problem(id=f"{name}-{doc_id}", prompt=ctx, reference=refs[0], meta=meta)
            )
        else:
            choices = [str(c) for c in task.doc_to_choice(doc)]
            golds = target if isinstance(target, list) else [target]
            idx: list[int] = []
            for g in golds:
                if isinstance(g, str):
                    if g not in choices:
                        raise TaskLoadError(
                            f"lm-eval task {name!r} doc {doc_id}: target {g!r} not among choices"
                        )
                    idx.append(choices.index(g))
                else:
                    if not 0 <= int(g) < len(choices):
                        raise TaskLoadError(
                            f"lm-eval task {name!r} doc {doc_id}: target index {g} out of range"
                        )
                    idx.append(int(g))
            meta.update(
                gold_index=idx[0] if len(idx) == 1 else idx,
                target_delimiter=delim,
                choice_continuations=[i.args[1] for i in insts[: len(choices)]],
                metrics=sorted(metric_kwargs),
            )
            try:
                letter = choice_letter(idx[0], len(choices))
            except ValueError as e:
                raise TaskLoadError(f"lm-eval task {name!r} doc {doc_id}: {e}") from e
            problems.append(
                Problem(
                    id=f"{name}-{doc_id}",
                    prompt=ctx,
                    reference=letter,
                    answer_type=_CHOICE_TYPE,
                    choices=tuple(choices),
                    meta=meta,
                )
            )
    if not problems:
        raise TaskLoadError(f"lm-eval task {name!r}: no documents")

    if out_type == "generate_until":
        atype = _answer_type(all_refs)
        problems = [replace(p, answer_type=atype) for p in problems]
        max_answer = int(gen_kwargs.get("max_gen_toks", 256))
        budgets, max_think = GEN_BUDGETS, GEN_BUDGETS[-1]
        regex = _answer_regex(filters)
        exact_match = _lmeval_grading(filters, metric_kwargs, regex)
    else:
        atype, max_answer, budgets, max_think, regex = _registered(_CHOICE_TYPE), 32, (0,), 0, None
        exact_match = None
    ds = f"{task.config.dataset_path}" + (
        f"/{task.config.dataset_name}" if task.config.dataset_name else ""
    )
    return Task(
        name=f"lm_eval:{name}",
        problems=tuple(problems),
        answer_type=atype,
        default_budgets=tuple(budgets),
        max_answer_tokens=max_answer,
        max_thinking_tokens=max_think,
        description=f"lm-eval task {name} ({ds}), {out_type}, {shots}-shot",
        few_shot=(),  # lm-eval's few-shot context is already in each prompt
        system_prompt=None,
        answer_regex=regex,
        exact_match=exact_match,
        data_sha=_docs_sha(task),
        source=f"lm_eval:{name} <- {ds}"
        + (
            f" {task.config.dataset_kwargs.get('data_files')}" if task.config.dataset_kwargs else ""
        ),
    )


def _docs_sha(task) -> str:
    """The content of every document the prompts can draw on (all evaluation docs, not only
    the first --limit, and the few-shot pool), hashed: the run id's identity of the data."""

    def rows():
        for d in task.eval_docs:
            yield ["eval", _jsonable(dict(d))]
        try:
            shots = task.fewshot_docs() or []
        except Exception:  # noqa: BLE001 - a task without a few-shot split has no pool
            shots = []
        for d in shots:
            yield ["fewshot", _jsonable(dict(d))]

    return data_sha256(rows())


def _docs_of(docs: Sequence[Any]) -> list[dict[str, Any]]:
    """Accept lm-eval docs or our Problems (whose meta carries the doc)."""
    return [d.meta["doc"] if isinstance(d, Problem) else d for d in docs]


def lmeval_exact_match(
    task_name: str,
    docs: Sequence[dict[str, Any] | Problem],
    completions: Sequence[str],
    *,
    filter_name: str | None = None,
    data_files: DataFiles = None,
    include_path: str | Path | Sequence[str | Path] | None = None,
) -> list[float]:
    """lm-eval's own filters + ``exact_match`` on ``completions`` (one per doc).

    ``filter_name`` picks the filter pipeline (default: the task's first, e.g. gsm8k's
    ``strict-match``). The task object is the one :func:`load_lmeval_task` built for the same
    ``data_files``/``include_path`` (cached), so no data is reloaded.
    """
    from lm_eval.api.instance import Instance

    task = _lm_task(task_name, data_files, include_path)
    docs_ = _docs_of(docs)
    if len(docs_) != len(completions):
        raise ValueError(f"{len(docs_)} docs but {len(completions)} completions")
    ensembles = {f.name: f for f in task._filters}
    key = filter_name or task._filters[0].name
    if key not in ensembles:
        raise ValueError(f"task {task_name!r} has filters {sorted(ensembles)}, not {key!r}")
    insts = [
        Instance(
            request_type="generate_until",
            doc=doc,
            arguments=("", {}),
            idx=0,
            metadata=(task_name, i, 1),
            resps=[c],
        )
        for i, (doc, c) in enumerate(zip(docs_, completions, strict=True))
    ]
    ensembles[key].apply(insts)
    out = []
    for inst in insts:
        res = task.process_results(inst.doc, [inst.filtered_resps[key]])
        if "exact_match" not in res:
            raise ValueError(f"task {task_name!r} has no exact_match metric (got {sorted(res)})")
        out.append(float(res["exact_match"]))
    return out


def lmeval_choice_metrics(
    task_name: str,
    docs: Sequence[dict[str, Any] | Problem],
    choice_logprobs: Sequence[Sequence[float]],
    *,
    data_files: DataFiles = None,
    include_path: str | Path | Sequence[str | Path] | None = None,
) -> list[dict[str, float]]:
    """lm-eval's ``process_results`` for a multiple-choice task given per-option log p."""
    task = _lm_task(task_name, data_files, include_path)
    out = []
    for doc, lls in zip(_docs_of(docs), choice_logprobs, strict=True):
        res = task.process_results(doc, [(float(x), False) for x in lls])
        out.append({k: float(v) for k, v in res.items() if isinstance(v, (int, float))})
    return out


def load(
    name: str,
    data_file: DataFiles = None,
    limit: int | None = None,
    few_shot: int | None = None,
) -> Task:
    """The ``lm_eval:`` loader of :func:`evalharness.tasks.load_task` (same arguments).

    ``name`` is an lm-eval task name, or the path of an lm-eval task YAML (``lm_eval:my/t.yaml``):
    its folder becomes the include path and its ``task:`` the name, so a task of one's own runs
    from the command line like a registered one."""
    include_path = None
    if name.endswith((".yaml", ".yml")):
        path = Path(name).expanduser()
        if not path.is_file():
            raise TaskLoadError(f"lm-eval task file {path} does not exist")
        _require_lm_eval()
        from lm_eval.tasks._yaml_loader import load_yaml

        try:
            task_name = load_yaml(path, resolve_func=False).get("task")
        except Exception as e:  # noqa: BLE001 - a YAML error becomes one line
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise TaskLoadError(f"cannot read lm-eval task file {path}: {first}") from e
        if not isinstance(task_name, str) or not task_name:
            raise TaskLoadError(f"lm-eval task file {path} has no `task:` name (a group file?)")
        name, include_path = task_name, path.resolve().parent
    return load_lmeval_task(
        name, data_files=data_file, limit=limit, num_fewshot=few_shot, include_path=include_path
    )
