"""The runs: their list and state, the notes a reader needs before trusting a number, and the
per-problem drill-down (prompts, thinking, answers) shown last on the page."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from evalharness import plots as pl
from evalharness.report.html import Table, _ext_tag, esc, fmt_num, fmt_pct

DRILL_PROBLEMS = 20  # problems per run in the drill-down
DRILL_SAMPLES = 4  # samples per problem shown (n > 1 runs)
MAX_TEXT = 6000  # characters of thinking shown per sample (head and tail kept)

def list_runs(results_dir: Path, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run (the store's walk): identity, plan, state, and the error / no-answer
    counts that belong next to accuracy (`scores`: the loaded scores, where at hand)."""
    from evalharness import store
    from evalharness.scoring import run_table

    cols = ["run_id", "dir", "manifest", "model", "task", "params", "budgets", "n",
            "temperature", "mode", "engine", "status", "records", "errors", "no_answer",
            "grade_timeouts", "exact_match", "present", "expected", "duplicates", "bad_lines", "spec_label",
            "spec_detail"]
    state = run_table(results_dir, scores)
    if state.empty:
        return pd.DataFrame(columns=cols)
    state = state.set_index("run_id")
    rows = []
    for d in store.run_dirs(results_dir):
        man = store.Manifest.from_dict(store.read_manifest(d))
        st = state.loc[d.name]
        rows.append({
            "run_id": d.name, "dir": str(d), "manifest": man.raw,
            "model": str(man.model or "?"), "task": str(man.task or "?"),
            "params": pl.finite_or(man.params, math.nan),
            "budgets": list(man.budgets) or None, "n": man.n,
            "temperature": man.generation.get("temperature"), "mode": man.generation.get("mode"),
            "engine": man.engine,
            **{k: st[k] for k in cols[11:] if k in st.index},
        })
    return pd.DataFrame(rows, columns=cols)


def _run_notes(runs: pd.DataFrame) -> list[str]:
    """Sentences about the runs a reader must know before trusting a number."""
    notes = []
    labelled = runs[runs["spec_label"].astype(bool)] if "spec_label" in runs else runs.iloc[:0]
    for (model, task), g in labelled.groupby(["model", "task"]):
        detail = g["spec_detail"] if "spec_detail" in g else g["spec_label"]
        specs = dict(zip(g["spec_label"], detail.fillna(""), strict=True))
        words = "; ".join(label if not d or d == label else f"{label} = {d}"
                          for label, d in sorted(specs.items()))
        notes.append(f"{model} on {task} has {len(g)} runs with different settings "
                     f"({words}): each is its own curve, never pooled.")
    for _, r in runs.iterrows():
        if r["status"] != "complete":
            notes.append(f"Run {r['run_id']} is {r['status']} ({r['present']} of {r['expected']} "
                         "records): its numbers cover only the records present.")
        if r["errors"]:
            notes.append(f"Run {r['run_id']}: {r['errors']} of {r['records']} records are errors "
                         "(e.g. prompt + budget longer than the context), counted as wrong.")
        if r.get("grade_timeouts"):
            notes.append(f"Run {r['run_id']}: the grader ran out of time on "
                         f"{r['grade_timeouts']} of {r['records']} records (counted as wrong); "
                         "`evalharness score` on a quieter machine may decide them.")
    return notes


def runs_table(runs: pd.DataFrame, scores: pd.DataFrame) -> Table:
    """Every run with its state and, next to its exact match, how many records were engine
    errors (counted as wrong) and how many gave no extractable answer."""
    rows = []
    for _, r in runs.sort_values(["task", "params", "model"]).iterrows():
        b = r["budgets"]
        status = str(r["status"] or "")
        if status == "incomplete":
            status += f" ({r['present']}/{r['expected']} records)"
        if r.get("duplicates") or r.get("bad_lines"):
            status += f"; {r['duplicates']} duplicated, {r['bad_lines']} invalid lines skipped"
        model = r["model"] + (f" [{r['spec_label']}]" if r.get("spec_label") else "")
        rows.append([
            r["run_id"], model, pl.format_params(r["params"]), r["task"],
            ", ".join(str(x) for x in b) if isinstance(b, list) else str(b),
            "" if r["n"] is None else r["n"], "" if r["temperature"] is None else r["temperature"],
            r["mode"] or "", r["engine"] or "", int(r["records"]), fmt_num(r["exact_match"]),
            int(r["errors"]), int(r["no_answer"]), int(r.get("grade_timeouts") or 0), status,
        ])
    return Table(["run", "model", "params", "task", "budgets", "n", "temperature", "mode",
                  "engine", "records", "exact match", "errors", "no answer", "grading timeouts",
                  "status"], rows,
                 numeric={2, 5, 6, 9, 10, 11, 12, 13},
                 caption="Runs (errors, no-answer records and grading timeouts — answers the "
                         "grader could not decide in time — count as wrong in exact match)")


