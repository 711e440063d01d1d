"""An analysis table is one registration: declared once, it is computed, given provenance
columns, written as CSV and (if asked) into fits.json, with no other file touched."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_analysis import synthetic_scores

from evalharness.analysis import Analysis, analyze, register_tables, registry
from evalharness.analysis.registry import unregister_tables


@pytest.fixture
def toy_table():
    def per_model_accuracy(inputs, tables):
        # reads a table registered before it, as a real set may
        assert "budgets" in tables
        g = inputs.df.groupby(["model", "task"], as_index=False)["exact_match"].mean()
        return g.rename(columns={"exact_match": "toy_accuracy"})

    register_tables(
        ("toy",), per_model_accuracy,
        provenance={"toy": lambda i: (i.df, ["model", "task"])},
        rules={"toy": "toy accuracy = mean of correct over a model's records"},
        json={"toy": "toy_fits"}, docs={"toy": "per model: its mean exact match"})
    yield
    unregister_tables(("toy",))


def test_a_registered_table_is_computed_written_and_named_with_its_runs(toy_table, tmp_path):
    scores = synthetic_scores()
    an = analyze(scores, n_boot=20)
    assert "toy" in Analysis.TABLES
    toy = an.toy
    expected = scores.groupby("model")["exact_match"].mean()
    assert toy.set_index("model")["toy_accuracy"].to_dict() == pytest.approx(expected.to_dict())
    assert {"runs", "problems"} <= set(toy.columns)
    per_model = scores.groupby("model")["problem_id"].nunique()
    assert toy.set_index("model")["problems"].to_dict() == per_model.to_dict()
    paths = an.write(tmp_path)
    assert tmp_path / "toy.csv" in paths
    written = pd.read_csv(tmp_path / "toy.csv")
    assert list(written["model"]) == list(toy["model"])
    fits = json.loads((tmp_path / "fits.json").read_text())
    assert len(fits["toy_fits"]) == len(toy) and "toy" in fits["rules"]


def test_table_names_are_unique_and_a_set_returns_one_frame_per_name(monkeypatch):
    monkeypatch.setattr(registry, "_SETS", [])  # an empty registry: only these sets run
    register_tables(("toy",), lambda i, t: pd.DataFrame())
    with pytest.raises(ValueError, match="already registered"):
        register_tables(("toy",), lambda i, t: pd.DataFrame())
    with pytest.raises(ValueError, match="not tables of this set"):
        register_tables(("other",), lambda i, t: pd.DataFrame(), docs={"toy": "?"})
    register_tables(("toy_pair", "toy_other"), lambda i, t: pd.DataFrame())
    with pytest.raises(ValueError, match="returned 1 tables for 2 names"):
        registry.compute_tables(None)
    unregister_tables(("toy_pair",))
    assert registry.table_names() == ("toy",)


def test_an_analysis_serves_every_registered_table_and_refuses_unknown_names():
    an = analyze(pd.DataFrame())
    for name in Analysis.TABLES:
        assert isinstance(getattr(an, name), pd.DataFrame)
    with pytest.raises(AttributeError, match="no analysis table"):
        an.not_a_table  # noqa: B018 - the attribute access is what is tested
