"""lm-eval bridge: lm-eval tasks become our Problems through lm-eval's own TaskManager.

No hub access: documents come from local files (GSM8K rows from ../shared/data, or rows made
here) and the lm-eval tasks' datasets are redirected to them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

lm_eval = pytest.importorskip(
    "lm_eval", reason="lm-eval not installed (pip install evalharness[lm-eval])"
)

from lm_eval.api.model import LM  # noqa: E402

from evalharness.scoring import extract_answer, grade  # noqa: E402
from evalharness.tasks import TaskLoadError, load_task  # noqa: E402
from evalharness.tasks import lmeval as lb  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# Fixed completions for the first 10 GSM8K test problems (references 18, 3, 70000, 540, 20,
# 64, 260, 160, 45, 460): right, wrong, and malformed ones.
COMPLETIONS = [
    "She sells 16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars.\n#### 18",  # right
    "2 + 1 = 3 bolts.\n#### 4",  # wrong after ####
    "Profit is 70,000.\n#### 70,000",  # right, thousands separator
    "3 * 60 * 3 = 540 meters\n#### 540.",  # right, trailing period
    "I am not sure how many cups.",  # malformed: no number at all
    "#### 64\n\nQuestion: what is 1+1?\nAnswer: #### 2",  # right first, ran on past the stop
    "",  # empty
    "Total: 160\n#### -160",  # wrong sign
    "#### 45 minutes",  # right, with units after the number
    "The answer is 460\n#### 461",  # wrong per ####, right per prose
]


def _rows(path: Path, n: int) -> list[dict]:
    with path.open() as f:
        return [json.loads(next(f)) for _ in range(n)]


@pytest.fixture(scope="module")
def gsm8k_files(tmp_path_factory) -> dict[str, str]:
    if not (SHARED / "gsm8k").is_dir():
        pytest.skip(f"GSM8K files not found at {SHARED / 'gsm8k'} (../shared/data beside the repo)")
    d = tmp_path_factory.mktemp("gsm8k")
    for split, n in (("test", 20), ("train", 40)):
        (d / f"{split}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in _rows(SHARED / "gsm8k" / f"{split}.jsonl", n))
        )
    return {"test": str(d / "test.jsonl"), "train": str(d / "train.jsonl")}


@pytest.fixture(scope="module")
def gsm8k(gsm8k_files):
    spec = f"test={gsm8k_files['test']},train={gsm8k_files['train']}"  # the CLI's --data-file form
    return load_task("lm_eval:gsm8k", data_file=spec, limit=10)


def test_generative_task_problems(gsm8k, gsm8k_files):
    t = gsm8k
    assert t.name == "lm_eval:gsm8k" and len(t.problems) == 10
    assert t.answer_type == "integer"
    assert [p.reference for p in t.problems] == [
        "18",
        "3",
        "70000",
        "540",
        "20",
        "64",
        "260",
        "160",
        "45",
        "460",
    ]
    assert len({p.id for p in t.problems}) == 10 and t.problems[0].id == "gsm8k-0"
    # lm-eval's own objects, built afresh, give the same prompts and targets
    spec = lb.lmeval_task_spec("gsm8k", gsm8k_files)
    task = lb._task_manager().load([spec])["tasks"]["gsm8k"]
    task.set_fewshot_seed(seed=lb.DEFAULT_FEWSHOT_SEED)
    train_q = {r["question"] for r in _rows(Path(gsm8k_files["train"]), 40)}
    for p, doc in zip(t.problems, list(task.eval_docs)[:10], strict=True):
        assert p.meta["doc"] == doc
        assert p.prompt == task.fewshot_context(doc, num_fewshot=5)
        assert p.prompt.endswith(task.doc_to_text(doc))  # "Question: ...\nAnswer:"
        assert p.prompt.count("Question: ") == 6  # 5 shots from train + the question
        shots = [b.split("\nAnswer:")[0] for b in p.prompt.split("Question: ")[1:-1]]
        assert all(s in train_q for s in shots)
        assert p.meta["target"] == task.doc_to_target(doc)
        assert p.meta["until"] == ["Question:", "</s>", "<|im_end|>"]
        assert [f["name"] for f in p.meta["filters"]] == ["strict-match", "flexible-extract"]
    assert t.max_answer_tokens == 256 and 0 in t.default_budgets


class _FakeLM(LM):
    """Answers each context with a fixed completion; a context we don't know is a failure."""

    def __init__(self, by_prompt: dict[str, str]):
        super().__init__()
        self.by_prompt = by_prompt

    def generate_until(self, requests):
        return [self.by_prompt[r.args[0]] for r in requests]

    def loglikelihood(self, requests):  # pragma: no cover - not used by generative tasks
        raise NotImplementedError

    def loglikelihood_rolling(self, requests):  # pragma: no cover
        raise NotImplementedError


