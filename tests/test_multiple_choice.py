"""Multiple choice end to end: the built-in add_mc task, choice YAMLs, and an lm-eval
multiple-choice task run through the real runner giving lm-eval's own acc / acc_norm.

Convention (relied on by the sweep and the scorer): ``answer_type == "choice"``, ``reference``
is the option letter, ``choices`` the option texts and ``meta["choice_continuations"]`` the exact
strings scored after the prompt (target delimiter + option).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from evalharness import synth
from evalharness.scoring import extract_answer, grade
from evalharness.tasks import TaskLoadError, load_task

REPO = Path(__file__).resolve().parents[1]
LMEVAL_MC = REPO / "tests" / "data" / "lmeval_mc"
LMEVAL_MC_YAML = LMEVAL_MC / "evalharness_add_mc_lm.yaml"
LMEVAL_MC_DOCS = LMEVAL_MC / "add_mc_docs.jsonl"
LMEVAL_MC_NAME = "evalharness_add_mc_lm"


# ---------------------------------------------------------------------------------- add_mc


def _dropped_carries(a: int, b: int) -> set[int]:
    """a + b with one of its carries forgotten (10^k less, where column k-1 carries)."""
    out, c = set(), 0
    for k in range(max(len(str(a)), len(str(b)))):
        c = ((a // 10**k) % 10 + (b // 10**k) % 10 + c) // 10
        if c:
            out.add(a + b - 10 ** (k + 1))
    return out


def _one_digit_off(total: int, wrong: int) -> bool:
    s, w = str(total), str(wrong)
    diff = [k for k in range(len(s)) if len(w) == len(s) and s[k] != w[k]]
    return len(diff) == 1 and abs(int(s[diff[0]]) - int(w[diff[0]])) == 1


def test_add_mc_references_are_letters_and_the_right_sum_is_at_that_position():
    t = load_task("add_mc")
    assert t.name == "add_mc" and t.answer_type == "choice" and len(t.problems) == 200
    assert len({p.id for p in t.problems}) == 200
    letters = Counter(p.reference for p in t.problems)
    assert letters == {"A": 50, "B": 50, "C": 50, "D": 50}  # balanced over positions
    assert Counter(p.meta["digits"] for p in t.problems) == {3: 67, 4: 67, 5: 66}
    with_carry_miss = 0
    for p in t.problems:
        assert p.answer_type == "choice" and p.reference in "ABCD"
        a, b = (int(x) for x in p.prompt.rstrip("=").split("+"))
        total = a + b
        assert len(p.choices) == 4 and len(set(p.choices)) == 4
        assert p.choices["ABCD".index(p.reference)] == str(total)
        dropped = _dropped_carries(a, b)
        for c in p.choices:
            assert c == str(total) or int(c) in dropped or _one_digit_off(total, int(c)), (p.id, c)
        with_carry_miss += any(int(c) in dropped for c in p.choices)
        # the zoo's answer layout: the option straight after "a+b=" / "</think>"
        assert p.prompt == f"{a}+{b}=" and p.meta["choice_continuations"] == list(p.choices)
    assert with_carry_miss > 150  # most sums carry, and then one option forgets a carry


def test_add_mc_file_is_reproducible_from_its_seed(tmp_path):
    path = synth.write_add_mc(tmp_path)
    assert path.read_bytes() == (REPO / "tasks" / "data" / "add_mc.jsonl").read_bytes()


def test_generated_letter_is_graded_against_the_letter_reference():
    p = load_task("add_mc", limit=1).problems[0]
    right = p.reference
    wrong = next(x for x in "ABCD" if x != right)
    for text, ok in [(f"The answer is ({right}).", True), (f"{right}", True),
                     (f"The answer is {wrong}.", False)]:
        assert grade(extract_answer(text, "choice"), p.reference, "choice") is ok, text


# ---------------------------------------------------------------------------------- choice YAML


def _choice_yaml(tmp_path: Path, rows: list[dict], extra: str = "") -> Path:
    (tmp_path / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    y = tmp_path / "mc.yaml"
    y.write_text(
        "name: mc\nsource: {file: mc.jsonl}\n"
        "fields: {question: [q], answer: [a], choices: [opts]}\nanswer_type: choice\n"
        "prompt: {zero_shot: \"Q: {question}\\n{options}\\nAnswer:\"}\n" + extra
    )
    return y


def test_choice_yaml_takes_a_letter_or_an_index_and_shows_lettered_options(tmp_path):
    y = _choice_yaml(tmp_path, [{"q": "2+2?", "opts": ["3", "4", "5"], "a": "b"},
                                {"q": "1+1?", "opts": ["2", "11"], "a": 0}])
    t = load_task(str(y))
    assert [p.reference for p in t.problems] == ["B", "A"]
    assert t.problems[0].prompt == "Q: 2+2?\nA. 3\nB. 4\nC. 5\nAnswer:"
    assert t.problems[0].choices == ("3", "4", "5")
    assert t.problems[0].meta["choice_continuations"] == [" 3", " 4", " 5"]  # default " "


@pytest.mark.parametrize(
    "bad_row,err",
    [
        ({"q": "x", "opts": ["3", "4"], "a": "C"}, "out of range for 2 options"),
        ({"q": "x", "opts": ["3", "4"], "a": 5}, "out of range for 2 options"),
        ({"q": "x", "opts": ["3", "4"], "a": "four"}, "not an option letter or index"),
        ({"q": "x", "opts": "3 4", "a": "A"}, "'opts' is not a list of >= 2 options"),
    ],
)
def test_bad_choice_row_names_its_line(tmp_path, bad_row, err):
    good = {"q": "ok", "opts": ["1", "2"], "a": "A"}
    y = _choice_yaml(tmp_path, [good, bad_row])
    with pytest.raises(TaskLoadError) as e:
        load_task(str(y))
    msg = str(e.value)
    assert f"{tmp_path / 'mc.jsonl'} line 2: answer" in msg and err in msg, msg


# ---------------------------------------------------------------------------------- lm-eval


def test_lmeval_task_file_loads_by_path_with_letter_references():
    pytest.importorskip("lm_eval", reason="lm-eval not installed (evalharness[lm-eval])")
    t = load_task(f"lm_eval:{LMEVAL_MC_YAML}", data_file=f"test={LMEVAL_MC_DOCS}", limit=3)
    docs = [json.loads(x) for x in LMEVAL_MC_DOCS.read_text().splitlines()[:3]]
    assert t.name == f"lm_eval:{LMEVAL_MC_NAME}" and t.answer_type == "choice"
    for p, d in zip(t.problems, docs, strict=True):
        assert p.prompt == d["question"]  # lm-eval's context, nothing appended
        assert p.reference == "ABCD"[d["label"]] and p.choices == tuple(d["options"])
        assert p.meta["choice_continuations"] == [" " + o for o in d["options"]]
    with pytest.raises(TaskLoadError, match="does not exist"):
        load_task(f"lm_eval:{LMEVAL_MC / 'absent.yaml'}")


@pytest.fixture(scope="module")
def mc_model():
    """A checkpoint whose option choices are neither all right nor all wrong on these docs
    (3/24 acc, 6/24 acc_norm), so agreement with lm-eval is not agreement on a constant."""
    from evalharness.zoo import resolve_models

    return resolve_models("zoo/arith-h128-s0")[0]


@pytest.fixture(scope="module")
def lmeval_own_results(mc_model):
    """lm-eval's own evaluator (HFLM on the zoo model) on the local multiple-choice task."""
    lm_eval = pytest.importorskip("lm_eval", reason="lm-eval not installed")
    pytest.importorskip("accelerate", reason="lm-eval's HF backend needs accelerate (lm-eval[hf])")
    from lm_eval.models.huggingface import HFLM

    from evalharness.tasks import lmeval as lb

    spec = lb.lmeval_task_spec(LMEVAL_MC_NAME, {"test": str(LMEVAL_MC_DOCS)}, LMEVAL_MC)
    hf = HFLM(pretrained=mc_model.path, backend="causal", device="cpu", dtype="float32",
              batch_size=16)
    res = lm_eval.simple_evaluate(model=hf, tasks=[spec], task_manager=lb._task_manager(LMEVAL_MC),
                                  log_samples=True, bootstrap_iters=0)
    samples = sorted(res["samples"][LMEVAL_MC_NAME], key=lambda s: s["doc_id"])
    return {
        "acc": [float(s["acc"]) for s in samples],
        "acc_norm": [float(s["acc_norm"]) for s in samples],
        "lls": [[float(r[0]) for r in s["filtered_resps"]] for s in samples],
        "summary": res["results"][LMEVAL_MC_NAME],
    }


