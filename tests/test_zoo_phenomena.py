"""The zoo shows the two phenomena the harness exists to measure, through the real pipeline.

1. Accuracy rises with the thinking budget T (largest model, thinking cut at T, answer forced).
2. "Mirage" emergence: exact match jumps across a narrow size range while teacher-forced
   per-token accuracy of the same target rises smoothly.
"""

import numpy as np
import pytest
from typer.testing import CliRunner

from evalharness.analysis import emergence_span, emergence_table
from evalharness.cli import app
from evalharness.scoring import load_scores

runner = CliRunner()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    for args in (["--model", "zoo", "--task", "add5", "--limit", "300", "--budgets", "128"],
                 ["--model", "zoo/arith-h128-s0", "--task", "add_sweep",
                  "--budgets", "0,8,16,32,64,128"]):
        res = runner.invoke(app, ["eval", *args, "--results", str(out), "--no-score"])
        assert res.exit_code == 0, res.output
    return load_scores(out)


def test_exact_match_rises_with_thinking_budget_over_a_decade(results):
    df = results[results["task"] == "add_sweep"]
    em = df.groupby("budget")["correct"].mean()
    print("EM vs T (largest model, add_sweep):", em.round(3).to_dict())
    assert em[128] - em[8] > 0.5
    steps = np.diff(em.loc[[8, 16, 32, 64, 128]].to_numpy())
    assert (steps > -0.02).all() and (steps > 0.05).sum() >= 3


def test_exact_match_emerges_while_per_token_accuracy_rises_smoothly(results):
    table = emergence_table(results[results["task"] == "add5"])
    cols = ["model", "params", "em", "gold_think_acc", "gold_answer_acc", "gold_token_acc",
            "gold_answer_logprob", "pred_em_gold"]
    print(table[cols].to_string())
    em = table["em"].to_numpy()
    assert em[-1] >= 0.95 and em[0] <= 0.05
    span = emergence_span(table["log2_params"], em, table["gold_token_acc"])
    assert span is not None
    print("span:", span)
    assert 2 ** span.doublings <= 2.5  # < 20% to > 80% within a 2.5x increase in parameters
    assert span.em_share >= 0.70
    assert span.metric_share <= 0.35