# ----------------------------------------------------------------------------- drill-down


def _load_prompts(results_dir: Path, runs: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(task, problem_id) -> the rendered prompt, from each run's ``problems.jsonl``."""
    from evalharness.store import read_problems

    out: dict[tuple[str, str], str] = {}
    for _, r in runs.iterrows():
        for row in read_problems(Path(r["dir"])):
            out.setdefault((r["task"], row["id"]), str(row.get("prompt", "")))
    return out


def _pick_problems(ids: Iterable[str], k: int, seed: int = 0) -> list[str]:
    """A reproducible sample of `k` problem ids (same ids for every run of a task)."""
    ids = sorted(set(map(str, ids)))
    if len(ids) <= k:
        return ids
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(ids, size=k, replace=False).tolist())


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n\n[… {len(text) - limit} characters not shown …]\n\n{text[-half:]}"


def _drill_run(run: pd.Series, picks: list[str], scores: pd.DataFrame,
               prompts: dict[tuple[str, str], str]) -> str:
    from evalharness.store import read_samples

    samples = read_samples(Path(run["dir"]) / "samples.jsonl")
    if samples.empty:
        return "<p>No samples.</p>"
    samples = samples[samples["problem_id"].astype(str).isin(picks)]
    samples = samples[samples["sample"] < DRILL_SAMPLES]
    keys = ["problem_id", "sample", "budget", "extensions"]
    sc = scores[scores["run_id"] == run["run_id"]][
        keys + ["pred", "exact_match", "ref_token_acc", "ref_logprob_sum"]
    ]
    samples = samples.assign(problem_id=samples["problem_id"].astype(str))
    sc = sc.assign(problem_id=sc["problem_id"].astype(str))
    df = samples.merge(sc, on=keys, how="left")
    parts = []
    for pid in picks:
        g = df[df["problem_id"] == pid].sort_values(["sample", "extensions", "budget"])
        if g.empty:
            continue
        ref = str(g["reference"].iloc[0])
        s0 = g[g["sample"] == g["sample"].min()]
        marks = " ".join(
            f'<span class="{"ok" if c is True or c == 1 else "bad"}" title="T={t:g}">'
            f"{'✓' if c is True or c == 1 else '✗'}</span>"
            for t, c in zip(s0["budget"], s0["exact_match"], strict=True)
        )
        prompt = prompts.get((run["task"], pid))
        body = [
            '<div class="kv"><b>prompt</b>'
            + (f"<pre>{esc(_clip(prompt))}</pre>" if prompt is not None
               else f'<span class="muted">not stored in results ({esc(g["prompt_tokens"].iloc[0])}'
                    " tokens)</span>")
            + "</div>",
            f'<div class="kv"><b>reference</b><code>{esc(ref)}</code></div>',
        ]
        rows = []
        for _, r in g.iterrows():
            ok = r["exact_match"] is True or r["exact_match"] == 1
            rows.append(
                f"<tr><td class=num>{esc(r['sample'])}</td><td class=num>{esc(f'{r.budget:g}')}"
                f"{esc(_ext_tag(r))}</td><td class=num>{esc(r['thinking_tokens'])}</td>"
                f"<td>{'cut' if r['cut'] else 'natural'}</td>"
                f"<td><code>{esc(_clip(str(r['answer']), 500))}</code></td>"
                f"<td><code>{esc(r['pred'])}</code></td>"
                f'<td class="{"ok" if ok else "bad"}">{"✓" if ok else "✗"}</td>'
                f"<td class=num>{esc(fmt_pct(r['ref_token_acc'], 0))}</td>"
                f"<td class=num>{esc(fmt_num(r['ref_logprob_sum']))}</td></tr>"
            )
        body.append(
            '<div class="tablewrap"><table class="drill"><thead><tr><th class=num>sample</th>'
            "<th class=num>T</th><th class=num>thinking tokens</th><th>thinking ended</th>"
            "<th>answer (raw)</th><th>extracted</th><th>exact match</th>"
            "<th class=num>ref token acc</th><th class=num>log p(ref)</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></div>"
        )
        for s, gs in g.groupby("sample", sort=True):
            last = gs.sort_values(["extensions", "budget"]).iloc[-1]
            body.append(
                f"<details class=think><summary>thinking, sample {esc(s)} at "
                f"T={esc(f'{last.budget:g}')}{esc(_ext_tag(last))} "
                f"({esc(last['thinking_tokens'])} tokens; smaller budgets see its first T "
                f"tokens)</summary><pre>{esc(_clip(str(last['thinking'])))}</pre></details>"
            )
        parts.append(
            f"<details class=problem><summary><code>{esc(pid)}</code> · reference "
            f"<code>{esc(_clip(ref, 80))}</code> · sample {esc(s0['sample'].iloc[0])} by "
            f"budget: {marks}</summary>{''.join(body)}</details>"
        )
    return "\n".join(parts)