def test_exact_match_agrees_with_lm_eval(gsm8k, gsm8k_files):
    t = gsm8k
    # lm-eval's whole evaluator on the same docs: its contexts must be our prompts
    fake = _FakeLM({p.prompt: c for p, c in zip(t.problems, COMPLETIONS, strict=True)})
    res = lm_eval.simple_evaluate(
        model=fake,
        tasks=[lb.lmeval_task_spec("gsm8k", gsm8k_files)],
        task_manager=lb._task_manager(),
        limit=10,
        log_samples=True,
        bootstrap_iters=0,
    )
    per_filter: dict[str, list[float]] = {}
    for s in sorted(res["samples"]["gsm8k"], key=lambda s: (s["filter"], s["doc_id"])):
        per_filter.setdefault(s["filter"], []).append(float(s["exact_match"]))
    strict, flexible = per_filter["strict-match"], per_filter["flexible-extract"]
    assert strict == [1, 0, 1, 1, 0, 1, 0, 0, 1, 0]
    assert flexible == [1, 0, 1, 1, 0, 0, 0, 0, 1, 0]

    # the bridge's lm-eval scorer gives the same numbers
    assert lb.lmeval_exact_match("gsm8k", t.problems, COMPLETIONS, data_files=gsm8k_files) == strict
    assert (
        lb.lmeval_exact_match(
            "gsm8k", t.problems, COMPLETIONS, filter_name="flexible-extract", data_files=gsm8k_files
        )
        == flexible
    )

    # ours: extract with the task's regex (lm-eval's strict-match filter), grade by answer type
    ours = [
        float(
            grade(
                extract_answer(c, p.answer_type, pattern=t.answer_regex), p.reference, p.answer_type
            )
        )
        for p, c in zip(t.problems, COMPLETIONS, strict=True)
    ]
    assert ours == strict


def test_default_extraction_vs_flexible_extract(gsm8k, gsm8k_files):
    """Without the task regex, our default extraction matches lm-eval's flexible-extract filter
    (last number) except where the text says "The answer is X": we read that sentence, while
    flexible-extract takes the last number anywhere (completion 9)."""
    t = gsm8k
    ours = [
        float(grade(extract_answer(c, p.answer_type), p.reference, p.answer_type))
        for p, c in zip(t.problems, COMPLETIONS, strict=True)
    ]
    theirs = lb.lmeval_exact_match(
        "gsm8k", t.problems, COMPLETIONS, filter_name="flexible-extract", data_files=gsm8k_files
    )
    assert [i for i in range(10) if ours[i] != theirs[i]] == [9]
    assert ours[9] == 1.0 and theirs[9] == 0.0


def test_zero_shot_and_single_file(gsm8k_files):
    t = lb.load_lmeval_task("gsm8k", gsm8k_files["test"], limit=3, num_fewshot=0)
    rows = _rows(Path(gsm8k_files["test"]), 3)
    assert [p.prompt for p in t.problems] == [f"Question: {r['question']}\nAnswer:" for r in rows]
    assert "0-shot" in t.description
    with pytest.raises(TaskLoadError, match="train=PATH"):  # 5-shot needs the train split
        lb.load_lmeval_task("gsm8k", gsm8k_files["test"], limit=3)