def _eval_through_runner(model: str, results: Path, fmt: str) -> Path:
    from typer.testing import CliRunner

    from evalharness.cli import app

    args = ["eval", "--model", model, "--task", f"lm_eval:{LMEVAL_MC_YAML}",
            "--data-file", f"test={LMEVAL_MC_DOCS}", "--budgets", "0", "--format", fmt,
            "--engine", "hf", "--max-answer-tokens", "8", "--results", str(results)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    (run,) = (results / "runs").iterdir()
    return run


@pytest.mark.slow
@pytest.mark.parametrize(
    "fmt",
    [
        # a raw prompt with nothing appended: the bare prompt is exactly lm-eval's context
        "cot-raw",
        # the zoo's own format appends "<think>" to the rendered prompt; acc/acc_norm are
        # still scored on lm-eval's context (the problem text alone), so they agree too
        "zoo",
    ],
)
def test_lmeval_multiple_choice_acc_equals_lm_evals_own(mc_model, lmeval_own_results, tmp_path,
                                                         fmt):
    run = _eval_through_runner(mc_model.name, tmp_path, fmt)
    docs = [json.loads(x) for x in LMEVAL_MC_DOCS.read_text().splitlines()]
    rows = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    rows.sort(key=lambda r: int(r["problem_id"].rsplit("-", 1)[1]))
    assert len(rows) == len(docs)
    assert [r["reference"] for r in rows] == ["ABCD"[d["label"]] for d in docs]
    assert [r["choice_chars"] for r in rows] == [[len(o) for o in d["options"]] for d in docs]
    scores = pd.read_parquet(run / "scores.parquet")
    scores = scores.set_index("problem_id").loc[[r["problem_id"] for r in rows]]
    assert scores["brier"].notna().all() and (scores["brier"] <= 2).all()
    # per-option log-likelihoods as lm-eval computes them (float32 forward passes, batched
    # differently: agreement to ~1e-4, far below the gaps that decide argmaxes here)
    ours = [r["prompt_choice_logprobs"] for r in rows]
    for o, t in zip(ours, lmeval_own_results["lls"], strict=True):
        assert o == pytest.approx(t, abs=1e-3)
    theirs = lmeval_own_results
    assert scores["acc"].tolist() == theirs["acc"]
    assert scores["acc_norm"].tolist() == theirs["acc_norm"]
    assert abs(scores["acc"].mean() - theirs["summary"]["acc,none"]) < 1e-6
    assert abs(scores["acc_norm"].mean() - theirs["summary"]["acc_norm,none"]) < 1e-6
    # the numbers are not degenerate: some right, some wrong, and acc_norm differs from acc
    assert 0 < sum(theirs["acc"]) < len(docs) and theirs["acc"] != theirs["acc_norm"]
