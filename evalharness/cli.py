"""Command line: ``evalharness eval | score | analyze | plots | report | export | zoo | tasks``."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import typer

from evalharness.engines import engine_help

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Test-time compute scaling and metric-induced emergence for LMs.")
zoo_app = typer.Typer(no_args_is_help=True, help="The built-in model zoo.")
tasks_app = typer.Typer(no_args_is_help=True, help="Built-in tasks.")
app.add_typer(zoo_app, name="zoo")
app.add_typer(tasks_app, name="tasks")

RESULTS = typer.Option(Path("results"), "--results", help="Results folder.")


@app.callback()
def main(verbose: int = typer.Option(
        0, "--verbose", "-v", count=True,
        help="Engine log lines: -v warnings, -vv info (default: our lines and engine errors).")) -> None:
    """Test-time compute scaling and metric-induced emergence for LMs."""
    from evalharness.console import set_verbosity

    set_verbosity(verbose)  # before any engine is imported: they read it once


def parse_budgets(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise typer.BadParameter(f"budgets must be comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 0:
        raise typer.BadParameter("budgets must be non-negative integers, e.g. 0,16,64,256")
    from evalharness.spec import check_budgets

    try:
        check_budgets(vals)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    return vals


def parse_answer_stop(items: list[str] | None) -> tuple[str, ...] | None:
    """`--answer-stop` values as typed (`\\n` and `\\t` escapes, since a shell argument rarely
    holds a newline) -> the stop strings; `--answer-stop ''` means none. Not given: None (the
    format's own)."""
    if not items:
        return None
    table = {"n": "\n", "t": "\t", "\\": "\\"}
    return tuple(s for s in (re.sub(r"\\([nt\\])", lambda m: table[m.group(1)], x) for x in items) if s)


def parse_engine_args(items: list[str] | None) -> dict | None:
    """`key=value` pairs -> a dict; values read as YAML scalars/maps (`true`, `0.5`, `{a: 1}`)."""
    if not items:
        return None
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--engine-arg takes key=value, got {item!r}")
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise typer.BadParameter(f"--engine-arg {item!r}: value is not valid YAML") from None
    return out


@app.command("eval")
def eval_cmd(
    model: str = typer.Option("zoo", "--model", "-m", help="Model(s), comma-separated: zoo (every size and seed), zoo/seed0, zoo/arith-h128-s0, smollm2, a .gguf file, a hub id or a local dir."),
    task: str = typer.Option("add_sweep", "--task", "-t", help="Task name/YAML path, or lm_eval:<name>."),
    budgets: str = typer.Option(None, help="Thinking-token budgets T, comma-separated (default: the task's)."),
    n: int = typer.Option(1, "--n", min=1, help="Samples per problem (best-of-N); n > 1 needs --temperature > 0."),
    temperature: float = typer.Option(0.0, min=0.0, help="0 = greedy."),
    top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0, help="Nucleus sampling, in (0, 1]."),
    seed: int = typer.Option(0, help="Base seed; each (problem, sample) derives its own."),
    engine: str = typer.Option("auto", help=engine_help()),
    mode: str = typer.Option("truncate", help="truncate (cut at T, force the answer) | extend (s1 'Wait')."),
    max_extensions: int = typer.Option(0, min=0, help="extend mode: up to k 'Wait' extensions."),
    sweep: str = typer.Option("one-pass", help="one-pass | independent (one generation per budget)."),
    max_answer_tokens: int = typer.Option(None, min=1, help="Tokens for the answer after thinking ends (default: the task's)."),
    fmt: str = typer.Option("auto", "--format", help="Reasoning format: auto | zoo | think | s1 | cot | cot-raw."),
    think_end: str = typer.Option(None, help="Override the think-end marker."),
    answer_cue: str = typer.Option(None, help="Override the answer cue after a forced end."),
    extension: str = typer.Option(None, help="Override the extension string (default 'Wait')."),
    answer_stop: list[str] = typer.Option(None, "--answer-stop", help="End answers at this text (repeatable; \\n = newline; '' = none; default: the format's, a blank line for cot)."),
    system_prompt: str = typer.Option(None, help="System prompt for chat models."),
    few_shot: int = typer.Option(None, min=0, help="Few-shot examples where the task has them."),
    limit: int = typer.Option(None, min=1, help="Only the first N problems."),
    data_file: str = typer.Option(None, help="Local data file for the task (json/jsonl/parquet/csv)."),
    device: str = typer.Option(None, help="transformers engine: cpu | cuda (default: cuda if present)."),
    dtype: str = typer.Option(None, help="auto (default: bfloat16 on CUDA, float32 on CPU) | float32 | bfloat16 | float16."),
    batch_size: int = typer.Option(None, min=1, help="transformers engine batch size (default 64)."),
    replicas: int = typer.Option(1, min=1, help="Data-parallel engine copies on Ray (CPU core groups or GPUs)."),
    max_model_len: int = typer.Option(None, min=1, help="Context length limit (both engines)."),
    tensor_parallel_size: int = typer.Option(None, min=1, help="vLLM: GPUs per model."),
    gpu_memory_utilization: float = typer.Option(None, min=0.01, max=1.0, help="vLLM: share of GPU memory to use."),
    revision: str = typer.Option(None, help="Model revision (branch, tag or commit)."),
    engine_arg: list[str] = typer.Option(None, "--engine-arg", help="An engine option without a flag of its own, as key=value (repeatable; values parsed as YAML, checked against the engine's registry entry); for vLLM also any EngineArgs field, checked against the installed vLLM."),
    base_url: str = typer.Option(None, "--base-url", help="openai engine: the server's API root, e.g. http://127.0.0.1:8000/v1; several comma-separated share the requests."),
    served_model_name: str = typer.Option(None, "--served-model-name", help="openai engine: the server's name for the model (default: --model as given)."),
    max_concurrency: int = typer.Option(None, "--max-concurrency", min=1, help="openai engine: requests in flight per server (default 32)."),
    api_key_env: str = typer.Option(None, "--api-key-env", help="openai engine: environment variable holding the API key (default OPENAI_API_KEY; the key is never stored)."),
    request_timeout: float = typer.Option(None, "--request-timeout", min=0.001, help="openai engine: seconds per try of a request (connect, each wait for bytes, the whole reply; default 600); a request fails after its --max-retries (5), so within about timeout x 6 plus backoff. Not part of the run id."),
    max_retries: int = typer.Option(None, "--max-retries", min=0, help="openai engine: retries of a failed request (429, 5xx, transport errors, timeouts, broken or invalid replies), with exponential backoff (default 5). Not part of the run id."),
    max_reply_mb: float = typer.Option(None, "--max-reply-mb", min=0.001, help="openai engine: the largest reply accepted, in MB (default 64); a larger one is refused and retried. Not part of the run id."),
    family: str = typer.Option(None, help="Family name grouping model sizes (default: from the name)."),
    train_tokens: float = typer.Option(None, min=0, help="Training tokens of the model (hub models: from the model card), for the training + inference cost model."),
    tokens_per_step: float = typer.Option(None, "--tokens-per-step", min=0, help="Hub revisions named stepN (--model org/m@step1000,@step2000): training tokens = N x this (Pythia: 2097152)."),
    results: Path = RESULTS,
    score: bool = typer.Option(True, help="Score the runs when done."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    dry_run: bool = typer.Option(False, help="Print the run id(s) this command would write; generate nothing."),
) -> None:
    """Run models over a task with a thinking-budget sweep and best-of-N sampling."""
    from evalharness.runner import EvalOptions, run_eval
    from evalharness.store import ResultsError, RunLockedError

    _log_warnings()
    if budgets is not None and not budgets.strip():
        raise typer.BadParameter("--budgets is empty; give e.g. 0,16,64 or leave it out for the task's")
    # only what the user set reaches the engine: each engine holds its own defaults and
    # rejects options it does not use
    engine_options = {k: v for k, v in dict(
        device=device, dtype=dtype, batch_size=batch_size, max_model_len=max_model_len,
        tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
        revision=revision, engine_args=parse_engine_args(engine_arg), base_url=base_url,
        served_model_name=served_model_name, max_concurrency=max_concurrency,
        api_key_env=api_key_env, timeout=request_timeout, max_reply_mb=max_reply_mb,
        max_retries=max_retries,
        ).items() if v is not None}
    opts = EvalOptions(
        models=model, task=task, budgets=parse_budgets(budgets) if budgets is not None else None,
        n=n, temperature=temperature, top_p=top_p, seed=seed, mode=mode,
        max_extensions=max_extensions, max_answer_tokens=max_answer_tokens, sweep=sweep,
        engine=engine, engine_options=engine_options, replicas=replicas, results=results,
        data_file=data_file, limit=limit, format=fmt, system_prompt=system_prompt,
        few_shot=few_shot, family=family, progress=progress, dry_run=dry_run,
        train_tokens=train_tokens, tokens_per_step=tokens_per_step,
        format_overrides=dict(think_end=think_end, answer_cue=answer_cue, extension=extension,
                              answer_stop=parse_answer_stop(answer_stop)),
    )
    try:
        runs = run_eval(opts, log=typer.echo)
    except (ValueError, FileNotFoundError, RuntimeError, ResultsError, RunLockedError) as e:
        typer.secho(f"error: {_one_line(e)}", fg="red", err=True)
        raise typer.Exit(2) from None
    if dry_run:
        for r in runs:
            typer.echo(f"run id: {r.dir.name}")
        return
    made = sum(r.made for r in runs)
    errors = sum(r.errors for r in runs)
    for r in runs:
        typer.echo(f"run: {r.dir} ({r.status}; {r.made} records made, {r.errors} errors)")
    if score:
        _score(results)
        _print_summary(results, [r.dir.name for r in runs])
    if made and errors == made:
        typer.secho(f"error: every record this command made ({made}) is an error; see "
                    "finish_reason in the records (prompt + budget longer than the context?)",
                    fg="red", err=True)
        raise typer.Exit(2)
    if errors:
        typer.secho(f"warning: {errors} of {made} records are errors (counted as wrong; shown "
                    "as 'errors' in the summary and report)", fg="yellow", err=True)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


class _WarningLine(logging.Handler):
    """Warnings from the results store as one line each, on the current stderr (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(f"warning: {record.getMessage()}", err=True)


def _log_warnings() -> None:
    """Warnings from the results store (skipped lines, damaged manifests) as one line each."""
    logger = logging.getLogger("evalharness")
    if not any(isinstance(h, _WarningLine) for h in logger.handlers):
        logger.addHandler(_WarningLine())
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def _require_runs(results: Path) -> None:
    """A command that reads results/ on a folder with no runs says so in one line, instead of
    writing empty tables into (or a traceback about) a folder that was probably mistyped."""
    from evalharness.store import SAMPLES, runs_root

    # only whether a run folder exists: reading (and warning about) its manifests is left to
    # the command itself, so a damaged manifest is reported once, not twice
    root = runs_root(results)
    if not (root.is_dir() and any((d / SAMPLES).exists() for d in root.iterdir())):
        typer.secho(f"error: no runs in {results / 'runs'}: run `evalharness eval` first, or "
                    "point --results at a results folder", fg="red", err=True)
        raise typer.Exit(2)


def _score(results: Path) -> None:
    from evalharness.scoring import score_run
    from evalharness.store import run_dirs

    for run in run_dirs(results):
        score_run(run)


def _print_summary(results: Path, run_ids: list[str] | None = None) -> None:
    """Exact match per (model, budget), with errors, missing answers and run state beside it."""
    from rich.console import Console
    from rich.table import Table

    from evalharness.scoring import load_scores, run_table

    df = load_scores(results)
    runs = run_table(results, df)
    if run_ids is not None:
        df = df[df["run_id"].isin(run_ids)]
        runs = runs[runs["run_id"].isin(run_ids)] if len(runs) else runs
    if df.empty:
        return
    # one row per run: best-of-N sampling runs and distinct specs get their own rows
    em = (df.groupby(["run_id", "budget"])["exact_match"].mean().unstack("budget"))
    table = Table(title="exact match by thinking budget T (errors and no-answer records count as wrong)")
    for c in ("task", "model", "params", "n"):
        table.add_column(c, justify="right" if c in ("params", "n") else "left")
    for b in em.columns:
        table.add_column(f"T={b}", justify="right")
    timeouts = "grade_timeouts" in runs and bool(runs["grade_timeouts"].any())
    for c in ("errors", "no answer", *(["grading timeouts"] if timeouts else []), "state"):
        table.add_column(c, justify="right")
    info = runs.set_index("run_id")
    params = df.groupby("run_id")["params"].first()
    model = df.groupby("run_id")["model"].first()
    for rid, row in em.iterrows():
        r = info.loc[rid]
        state = r["status"] if r["status"] != "incomplete" else (
            f"incomplete: {r['present']}/{r['expected']} records")
        if r["duplicates"] or r["bad_lines"]:
            state += f", {r['duplicates']} dup, {r['bad_lines']} bad lines"
        p = params.loc[rid]
        table.add_row(str(r["task"]), str(model.loc[rid]), f"{int(p):,}" if p == p else "?",
                      str(r["n"]), *[f"{v:.3f}" if v == v else "" for v in row.values],
                      f"{r['errors']}/{r['records']}", f"{r['no_answer']}/{r['records']}",
                      *([f"{r['grade_timeouts']}/{r['records']}"] if timeouts else []), state)
    # budget forcing fails silently (answers rambling into --max-answer-tokens, thinking
    # re-opened): say where, one line per run x budget; then the table, last, where the eye is
    from evalharness.diagnostics import budget_control, warning_lines

    for line in warning_lines(budget_control(df)):
        typer.secho(f"warning: {line}", fg="yellow", err=True)
    sys.stderr.flush()
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@app.command()
def summary(results: Path = RESULTS) -> None:
    """Print exact match by model and budget for every run, and where the report is."""
    _log_warnings()
    if not (results / "analysis").is_dir():  # a folder of analysis tables alone still speaks
        _require_runs(results)
    from evalharness.report import verdict_lines

    for name in ("report.html", "summary.md", "plots", "analysis"):
        if (results / name).exists():
            typer.echo(f"{name:>12}: {results / name}")
    for line in verdict_lines(results):  # what the data show, per task
        typer.echo(f"verdict: {line}")
    _print_summary(results)  # last: the table is what the user ran the command for


@app.command()
def score(results: Path = RESULTS) -> None:
    """(Re-)score every run under results/ (writes scores.parquet next to samples.jsonl)."""
    _log_warnings()
    _require_runs(results)
    _score(results)
    typer.echo(f"scored runs in {results / 'runs'}")


@app.command()
def analyze(results: Path = RESULTS) -> None:
    """Fits, emergence and compute frontier from results/ (tables in results/analysis/)."""
    _log_warnings()
    _require_runs(results)
    from evalharness.analysis import analyze as run_analysis
    from evalharness.scoring import load_scores

    result = run_analysis(load_scores(results))
    out = result.write(results / "analysis")
    typer.echo(f"analysis: {len(out)} tables written to {results / 'analysis'}")


X_HELP = ("Emergence over training: the x-axes side by side, comma-separated, of params | "
          "train_flops | tokens.")


def parse_x_axes(x: str) -> tuple[str, ...]:
    """``--x params,train_flops`` -> ("params", "train_flops"); unknown axes refused."""
    from evalharness.analysis.training import X_AXES

    axes = tuple(a.strip() for a in x.split(",") if a.strip())
    bad = [a for a in axes if a not in X_AXES]
    if bad or not axes:
        raise typer.BadParameter(f"{', '.join(bad) or x!r}: use {' | '.join(X_AXES)}",
                                 param_hint="--x")
    return axes


@app.command()
def plots(
    results: Path = RESULTS,
    x: str = typer.Option("params,train_flops", "--x", help=X_HELP),
) -> None:
    """Regenerate every figure (PNG + SVG) in results/plots/ from results/ alone."""
    axes = parse_x_axes(x)
    _log_warnings()
    _require_runs(results)
    from evalharness.plots import make_plots

    for p in make_plots(results, x_axes=axes):
        typer.echo(str(p))


@app.command()
def report(
    results: Path = RESULTS,
    x: str = typer.Option("params,train_flops", "--x", help=X_HELP),
) -> None:
    """Write results/report.html (self-contained) and results/summary.md."""
    axes = parse_x_axes(x)
    _log_warnings()
    _require_runs(results)
    from evalharness.report import make_report

    for p in make_report(results, x_axes=axes):
        typer.echo(str(p))


@app.command()
def export(
    results: Path = RESULTS,
    fmt: str = typer.Option("lm-eval", "--format", help="lm-eval (results JSON per model x task x budget) | tidy (long CSV + Parquet) | all."),
    out: Path = typer.Option(None, "--out", help="Output folder (default: <results>/export)."),
    track: str = typer.Option(None, "--track", help="Also log the tidy rows to an experiment tracker: mlflow (off by default)."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default: a local file store in <out>/mlruns)."),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete", help="lm-eval: also write runs missing records, marked with the fraction present (refused by default)."),
) -> None:
    """Write results/ in other tools' formats (lm-eval 0.4 results JSON, a tidy table)."""
    from evalharness.export import TRACKERS, write_lm_eval, write_tidy
    from evalharness.export import track as track_runs

    _log_warnings()
    if fmt not in ("lm-eval", "tidy", "all"):
        raise typer.BadParameter(f"--format must be lm-eval, tidy or all, got {fmt!r}")
    if track is not None and track not in TRACKERS:  # before anything is written
        typer.secho(f"error: unknown tracker {track!r}; choose {', '.join(TRACKERS)}",
                    fg="red", err=True)
        raise typer.Exit(2)
    out = out or results / "export"
    try:
        paths = []
        if fmt in ("lm-eval", "all"):
            paths += write_lm_eval(results, out / "lm-eval", allow_incomplete=allow_incomplete)
        if fmt in ("tidy", "all"):
            paths += write_tidy(results, out)
        if track:
            uri = tracking_uri or str(out / "mlruns")
            typer.echo(f"logged {track_runs(results, track, uri)} runs to {track} at {uri}")
    except ValueError as e:
        typer.secho(f"error: {_one_line(e)}", fg="red", err=True)
        raise typer.Exit(2) from None
    if not paths:
        typer.secho(f"warning: no scored runs under {results}", fg="yellow", err=True)
    for p in paths:
        typer.echo(str(p))


@zoo_app.command("train")
def zoo_train(
    jobs: int = typer.Option(2, help="Sizes trained side by side (one CPU thread each)."),
    steps: int = typer.Option(None, help="Override the recipe's step count (for quick trials)."),
    out: Path = typer.Option(None, help="Output folder (default: the package's zoo folder)."),
    recipe_name: str = typer.Option("v2", "--recipe", help="Training recipe: v2 (the shipped zoo) or v3 (width-scaled LR, held LR, length-grouped batches, 8 heads, 5 checkpoints)."),
    sizes: str = typer.Option("", help="Widths to train, comma-separated (e.g. 96,128); default every width that is a multiple of the heads."),
    seeds: str = typer.Option("", help="Seeds to train, comma-separated; default 0,1,2."),
    state_dir: Path = typer.Option(None, "--state-dir", help="Keep optimiser state here at every checkpoint, so an interrupted training resumes."),
    heads: int = typer.Option(None, min=1, max=64, help="Attention heads (of size 32) at every width: one attention shape for the whole family (default: the recipe's, 4 for v2, 8 for v3)."),
) -> None:
    """Train the zoo from a recipe (every width the head count divides: 11 for v2's 4 heads,
    9 for v3's 8; x 3 seeds; see docs/zoo.md for the wall time on 2 cores) and write its
    manifest. Checkpoints already trained with the recipe are kept."""
    from dataclasses import replace

    from evalharness.zoo import ZOO_DIR
    from evalharness.zoo.train import (
        DEFAULT_HEADS,
        SEEDS,
        TASKS_DATA,
        V2,
        V3,
        WIDTHS,
        Size,
        train_zoo,
    )

    recipes = {"v2": V2, "v3": V3}
    if recipe_name not in recipes:
        raise typer.BadParameter(f"unknown recipe {recipe_name!r}; choose from {', '.join(recipes)}")
    recipe = recipes[recipe_name]
    recipe = recipe if steps is None else replace(recipe, steps=steps)
    n_heads = heads or DEFAULT_HEADS[recipe_name]
    widths = [int(w) for w in sizes.split(",") if w.strip()]
    # transformers' Llama refuses a width that is not a multiple of the head count (even with
    # head_dim set): refuse it here, before hours of training, not in a worker at its turn
    if bad := [w for w in widths if w % n_heads]:
        what = (f"widths {', '.join(map(str, bad))} are not multiples" if len(bad) > 1
                else f"width {bad[0]} is not a multiple")
        raise typer.BadParameter(f"{what} of {n_heads} heads (transformers' Llama needs "
                                 "that); choose other --sizes or --heads", param_hint="--sizes")
    widths = widths or [w for w in WIDTHS if w % n_heads == 0]
    seed_list = [int(x) for x in seeds.split(",") if x.strip()] or list(SEEDS)
    chosen = [Size(w, s, heads=n_heads) for s in seed_list for w in widths]
    for m in train_zoo(out or ZOO_DIR, TASKS_DATA, recipe, chosen, jobs=jobs, state_dir=state_dir):
        typer.echo(f"{m['name']:>22} {m['params']:>9,} params  loss {m['final_loss']:.4f}")


@zoo_app.command("list")
def zoo_list(
    all_checkpoints: bool = typer.Option(False, "--all", help="Also list each model's kept intermediate checkpoints (zoo@all)."),
) -> None:
    """The zoo's models with parameters, training compute and their health check."""
    from evalharness.zoo import zoo_manifest

    for m in zoo_manifest()["models"]:
        health = m.get("health")
        if health is None:
            state = "health: not checked"
        else:
            worst = max(((d, w["field"], w["error"]) for d, w in health["worst"].items()),
                        key=lambda t: t[2])
            state = (f"health: {'FLAGGED' if health['flagged'] else 'ok'}, worst step "
                     f"{worst[1]} {100 * worst[2]:.0f}% at {worst[0]} digits")
        typer.echo(f"{m['name']:>22} {m['params']:>9,} params  width {m['hidden']:>3}  "
                   f"{m['heads']} heads x {m['head_dim']}  seed {m['seed']}  "
                   f"{m['train_flops']:.2e} train FLOPs  {state}")
        for c in m.get("checkpoints", []) if all_checkpoints else []:
            typer.echo(f"{c['name']:>30} step {c['step']:>5}  {c['tokens']:.3g} tokens  "
                       f"{c['train_flops']:.2e} train FLOPs  held-out loss "
                       f"{c.get('heldout_loss', float('nan')):.3f}")


@tasks_app.command("list")
def tasks_list() -> None:
    """Built-in tasks (any lm-eval task is also reachable as lm_eval:<name>)."""
    from evalharness.tasks import list_tasks

    for t in list_tasks():
        typer.echo(t)


@tasks_app.command("synth")
def tasks_synth() -> None:
    """Regenerate the held-out synthetic sets in tasks/data/ (fixed seeds: identical files)."""
    from evalharness.synth import write_heldout_sets
    from evalharness.zoo.train import TASKS_DATA

    for p in write_heldout_sets(TASKS_DATA):
        typer.echo(str(p))


if __name__ == "__main__":
    app()