def test_bridge_errors(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache", raising=False)
    with pytest.raises(TaskLoadError) as e:  # no local files, no hub: one line, with the fix
        load_task("lm_eval:gsm8k", limit=2)
    assert "\n" not in str(e.value)
    assert "hf:openai/gsm8k/main" in str(e.value) and "--data-file test=PATH" in str(e.value)
    with pytest.raises(TaskLoadError, match="unknown lm-eval task 'gsm8kk'.*gsm8k"):
        load_task("lm_eval:gsm8kk")
    with pytest.raises(TaskLoadError, match="is a group"):
        lb.load_lmeval_task("mmlu")
    with pytest.raises(TaskLoadError, match="does not exist"):
        lb.load_lmeval_task("gsm8k", {"test": tmp_path / "missing.jsonl"}, num_fewshot=0)
    f = tmp_path / "t.jsonl"
    f.write_text('{"question": "q", "answer": "#### 1"}\n')
    with pytest.raises(TaskLoadError, match="evaluation split"):
        lb.load_lmeval_task("gsm8k", {"validation": f}, num_fewshot=0)


def test_multiple_choice_builtin_task_on_local_docs(tmp_path):
    """lm-eval's own arc_easy config, its dataset redirected to three local ARC-format rows."""
    rows = [
        {
            "id": "q1",
            "question": "What is 2 + 2?",
            "choices": {"text": ["3", "4", "5", "22"], "label": ["A", "B", "C", "D"]},
            "answerKey": "B",
        },
        {
            "id": "q2",
            "question": "Which is a mammal?",
            "choices": {"text": ["shark", "whale", "trout"], "label": ["A", "B", "C"]},
            "answerKey": "B",
        },
        {
            "id": "q3",
            "question": "Water freezes at?",
            "choices": {"text": ["0 C", "50 C", "100 C", "-40 C"], "label": ["1", "2", "3", "4"]},
            "answerKey": "1",
        },
    ]
    f = tmp_path / "arc.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = lb.load_lmeval_task("arc_easy", {"test": f})
    assert t.answer_type == "choice" and len(t.problems) == 3
    p = t.problems[0]
    assert p.prompt == "Question: What is 2 + 2?\nAnswer:"
    # the reference is the option letter (the scorer grades choices by letter, Brier finds the
    # gold option by it); the options' texts are the choices
    assert p.choices == ("3", "4", "5", "22") and p.reference == "B"
    assert p.meta["gold_index"] == 1 and p.meta["choice_continuations"] == [" 3", " 4", " 5", " 22"]
    assert [q.reference for q in t.problems] == ["B", "B", "A"]
    assert [q.choices[q.meta["gold_index"]] for q in t.problems] == ["4", "whale", "0 C"]
    # lm-eval's own process_results on option log-likelihoods: argmax = gold -> acc 1
    lls = [[-3.0, -1.0, -2.0, -4.0], [-1.0, -2.0, -3.0], [-0.5, -2.0, -2.0, -3.0]]
    m = lb.lmeval_choice_metrics("arc_easy", t.problems, lls, data_files={"test": f})
    assert [x["acc"] for x in m] == [1.0, 0.0, 1.0]
    assert all("acc_norm" in x for x in m)


def test_multiple_choice_custom_yaml_via_include_path(tmp_path):
    docs = [
        {"q": "Capital of France?", "options": ["Paris", "Rome"], "label": 0},
        {"q": "3 * 3 = ?", "options": ["6", "9", "12"], "label": 1},
    ]
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in docs))
    tasks = tmp_path / "yaml"
    tasks.mkdir()
    (tasks / "toy_mc.yaml").write_text(
        "task: evalharness_toy_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "output_type: multiple_choice\n"
        "test_split: test\n"
        'doc_to_text: "Q: {{q}}\\nA:"\n'
        "doc_to_choice: options\n"
        "doc_to_target: label\n"
        "metric_list:\n  - metric: acc\n"
    )
    t = lb.load_lmeval_task("evalharness_toy_mc", include_path=tasks)
    assert [(p.prompt, p.choices, p.reference) for p in t.problems] == [
        ("Q: Capital of France?\nA:", ("Paris", "Rome"), "A"),
        ("Q: 3 * 3 = ?\nA:", ("6", "9", "12"), "B"),
    ]
    assert t.problems[1].meta["choice_continuations"] == [" 6", " 9", " 12"]


def _parity_completions(ref: str) -> list[tuple[str, str]]:
    """(kind, completion) for one GSM8K reference: right, wrong, malformed and pattern-less."""
    wrong = str(int(ref) + 1)
    return [
        ("right", f"Step by step.\n#### {ref}"),
        ("right", f"#### {ref}."),  # lm-eval drops a final period
        ("right", f"#### ${ref}"),
        ("right", f"#### {ref}\n#### {wrong}"),  # the first match counts (strict-match)
        ("wrong", f"#### {wrong}"),
        ("wrong", f"#### -{ref}"),
        ("wrong", f"#### 1\n#### {ref}"),
        ("malformed", f"#### {ref}.0"),  # a string compare: not {ref}
        ("malformed", f"#### 0{ref}"),
        ("malformed", f"#### {ref}.."),
        ("malformed", f"#### {ref[:1]},{ref[1:]}"),  # commas are ignored: "1,8" is 18
        ("malformed", f"####{ref}"),  # no space after ####: no match
        ("malformed", "#### "),
        ("malformed", "#### ."),
        ("malformed", ""),
        ("pattern-less", f"The answer is {ref}."),
        ("pattern-less", f"So the total is \\boxed{{{ref}}}"),
        ("pattern-less", f"{ref}"),
        ("pattern-less", f"Answer: {ref}"),
    ]


