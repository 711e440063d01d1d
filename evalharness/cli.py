"""Command line: ``evalharness eval | score | analyze | plots | report | zoo | tasks``."""

from __future__ import annotations

from pathlib import Path

import typer

from evalharness.sweep import SweepConfig

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Test-time compute scaling and metric-induced emergence for LMs.")
zoo_app = typer.Typer(no_args_is_help=True, help="The built-in model zoo.")
tasks_app = typer.Typer(no_args_is_help=True, help="Built-in tasks.")
app.add_typer(zoo_app, name="zoo")
app.add_typer(tasks_app, name="tasks")

RESULTS = typer.Option(Path("results"), "--results", help="Results folder.")


def parse_budgets(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise typer.BadParameter(f"budgets must be comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 0:
        raise typer.BadParameter("budgets must be non-negative integers, e.g. 0,16,64,256")
    return vals


@app.command("eval")
def eval_cmd(
    model: str = typer.Option("zoo", "--model", "-m", help="Model(s), comma-separated: zoo, zoo/arith-h128, a hub id or a local dir."),
    task: str = typer.Option("add_sweep", "--task", "-t", help="Task name/YAML path, or lm_eval:<name>."),
    budgets: str = typer.Option(None, help="Thinking-token budgets T, comma-separated (default: the task's)."),
    n: int = typer.Option(1, "--n", help="Samples per problem (best-of-N); n > 1 needs --temperature > 0."),
    temperature: float = typer.Option(0.0, help="0 = greedy."),
    top_p: float = typer.Option(1.0, "--top-p"),
    seed: int = typer.Option(0, help="Base seed; each problem derives its own."),
    engine: str = typer.Option("auto", help="auto | hf | vllm (auto: vLLM on CUDA, else transformers)."),
    mode: str = typer.Option("truncate", help="truncate (cut at T, force the answer) | extend (s1 'Wait')."),
    max_extensions: int = typer.Option(0, help="extend mode: up to k 'Wait' extensions."),
    sweep: str = typer.Option("one-pass", help="one-pass | independent (one generation per budget)."),
    max_answer_tokens: int = typer.Option(0, help="Tokens for the answer after thinking ends (0: the task's default)."),
    fmt: str = typer.Option("auto", "--format", help="Reasoning format: auto | zoo | think | s1 | cot | cot-raw."),
    think_end: str = typer.Option(None, help="Override the think-end marker."),
    answer_cue: str = typer.Option(None, help="Override the answer cue after a forced end."),
    extension: str = typer.Option(None, help="Override the extension string (default 'Wait')."),
    system_prompt: str = typer.Option(None, help="System prompt for chat models."),
    few_shot: int = typer.Option(None, help="Few-shot examples where the task has them."),
    limit: int = typer.Option(None, help="Only the first N problems."),
    data_file: str = typer.Option(None, help="Local data file for the task (json/jsonl/parquet/csv)."),
    device: str = typer.Option(None, help="transformers engine: cpu | cuda (default: cuda if present)."),
    dtype: str = typer.Option(None, help="auto (default: bfloat16 on CUDA, float32 on CPU) | float32 | bfloat16 | float16."),
    batch_size: int = typer.Option(None, help="transformers engine batch size (default 64)."),
    replicas: int = typer.Option(1, min=1, help="Data-parallel engine copies on Ray (CPU core groups or GPUs)."),
    max_model_len: int = typer.Option(None, help="Context length limit (vLLM max_model_len)."),
    tensor_parallel_size: int = typer.Option(None, help="vLLM: GPUs per model (default 1)."),
    gpu_memory_utilization: float = typer.Option(None, help="vLLM: share of GPU memory to use (default 0.9)."),
    revision: str = typer.Option(None, help="Model revision (branch, tag or commit)."),
    family: str = typer.Option(None, help="Family name grouping model sizes (default: from the name)."),
    results: Path = RESULTS,
    score: bool = typer.Option(True, help="Score the runs when done."),
) -> None:
    """Run models over a task with a thinking-budget sweep and best-of-N sampling."""
    from evalharness.runner import EvalOptions, run_eval

    try:
        cfg = SweepConfig(parse_budgets(budgets) if budgets else (), n, temperature, top_p, seed, mode,
                          max_extensions, max_answer_tokens, sweep)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    engine_options = {k: v for k, v in dict(
        device=device, dtype=dtype, batch_size=batch_size, max_model_len=max_model_len,
        tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
        revision=revision, seed=seed, replicas=replicas).items() if v is not None}
    opts = EvalOptions(
        models=model, task=task, sweep=cfg, engine=engine, results=results, data_file=data_file,
        limit=limit, format=fmt, system_prompt=system_prompt, few_shot=few_shot, family=family,
        format_overrides=dict(think_end=think_end, answer_cue=answer_cue, extension=extension),
        engine_options=engine_options,
    )
    try:
        dirs = run_eval(opts, log=typer.echo)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        raise typer.Exit(2) from None
    for d in dirs:
        typer.echo(f"run: {d}")
    if score:
        _score(results)
        _print_summary(results, [d.name for d in dirs])


def _score(results: Path) -> None:
    from evalharness.scoring import score_run

    for run in sorted((results / "runs").glob("*/samples.jsonl")):
        score_run(run.parent)


def _print_summary(results: Path, run_ids: list[str] | None = None) -> None:
    """Exact match per (model, budget) for the given runs (default: every run)."""
    from rich.console import Console
    from rich.table import Table

    from evalharness.scoring import load_scores

    df = load_scores(results)
    if run_ids is not None:
        df = df[df["run_id"].isin(run_ids)]
    if df.empty:
        return
    # one row per (task, model, n): best-of-N sampling runs get their own rows (mean over samples)
    df = df.assign(n=df.groupby("run_id")["sample"].transform("max") + 1)
    em = (df.groupby(["task", "params", "model", "n", "budget"], dropna=False)["correct"].mean()
          .unstack("budget"))
    table = Table(title="exact match by thinking budget T")
    table.add_column("task")
    table.add_column("model")
    table.add_column("params", justify="right")
    table.add_column("n", justify="right")
    for b in em.columns:
        table.add_column(f"T={b}", justify="right")
    for (task, params, model, n), row in em.iterrows():
        table.add_row(task, model, f"{int(params):,}" if params == params else "?", str(n),
                      *[f"{v:.3f}" if v == v else "" for v in row.values])
    Console().print(table)


@app.command()
def summary(results: Path = RESULTS) -> None:
    """Print exact match by model and budget for every run, and where the report is."""
    _print_summary(results)
    for name in ("report.html", "summary.md", "plots", "analysis"):
        if (results / name).exists():
            typer.echo(f"{name:>12}: {results / name}")


@app.command()
def score(results: Path = RESULTS) -> None:
    """(Re-)score every run under results/ (writes scores.parquet next to samples.jsonl)."""
    _score(results)
    typer.echo(f"scored runs in {results / 'runs'}")


@app.command()
def analyze(results: Path = RESULTS) -> None:
    """Fits, emergence and compute frontier from results/ (tables in results/analysis/)."""
    from evalharness.analysis import analyze as run_analysis
    from evalharness.scoring import load_scores

    result = run_analysis(load_scores(results))
    out = result.write(results / "analysis")
    typer.echo(f"analysis written to {out}")


@app.command()
def plots(results: Path = RESULTS) -> None:
    """Regenerate every figure (PNG + SVG) in results/plots/ from results/ alone."""
    from evalharness.plots import make_plots

    for p in make_plots(results):
        typer.echo(str(p))


@app.command()
def report(results: Path = RESULTS) -> None:
    """Write results/report.html (self-contained) and results/summary.md."""
    from evalharness.report import make_report

    for p in make_report(results):
        typer.echo(str(p))


@zoo_app.command("train")
def zoo_train(
    jobs: int = typer.Option(2, help="Sizes trained side by side (one CPU thread each)."),
    steps: int = typer.Option(None, help="Override the recipe's step count (for quick trials)."),
    out: Path = typer.Option(None, help="Output folder (default: the package's zoo folder)."),
) -> None:
    """Train the zoo from the recipe (about 25 min on 2 cores) and write its manifest."""
    from dataclasses import replace

    from evalharness.zoo import ZOO_DIR
    from evalharness.zoo.train import TASKS_DATA, Recipe, train_zoo

    recipe = Recipe() if steps is None else replace(Recipe(), steps=steps)
    for m in train_zoo(out or ZOO_DIR, TASKS_DATA, recipe, jobs=jobs):
        typer.echo(f"{m['name']:>20} {m['params']:>9,} params  loss {m['final_loss']:.4f}")


@zoo_app.command("list")
def zoo_list() -> None:
    """The zoo's models with parameters and training compute."""
    from evalharness.zoo import zoo_manifest

    for m in zoo_manifest()["models"]:
        typer.echo(f"{m['name']:>20} {m['params']:>9,} params  {m['train_flops']:.2e} train FLOPs")


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
