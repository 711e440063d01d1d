"""Task loading: built-in synthetic sets, the real benchmarks from ../shared/data, bad input."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from evalharness.tasks import (  # noqa: E402
    DataFileError,
    Task,
    TaskLoadError,
    data_env_var,
    last_boxed,
    list_tasks,
    load_task,
    read_rows,
    tasks_dir,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"  # ../shared/data beside the repo
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason=f"real benchmark files not found at {SHARED} (../shared/data beside the repo)",
)

REAL = {
    # task: (local file under ../shared/data, rows)
    "gsm8k": ("gsm8k/test.jsonl", 1319),
    "math500": ("math500/test.jsonl", 500),
    "aime24": ("aime2024/test.jsonl", 30),
    "bbh_multistep_arithmetic": ("bbh_multistep_arithmetic/multistep_arithmetic_two.json", 250),
}


def scoring():
    return pytest.importorskip(
        "evalharness.scoring", reason="evalharness.scoring (grade/extract_answer) not present yet"
    )


@pytest.fixture(scope="module")
def real_tasks() -> dict[str, Task]:
    if not SHARED.is_dir():
        pytest.skip(f"real benchmark files not found at {SHARED}")
    return {name: load_task(name, data_file=SHARED / rel) for name, (rel, _) in REAL.items()}


# ---------------------------------------------------------------------------------- registry


def test_list_tasks_has_builtins():
    names = list_tasks()
    for n in ["add5", "add_sweep", "mul", "gsm8k", "math500", "aime24", "bbh_multistep_arithmetic"]:
        assert n in names
    assert "addition" not in names  # aliases resolve but are not listed
    assert tasks_dir() == REPO / "tasks"


def test_unknown_task_lists_available():
    with pytest.raises(TaskLoadError) as e:
        load_task("no_such_task")
    msg = str(e.value)
    assert "\n" not in msg
    assert "no_such_task" in msg and "gsm8k" in msg and "add5" in msg and "lm_eval:" in msg


def test_tasks_dir_env_override(tmp_path, monkeypatch):
    (tmp_path / "data.jsonl").write_text('{"q": "1+1=", "a": "2"}\n')
    (tmp_path / "toy.yaml").write_text(
        "name: toy\nsource: {file: data.jsonl}\nfields: {question: [q], answer: [a]}\n"
        "answer_type: integer\ndefault_budgets: [0, 4]\n"
    )
    monkeypatch.setenv("EVALHARNESS_TASKS_DIR", str(tmp_path))
    assert list_tasks() == ["toy"]
    t = load_task("toy")
    assert [p.id for p in t.problems] == ["toy-0"]
    assert t.problems[0].prompt == "1+1=" and t.problems[0].reference == "2"
    assert t.default_budgets == (0, 4) and t.max_thinking_tokens == 4
    with pytest.raises(TaskLoadError, match="available: toy"):
        load_task("gsm8k")


# ---------------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("name,count", [("add5", 500), ("add_sweep", 305), ("mul", 320)])
def test_synthetic_tasks(name, count):
    t = load_task(name)
    assert t.name == name and len(t.problems) == count
    ids = [p.id for p in t.problems]
    assert len(set(ids)) == count
    assert t.answer_type == "integer"
    assert t.default_budgets == (0, 8, 16, 32, 64, 128)
    assert t.max_answer_tokens == 12 and t.max_thinking_tokens == 128
    rows = [json.loads(line) for line in (REPO / "tasks" / "data" / f"{name}.jsonl").open()]
    for p, row in zip(t.problems, rows, strict=True):
        assert p.id == row["id"] and p.prompt == row["prompt"] and p.reference == row["answer"]
        assert p.gold_thinking == row["thinking"] and p.answer_type == "integer"
        assert p.meta["op"] == row["op"] and p.meta["digits"] == row["digits"]
    ops = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b}
    for p in t.problems:
        a, b = re.fullmatch(r"(\d+)[+*](\d+)=", p.prompt).groups()
        assert str(ops[p.meta["op"]](int(a), int(b))) == p.reference


def test_addition_alias_and_limit():
    t = load_task("addition", limit=7)
    assert t.name == "add5" and len(t.problems) == 7
    assert t.problems == load_task("add5").problems[:7]


def test_synthetic_references_grade_correct():
    sc = scoring()
    for name in ("add5", "add_sweep", "mul"):
        for p in load_task(name).problems:
            assert sc.grade(p.reference, p.reference, p.answer_type)
            assert sc.grade(
                sc.extract_answer(p.reference, p.answer_type), p.reference, p.answer_type
            )


def test_chat_arith_loads_with_its_generator_and_references():
    from evalharness import synth
    from evalharness.analysis.buy import DIFFICULTY

    t = load_task("chat_arith")
    rows = synth.chat_arith_rows()
    assert [p.id for p in t.problems] == [r["id"] for r in rows]
    assert len({p.id for p in t.problems}) == synth.CHAT_ARITH_SIZE
    assert t.answer_type == "integer" and t.answer_regex and not t.answer_fallback
    assert t.max_answer_tokens >= 32
    for p in t.problems:
        a, sym, b = re.fullmatch(r"What is (\d+) ([+-]) (\d+)\?", p.meta["question"]).groups()
        assert int(p.reference) == (int(a) + int(b) if sym == "+" else int(a) - int(b)) >= 0
        assert len(b) == 1 and len(a) == p.meta["digits"]
        assert p.prompt.startswith(p.meta["question"])
        # the prompt asks for the `cot` format's end marker, so a natural end is detected
        assert "Therefore, the final answer is" in p.prompt
        # the efficiency analysis buckets problems by this difficulty
        assert DIFFICULTY["chat_arith"](p.id) == p.meta["digits"]


def test_chat_arith_file_is_reproducible_from_its_seed(tmp_path):
    from evalharness import synth

    path = synth.write_chat_arith(tmp_path)
    assert path.read_bytes() == (REPO / "tasks" / "data" / "chat_arith.jsonl").read_bytes()


@pytest.mark.parametrize("answer,want", [
    # what follows "Therefore, the final answer is" in a record's answer
    ("42.", "42"), (" 42.\n\n", "42"), ("$42$.", "42"), ("**42**", "42"),
    ("42, because 40 + 2 = 42.", "42"), ("The answer is 42.", "42"), ("40 + 2 = 42.", "42"),
    ("8 - 6 = 2", "2"),
    # no leading number, or one that runs on into an operation: no answer, never the last number
    ("I cannot tell.", None), ("about 4.5", None), ("4.5", None), ("12 x 3 = 36", None),
    ("26 + 5 = 8*5 = 40.", None), ("", None),
])
def test_chat_arith_regex_is_authoritative(answer, want):
    sc = scoring()
    t = load_task("chat_arith", limit=1)
    assert sc.extract_answer(answer, t.answer_type, t.answer_regex, t.answer_fallback) == want


def test_chat_arith_reply_without_an_answer_counts_as_missing_not_wrong_number():
    import pandas as pd

    from evalharness.scoring import score_records

    t = load_task("chat_arith", limit=1)
    base = dict(run_id="r", model="m", task="chat_arith", problem_id="add-4+0", sample=0,
                seed=0, budget=0, extensions=0, thinking_tokens=0,
                natural_thinking_tokens=None, cut=True, thinking="", answer_ids=[1],
                answer_logprobs=[-0.1], reference="4", ref_ids=[1], ref_logprobs=[-0.2],
                ref_hits=[True], prompt_tokens=3, generated_tokens=1, finish_reason="stop",
                time_s=0.0)
    df = pd.DataFrame([{**base, "answer": a} for a in ("4.", "The answer is 4.", "It is 4.")])
    s = score_records(df, t.answer_type, t.answer_regex, fallback=t.answer_fallback)
    assert s["pred"].tolist()[:2] == ["4", "4"] and s["pred"].isna().tolist()[2]
    assert s["no_answer"].tolist() == [False, False, True]
    assert s["exact_match"].tolist() == [True, True, False]


# ---------------------------------------------------------------------------------- real sets


@needs_shared
@pytest.mark.parametrize("name", list(REAL))
def test_real_task_counts_and_ids(real_tasks, name):
    t = real_tasks[name]
    assert len(t.problems) == REAL[name][1]
    assert len({p.id for p in t.problems}) == len(t.problems)
    assert all(p.reference and p.reference == p.reference.strip() for p in t.problems)
    assert t.source.endswith(REAL[name][0])
    assert max(t.default_budgets) <= t.max_thinking_tokens


@needs_shared
def test_real_tasks_via_data_dir_and_task_env(monkeypatch):
    monkeypatch.setenv("EVALHARNESS_DATA_DIR", str(SHARED))
    for name, (rel, n) in REAL.items():
        t = load_task(name)
        assert len(t.problems) == n and t.source == str(SHARED / rel)
    monkeypatch.delenv("EVALHARNESS_DATA_DIR")
    assert data_env_var("bbh_multistep_arithmetic") == "EVALHARNESS_DATA_BBH_MULTISTEP_ARITHMETIC"
    monkeypatch.setenv("EVALHARNESS_DATA_AIME24", str(SHARED / "aime2024" / "test.jsonl"))
    assert len(load_task("aime24").problems) == 30
    assert len(load_task("aime2024").problems) == 30  # alias, same env var as its task


@needs_shared
@pytest.mark.parametrize("name", list(REAL))
def test_real_references_grade_against_themselves(real_tasks, name):
    sc = scoring()
    t = real_tasks[name]
    for p in t.problems:
        assert p.answer_type == t.answer_type
        assert sc.grade(p.reference, p.reference, p.answer_type), (p.id, p.reference)
        boxed = f"So the final answer is $\\boxed{{{p.reference}}}$."
        pred = sc.extract_answer(boxed, p.answer_type)
        assert pred is not None, (p.id, p.reference)
        assert sc.grade(pred, p.reference, p.answer_type), (p.id, p.reference, pred)


@needs_shared
def test_math500_boxed_solution_equals_answer(real_tasks):
    sc = scoring()
    t = real_tasks["math500"]
    assert t.answer_type == "math"
    bad = []
    for p in t.problems:
        sol = p.meta["solution"]
        assert last_boxed(sol) == p.reference  # the dataset's own check, byte-exact
        pred = sc.extract_answer(sol, "math")
        if not sc.grade(pred, p.reference, "math"):
            bad.append((p.id, p.reference, pred))
    assert not bad, f"{len(bad)} of 500 solutions do not grade as their answer: {bad[:5]}"
    assert sum(p.meta["level"] == 5 for p in t.problems) == 134


@needs_shared
def test_gsm8k_solution_last_number_equals_answer(real_tasks):
    sc = scoring()
    t = real_tasks["gsm8k"]
    assert t.answer_type == "integer" and len(t.problems) == 1319
    for p in t.problems:
        sol = p.meta["solution"]
        assert "####" in sol and re.fullmatch(r"-?\d+", p.reference), p.id
        last = re.findall(r"-?\d[\d,]*(?:\.\d+)?", sol)[-1].replace(",", "")
        assert sc.grade(last, p.reference, "integer"), (p.id, last, p.reference)
        worked = re.sub(r"<<[^>]*>>", "", sol.rsplit("####", 1)[0]) + f"The answer is {last}."
        assert sc.grade(sc.extract_answer(worked, "integer"), p.reference, "integer"), p.id
    assert t.problems[0].reference == "18" and t.problems[0].id == "gsm8k-0"
    assert "Please reason step by step" in t.problems[0].prompt
    assert t.problems[0].prompt.startswith(t.problems[0].meta["question"])


@needs_shared
def test_aime24_normalised_and_matches_matharena(real_tasks):
    t = real_tasks["aime24"]
    raw = {str(r["id"]): r["answer"] for r in read_rows(SHARED / "aime2024" / "test.jsonl")}
    assert any(a.startswith("0") for a in raw.values())  # the file is zero-padded ...
    key = {}
    for part in ("I", "II"):
        with (SHARED / "aime2024" / f"matharena_aime_2024_{part}_answers.csv").open() as f:
            key.update({(part, int(r["id"])): r["answer"] for r in csv.DictReader(f)})
    for p in t.problems:
        assert p.reference == str(int(raw[p.id]))  # ... and we are not: "025" -> "25"
        assert 0 <= int(p.reference) <= 999 and not (
            p.reference.startswith("0") and p.reference != "0"
        )
        part, num = re.search(r"2024_AIME_(I+)_Problems/Problem_(\d+)", p.meta["url"]).groups()
        assert int(key[(part, int(num))]) == int(p.reference)
    assert {p.id for p in t.problems} == {str(i) for i in range(60, 90)}


@needs_shared
def test_bbh_references_equal_evaluated_expression(real_tasks):
    t = real_tasks["bbh_multistep_arithmetic"]
    for p in t.problems:
        expr = p.meta["question"].rstrip().rstrip("=")
        assert re.fullmatch(r"[\d\s+\-*()]+", expr)
        assert eval(expr, {"__builtins__": {}}) == int(p.reference)  # noqa: S307 - digits/ops only
    assert t.problems[0].reference == "24"


@needs_shared
def test_few_shot_prompts():
    f = SHARED / "gsm8k" / "test.jsonl"
    zero = load_task("gsm8k", data_file=f, limit=3)
    two = load_task("gsm8k", data_file=f, limit=3, few_shot=2)
    assert zero.few_shot == () and len(two.few_shot) == 2
    q0, a0 = two.few_shot[0]
    assert q0.startswith("Question: Natalia sold clips") and q0.endswith("\nAnswer:")
    assert a0.startswith(" Natalia sold 48/2 = 24 clips") and a0.endswith("\\boxed{72}.")
    assert "<<" not in a0  # calculator annotations stripped
    p = two.problems[0]
    assert p.prompt == f"Question: {p.meta['question']}\nAnswer:"  # the query alone
    assert zero.problems[0].prompt.endswith("within \\boxed{}.")
    assert p.reference == zero.problems[0].reference and p.id == zero.problems[0].id
    # the prompt builder's plain-text rendering (formats.render_prompt) reads naturally
    text = "".join(f"{q}{a}\n\n" for q, a in two.few_shot) + p.prompt
    assert text.count("Question: ") == 3 and "Answer: Weng earns" in text
    bbh = load_task(
        "bbh_multistep_arithmetic",
        data_file=SHARED / "bbh_multistep_arithmetic" / "multistep_arithmetic_two.json",
        few_shot=3,
        limit=1,
    )
    assert bbh.few_shot[0][0].startswith("Solve multi-step arithmetic problems.\n\nQ: ((-5 + 9")
    assert not bbh.few_shot[1][0].startswith("Solve")
    assert all(a.endswith(".") and "So the answer is" in a for _, a in bbh.few_shot)
    assert bbh.problems[0].prompt == (
        "Q: ((-1 + 2 + 9 * 5) - (-2 + -4 + -4 * -7)) =\nA: Let's think step by step.\n"
    )
    with pytest.raises(TaskLoadError, match="9 few-shot examples asked for, its YAML has 8"):
        load_task("gsm8k", data_file=f, few_shot=9)


# ---------------------------------------------------------------------------------- formats


GSM_ROWS = [
    {"question": "What is 2+3?", "answer": "2+3=5\n#### 5"},
    {"question": "What is 1000*2?", "answer": "1000*2=2000\n#### 2,000"},
]


def _write(path: Path, kind: str) -> Path:
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in GSM_ROWS))
    elif kind == "json":
        path.write_text(json.dumps(GSM_ROWS))
    elif kind == "json-object":
        path.write_text(json.dumps({"canary": "x", "examples": GSM_ROWS}))
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(GSM_ROWS), path)
    elif kind == "csv":
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["question", "answer"])
            w.writeheader()
            w.writerows(GSM_ROWS)
    return path


@pytest.mark.parametrize(
    "kind,suffix",
    [
        ("jsonl", ".jsonl"),
        ("json", ".json"),
        ("json-object", ".json"),
        ("parquet", ".parquet"),
        ("csv", ".csv"),
    ],
)
def test_local_file_formats(tmp_path, kind, suffix):
    f = _write(tmp_path / f"rows{suffix}", kind)
    t = load_task("gsm8k", data_file=f)
    assert [p.reference for p in t.problems] == ["5", "2000"]
    assert [p.id for p in t.problems] == ["gsm8k-0", "gsm8k-1"]
    assert t.source == str(f)


def test_task_yaml_by_path_with_relative_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "rows.jsonl").write_text(
        '{"Problem": "x?", "Answer": 7, "ID": "a"}\n{"Problem": "y?", "Answer": "008", "ID": "b"}\n'
    )
    y = tmp_path / "mine.yaml"
    y.write_text(
        "name: mine\nsource: {file: sub/rows.jsonl}\n"
        "fields: {question: [problem, Problem], answer: [answer, Answer], id: [id, ID]}\n"
        "answer_type: integer\nnormalize: int\nprompt: {zero_shot: 'Q: {question} {{ok}}'}\n"
    )
    t = load_task(str(y))
    assert [(p.id, p.prompt, p.reference) for p in t.problems] == [
        ("a", "Q: x? {ok}", "7"),
        ("b", "Q: y? {ok}", "8"),
    ]


# ---------------------------------------------------------------------------------- errors


def test_missing_data_file_is_one_clear_line(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(TaskLoadError) as e:
        load_task("gsm8k", data_file=missing)
    msg = str(e.value)
    assert "\n" not in msg and str(missing) in msg and "--data-file" in msg
    assert "EVALHARNESS_DATA_GSM8K" in msg


def test_env_data_file_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("EVALHARNESS_DATA_MATH500", str(tmp_path / "x.parquet"))
    with pytest.raises(TaskLoadError, match="EVALHARNESS_DATA_MATH500"):
        load_task("math500")


def test_no_local_data_and_no_hub_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EVALHARNESS_DATA_DIR", str(tmp_path))  # exists, but holds nothing
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache", raising=False)
    with pytest.raises(TaskLoadError) as e:
        load_task("aime24")
    msg = str(e.value)
    assert "\n" not in msg
    assert str(tmp_path / "aime2024" / "test.jsonl") in msg  # the local path it tried
    assert "hf:HuggingFaceH4/aime_2024[train]" in msg  # and the hub dataset
    assert "--data-file" in msg and "EVALHARNESS_DATA_AIME24" in msg


def test_bad_field_mapping(tmp_path):
    f = tmp_path / "odd.jsonl"
    f.write_text('{"foo": "What?", "bar": "#### 1"}\n')
    with pytest.raises(TaskLoadError) as e:
        load_task("gsm8k", data_file=f)
    msg = str(e.value)
    assert "'question'" in msg and "['bar', 'foo']" in msg and "fields.question" in msg


def test_answer_failing_normaliser(tmp_path):
    f = tmp_path / "nohash.jsonl"
    f.write_text('{"question": "q", "answer": "just 5"}\n')
    with pytest.raises(TaskLoadError, match="fails normaliser 'gsm8k_hash'"):
        load_task("gsm8k", data_file=f)


def test_unreadable_file(tmp_path):
    f = tmp_path / "broken.jsonl"
    f.write_text('{"question": \n')
    with pytest.raises(TaskLoadError, match="cannot read"):
        load_task("gsm8k", data_file=f)
    g = tmp_path / "rows.xlsx"
    g.write_text("x")
    with pytest.raises(TaskLoadError, match="unsupported file type"):
        load_task("gsm8k", data_file=g)


def test_bad_yaml_values(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"q": "a", "a": "1"}\n{"q": "b", "a": "1"}\n')
    base = ("name: t\nsource: {file: r.jsonl}\nfields: {question: [q], answer: [a]}\n"
            "answer_type: string\n")
    cases = {
        "prompt: {zero_shot: '{problem}'}\n": "bad prompt template",
        "fields: {question: [q], answer: [a], id: [a]}\n": "duplicate problem id '1'",
    }
    for extra, err in cases.items():
        y = tmp_path / "t.yaml"
        y.write_text(base + extra)
        with pytest.raises(TaskLoadError, match=re.escape(err)):
            load_task(str(y))
    with pytest.raises(TaskLoadError, match="does not exist"):
        load_task(str(tmp_path / "absent.yaml"))


BASE_YAML = ("name: t\nsource: {file: r.jsonl}\nfields: {question: [q], answer: [a]}\n"
             "answer_type: string\n")


@pytest.mark.parametrize(
    "extra,field",
    [
        ('max_answer_tokens: "abc"\n', "max_answer_tokens"),
        ("max_answer_tokens: 0\n", "max_answer_tokens"),
        ("max_thinking_tokens: yes\n", "max_thinking_tokens"),  # a YAML bool, not 1
        ("default_budgets: 5\n", "default_budgets"),
        ("default_budgets: [0, 8, x]\n", "default_budgets[2]"),
        ("default_few_shot: -1\n", "default_few_shot"),
        ("answer_type: banana\n", "answer_type"),
        ("normalize: magic\n", "normalize"),
        ("prompt: {zero_shot: 5}\n", "prompt.zero_shot"),
        ("prompt: {zero_shot: '{question}', few_shot: [a]}\n", "prompt.few_shot"),
        ("source: {file: 5}\n", "source.file"),
        ("source: [r.jsonl]\n", "source"),
        ("fields: {question: q, answer: [1]}\n", "fields.answer"),
        ("answer_regex: '(unclosed'\n", "answer_regex"),
        ("system_prompt: [a]\n", "system_prompt"),
        ("few_shot_examples: [{question: q}]\n", "few_shot_examples[0]"),
        ("answer_type: choice\n", "fields.choices"),
    ],
)
def test_wrongly_typed_yaml_value_names_file_and_field(tmp_path, extra, field):
    (tmp_path / "r.jsonl").write_text('{"q": "a", "a": "1"}\n')
    y = tmp_path / "t.yaml"
    y.write_text(BASE_YAML + extra)  # a repeated key: YAML keeps the last one
    with pytest.raises(TaskLoadError) as e:
        load_task(str(y))
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"task file {y}: field {field!r} must be"), msg


def test_misspelt_yaml_key_is_an_error_naming_it(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"q": "a", "a": "1"}\n')
    y = tmp_path / "t.yaml"
    y.write_text(BASE_YAML + "max_answer_token: 5\n")
    with pytest.raises(TaskLoadError, match=rf"task file {re.escape(str(y))}: unknown key "
                       "'max_answer_token' at top level; known keys: .*max_answer_tokens"):
        load_task(str(y))
    y.write_text(BASE_YAML.replace("[a]}", "[a], choice: [c]}"))
    with pytest.raises(TaskLoadError, match="unknown key 'choice' at field 'fields'"):
        load_task(str(y))


def test_shipped_yamls_pass_the_type_checks():
    for name in list_tasks():
        try:
            load_task(name, limit=1)
        except TaskLoadError as e:  # only a missing benchmark file is allowed here
            assert "cannot load data" in str(e), str(e)


BROKEN_JSONL = (
    '{"question": "q1", "answer": "#### 1"}\n'
    "\n"  # a blank line: skipped, but still counted for line numbers
    '{"question": "q2", "answer": "#### 2"}\n'
    '{"question": broken}\n'
)


def test_broken_jsonl_line_is_reported_with_its_file_and_line(tmp_path):
    f = tmp_path / "b.jsonl"
    f.write_text(BROKEN_JSONL)
    with pytest.raises(TaskLoadError) as e:
        load_task("gsm8k", data_file=f)
    msg = str(e.value)
    assert f"{f} line 4: invalid JSON (Expecting value at column 14)" in msg, msg
    assert "line 1" not in msg and "\n" not in msg
    with pytest.raises(DataFileError) as e2:  # read_rows says the same
        read_rows(f)
    assert (e2.value.path, e2.value.line) == (f, 4)


def test_broken_json_document_reports_the_documents_line(tmp_path):
    # a pretty-printed list with a syntax error on line 4 is not read as json-lines (whose
    # first line "[" would be reported as the broken one)
    f = tmp_path / "rows.json"
    f.write_text(
        '[\n  {"question": "a", "answer": "#### 1"},\n  {"question": "b",\n   "answer" 2}\n]\n'
    )
    with pytest.raises(DataFileError, match=rf"{re.escape(str(f))} line 4: invalid JSON"):
        read_rows(f)
    g = tmp_path / "lines.json"  # json-lines under a .json name still works, line-numbered
    g.write_text('{"question": "a", "answer": "#### 1"}\n{"question": "b", "answer": "#### 2"}\n')
    assert [r["question"] for r in read_rows(g)] == ["a", "b"]
    g.write_text('{"question": "a", "answer": "#### 1"}\n{"question": "b", "answer"}\n')
    with pytest.raises(DataFileError, match=rf"{re.escape(str(g))} line 2: invalid JSON"):
        read_rows(g)


def test_bad_row_names_its_line(tmp_path):
    f = tmp_path / "rows.jsonl"
    f.write_text('{"question": "q1", "answer": "#### 1"}\n\n{"question": "q2", "answer": "2"}\n')
    with pytest.raises(TaskLoadError, match=rf"{re.escape(str(f))} line 3: answer '2' fails"):
        load_task("gsm8k", data_file=f)
    f.write_text('{"question": "q1", "answer": "#### 1"}\n[1, 2]\n')
    with pytest.raises(TaskLoadError, match=rf"{re.escape(str(f))} line 2: is not an object"):
        load_task("gsm8k", data_file=f)
    c = tmp_path / "rows.csv"
    c.write_text("question,answer\nq1,#### 1\nq2,\n")
    with pytest.raises(TaskLoadError, match=rf"{re.escape(str(c))} line 3: answer '' fails"):
        load_task("gsm8k", data_file=c)
    p = tmp_path / "rows.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"question": "q", "answer": "#### 1"}] * 2), p)
    where = re.escape(str(p))
    with pytest.raises(TaskLoadError, match=rf"duplicate problem id .* at {where} row 2"):
        load_task(str(_yaml_with_id(tmp_path, p)))


def _yaml_with_id(tmp_path: Path, data: Path) -> Path:
    y = tmp_path / "ids.yaml"
    y.write_text(
        f"name: ids\nsource: {{file: {data.name}}}\n"
        "fields: {question: [question], answer: [answer], id: [answer]}\nanswer_type: string\n"
    )
    return y


# ---------------------------------------------------------------------------------- hub route

HUB_ROWS = {
    # (path, name, split): rows in the hub datasets' own schemas
    ("openai/gsm8k", "main", "test"): [{"question": "q?", "answer": "a\n#### 1,234"}],
    ("HuggingFaceH4/MATH-500", None, "test"): [
        {
            "problem": "p",
            "solution": "s \\boxed{\\frac12}",
            "answer": "\\frac12",
            "subject": "Algebra",
            "level": 1,
            "unique_id": "test/algebra/1.json",
        }
    ],
    ("HuggingFaceH4/aime_2024", None, "train"): [
        {"id": 60, "problem": "p", "solution": "s", "answer": "25", "url": "u", "year": "2024"}
    ],
    ("lukaemon/bbh", "multistep_arithmetic_two", "test"): [{"input": "(1 + 2) =", "target": "3"}],
}


def test_hub_route_uses_load_dataset(monkeypatch, tmp_path):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, **kw):
        calls.append((path, name, split))
        return HUB_ROWS[(path, name, split)]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setenv("EVALHARNESS_DATA_DIR", str(tmp_path))  # nothing local there
    got = {n: load_task(n) for n in ["gsm8k", "math500", "aime24", "bbh_multistep_arithmetic"]}
    assert calls == list(HUB_ROWS)
    assert [got[n].problems[0].reference for n in got] == ["1234", "\\frac12", "25", "3"]
    assert got["math500"].problems[0].id == "test/algebra/1.json"
    assert got["aime24"].source == "hf:HuggingFaceH4/aime_2024[train]"


def test_aime_alternative_schema(tmp_path):
    """Maxwell-Jia/AIME_2024's columns (ID, Problem, Solution, Answer as int) map too."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "aime.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [
                {"ID": "2024-I-1", "Problem": "p", "Solution": "s", "Answer": 204},
                {"ID": "2024-I-2", "Problem": "q", "Solution": "s", "Answer": 25},
            ]
        ),
        f,
    )
    t = load_task("aime24", data_file=f)
    assert [(p.id, p.reference, p.meta["solution"]) for p in t.problems] == [
        ("2024-I-1", "204", "s"),
        ("2024-I-2", "25", "s"),
    ]