def test_exact_match_equals_lm_eval_strict_match_per_problem_on_every_kind_of_completion(
        gsm8k_files):
    """Our scorer on lm_eval:gsm8k, as a run's spec configures it (the task's regex, authoritative,
    and lm-eval's exact_match settings), gives lm-eval's strict-match verdict problem by
    problem: right, wrong, malformed and pattern-less completions ("The answer is 18." without
    "####" has no answer for both)."""
    import pandas as pd

    from evalharness.scoring import score_records

    spec = f"test={gsm8k_files['test']},train={gsm8k_files['train']}"
    t = load_task("lm_eval:gsm8k", data_file=spec, limit=20)
    assert t.exact_match is not None and t.answer_regex is not None
    kinds, docs, texts = [], [], []
    for p in t.problems:
        for kind, text in _parity_completions(p.reference):
            kinds.append(kind)
            docs.append(p)
            texts.append(text)
    theirs = lb.lmeval_exact_match("gsm8k", docs, texts, data_files=gsm8k_files)
    df = pd.DataFrame({"problem_id": [p.id for p in docs], "answer": texts,
                       "reference": [p.reference for p in docs],
                       "finish_reason": ["stop"] * len(texts)})
    scores = score_records(df, t.answer_type, pattern=t.answer_regex, exact_match=t.exact_match)
    ours = scores["exact_match"].astype(float).tolist()
    differ = [(k, d.reference, x, a, b) for k, d, x, a, b
              in zip(kinds, docs, texts, ours, theirs, strict=True) if a != b]
    assert not differ, differ[:5]
    # every kind occurs, with both verdicts where lm-eval gives both
    assert {k for k, v in zip(kinds, theirs, strict=True) if v} == {"right", "malformed"}
    assert all(v == 0 for k, v in zip(kinds, theirs, strict=True) if k in ("wrong", "pattern-less"))
    # a completion without the pattern is no answer (counted), never read by another rule
    patternless = [k == "pattern-less" for k in kinds]
    assert scores.loc[patternless, "no_answer"].all()
    assert scores.loc[patternless, "pred"].isna().all()


def test_the_scorer_reads_lm_evals_grading_from_the_runs_spec(tmp_path, gsm8k_files):
    """score_run takes the regex and the exact_match settings from the manifest's spec, as
    the runner writes them for an lm_eval: task."""
    from evalharness.scoring import score_run
    from evalharness.spec import TaskSpec

    spec = f"test={gsm8k_files['test']},train={gsm8k_files['train']}"
    t = load_task("lm_eval:gsm8k", data_file=spec, limit=3)
    task = TaskSpec(t.name, t.data_sha, t.answer_type, t.answer_regex, None, None, None,
                    t.answer_fallback, t.exact_match)
    from dataclasses import asdict

    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"run_id": "r", "task": t.name, "model": "m",
                                                   "spec": {"task": asdict(task)},
                                                   "status": "complete"}))
    texts = ["The answer is 18.", "#### 3", "#### 70000.0"]
    (run / "samples.jsonl").write_text("".join(json.dumps(
        {"problem_id": p.id, "sample": 0, "budget": 0, "extensions": 0, "finish_reason": "stop",
         "answer": x, "reference": p.reference}) + "\n" for p, x in zip(t.problems, texts,
                                                                       strict=True)))
    import pandas as pd

    scores = pd.read_parquet(score_run(run))
    want = lb.lmeval_exact_match("gsm8k", t.problems, texts, data_files=gsm8k_files)
    assert scores["exact_match"].astype(float).tolist() == want == [0.0, 1.0, 0.0]


def test_the_data_hash_of_an_lm_eval_task_is_its_documents_not_their_paths(gsm8k_files,
                                                                          tmp_path):
    """Two copies of the same GSM8K files at other paths, and another --limit, give the same
    data hash (the run id's data identity); a changed target gives another."""
    import shutil

    spec = f"test={gsm8k_files['test']},train={gsm8k_files['train']}"
    here = load_task("lm_eval:gsm8k", data_file=spec, limit=3)
    copies = tmp_path / "elsewhere"
    copies.mkdir()
    for split in ("test", "train"):
        shutil.copy(gsm8k_files[split], copies / f"{split}.jsonl")
    there = load_task("lm_eval:gsm8k", limit=5,
                      data_file=f"test={copies / 'test.jsonl'},train={copies / 'train.jsonl'}")
    assert here.data_sha == there.data_sha and len(here.data_sha) == 64
    rows = _rows(copies / "test.jsonl", 20)
    rows[7]["answer"] = rows[7]["answer"].replace("####", "#### 1")
    (copies / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    lb._TASK_CACHE.clear()  # the cache is keyed by path: these files changed under it
    changed = load_task("lm_eval:gsm8k", limit=3,
                        data_file=f"test={copies / 'test.jsonl'},train={copies / 'train.jsonl'}")
    assert changed.data_sha != here.data_sha