# ---------------------------------------------------------------------------------- loaders


def test_importing_tasks_does_not_import_lm_eval():
    """The lm-eval loader is imported only when an lm_eval: task is loaded (lm-eval indexes
    thousands of YAMLs and is an optional extra)."""
    import subprocess
    import sys

    code = (
        "import sys; from evalharness.tasks import load_task, list_tasks; "
        "load_task('add5', limit=1); list_tasks(); "
        "print(sorted(m for m in sys.modules if m.startswith(('lm_eval', 'evalharness.tasks.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True).stdout
    assert out.strip() == "['evalharness.tasks.base', 'evalharness.tasks.yaml_tasks']"


def test_a_loader_is_one_registry_entry(monkeypatch):
    import evalharness.tasks as tasks

    monkeypatch.setitem(tasks.LOADERS, "builtin", "evalharness.tasks.yaml_tasks:load_yaml_task")
    assert load_task("builtin:add5", limit=3) == load_task("add5", limit=3)
    with pytest.raises(TaskLoadError, match="give a task name after the prefix"):
        load_task("builtin:")
    # an unregistered prefix is not a loader: the name goes to the YAML loader as it is
    with pytest.raises(TaskLoadError, match="unknown task 'nosuch:add5'"):
        load_task("nosuch:add5")


def test_tasks_dir_is_the_checkouts_tasks_folder_for_a_copied_tree(tmp_path):
    """A clean clone (package and tasks/ side by side, nothing installed) finds its own YAMLs."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(REPO / "evalharness", tmp_path / "evalharness",
                    ignore=shutil.ignore_patterns("checkpoints", "__pycache__"))
    shutil.copytree(REPO / "tasks", tmp_path / "tasks")
    code = "from evalharness.tasks import tasks_dir, load_task; print(tasks_dir()); " \
           "print(len(load_task('add_mc').problems))"
    env = {k: v for k, v in os.environ.items() if k != "EVALHARNESS_TASKS_DIR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env={**env, "PYTHONPATH": str(tmp_path)}, check=True)
    assert out.stdout.split() == [str(tmp_path / "tasks"), "200"]


def test_a_task_yaml_without_answer_type_is_refused_in_one_line_naming_the_file(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"q": "a", "a": "1"}\n')
    y = tmp_path / "t.yaml"
    y.write_text("name: t\nsource: {file: r.jsonl}\nfields: {question: [q], answer: [a]}\n")
    with pytest.raises(TaskLoadError) as e:
        load_task(str(y))
    msg = str(e.value)
    assert "\n" not in msg and str(y) in msg and "'answer_type' is missing" in msg


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_a_data_file_with_a_utf8_bom_is_read(tmp_path, suffix):
    rows = {".jsonl": '{"q": "1+1=", "a": "2"}\n{"q": "2+2=", "a": "4"}\n',
            ".json": '[{"q": "1+1=", "a": "2"}, {"q": "2+2=", "a": "4"}]',
            ".csv": "q,a\n1+1=,2\n2+2=,4\n"}[suffix]
    (tmp_path / f"r{suffix}").write_bytes(b"\xef\xbb\xbf" + rows.encode())
    y = tmp_path / "t.yaml"
    y.write_bytes(b"\xef\xbb\xbf" + (f"name: t\nsource: {{file: r{suffix}}}\n"
                  "fields: {question: [q], answer: [a]}\nanswer_type: integer\n").encode())
    t = load_task(str(y))
    assert [(p.prompt, p.reference) for p in t.problems] == [("1+1=", "2"), ("2+2=", "4")]
