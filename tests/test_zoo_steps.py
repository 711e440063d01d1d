"""Training compute as a second axis: kept intermediate checkpoints are addressable by name
(`zoo/arith-h96-s0@step750`, `zoo@all`), never pooled with the final ones, listed with their
health, and load in transformers and vLLM with equal greedy tokens.

Runs on the v3 pilot checkpoints committed in zoo_v3/ (h96 and h128, three seeds, five kept
checkpoints each), through a zoo folder that holds one of them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import cli
from zoo_parity import greedy_tokens_both_engines

import evalharness.zoo as zoo_pkg

PILOT = Path(__file__).resolve().parents[1] / "zoo_v3"


@pytest.fixture(scope="module")
def pilot_zoo(tmp_path_factory):
    """A zoo folder with two checkpoints of the pilot: h96 seeds 0 and 1, all kept steps."""
    root = tmp_path_factory.mktemp("zoo")
    entries = []
    for name in ("arith-h96-s0", "arith-h96-s1"):
        shutil.copytree(PILOT / name, root / name)
        entries.append(json.loads((PILOT / name / "zoo_entry.json").read_text()))
    (root / "manifest.json").write_text(json.dumps({"models": entries}))
    return root


@pytest.fixture
def use_pilot(pilot_zoo, monkeypatch):
    monkeypatch.setattr(zoo_pkg, "ZOO_DIR", pilot_zoo)
    return pilot_zoo


def test_intermediate_checkpoints_are_named_by_step_and_carry_their_training(use_pilot):
    from evalharness.zoo import resolve_models

    finals = resolve_models("zoo")
    assert [r.name for r in finals] == ["zoo/arith-h96-s0", "zoo/arith-h96-s1"]
    assert resolve_models("zoo@final") == finals
    every = resolve_models("zoo@all")
    assert len(every) == 2 * 5  # four kept steps and the final, per seed
    s0 = [r for r in every if r.seed == 0]
    assert [r.step for r in s0] == [188, 375, 750, 1500, 3000]
    tokens = [r.train_tokens for r in s0]
    assert tokens == sorted(tokens) and len(set(tokens)) == 5
    (one,) = resolve_models("zoo/arith-h96-s0@step750")
    assert one.step == 750 and one.path.endswith("arith-h96-s0/steps/step00750")
    assert Path(one.path, "model.safetensors").exists()
    # seeds are replicates of a size only at equal training: never pooled with the finals
    assert one.size == "zoo/arith-h96@step750" and one.family == "zoo/arith@step750"
    assert finals[0].size == "zoo/arith-h96" and finals[0].family == "zoo/arith"
    assert len(resolve_models("zoo/seed1@all")) == 5
    assert resolve_models("zoo/arith-h96-s0@final") == finals[:1]


def test_a_step_that_was_not_kept_names_the_kept_ones(use_pilot):
    from evalharness.zoo import resolve_models

    with pytest.raises(ValueError, match=r"no checkpoint 'step700'; kept: @step188, @step375"):
        resolve_models("zoo/arith-h96-s0@step700")
    with pytest.raises(ValueError, match="use final or all"):
        resolve_models("zoo@latest")


def test_zoo_list_shows_health_and_with_all_the_kept_checkpoints(use_pilot):

    res = cli(["zoo", "list", "--all"])
    assert res.output.count("health: ok, worst step") == 2
    assert res.output.count("held-out loss") == 8
    assert "zoo/arith-h96-s1@step1500 step  1500" in res.output


@pytest.mark.vllm
@pytest.mark.parametrize("name", ["zoo/arith-h96-s0@step188", "zoo/arith-h96-s1@step1500"])
def test_a_kept_checkpoint_gives_equal_greedy_tokens_in_transformers_and_vllm(
        use_pilot, vllm_pool, name):
    from evalharness.zoo import resolve_models

    (ref,) = resolve_models(name)
    hf, vl, _ = greedy_tokens_both_engines(ref.path, vllm_pool)
    assert vl == hf


def test_hub_revisions_are_one_model_each_with_tokens_from_the_step(monkeypatch, tmp_path):
    from evalharness import runner
    from evalharness.runner import EvalOptions, train_tokens_of
    from evalharness.zoo import resolve_models

    refs = resolve_models("EleutherAI/pythia-160m@step1000,@step2000,@main")
    assert [(r.name, r.path, r.revision, r.step) for r in refs] == [
        ("EleutherAI/pythia-160m@step1000", "EleutherAI/pythia-160m", "step1000", 1000),
        ("EleutherAI/pythia-160m@step2000", "EleutherAI/pythia-160m", "step2000", 2000),
        ("EleutherAI/pythia-160m@main", "EleutherAI/pythia-160m", "main", None)]
    with pytest.raises(ValueError, match="no hub id@revision comes before it"):
        resolve_models("@step1000")
    opts = EvalOptions(models="", task="add5", tokens_per_step=2097152)
    assert train_tokens_of(refs[1], opts) == 2000 * 2097152
    assert train_tokens_of(refs[2], opts) is None  # "main" names no step: the user must say

    # each revision reaches the engine as its revision (and so the run id); a clashing
    # --revision is refused before anything loads
    seen = []

    def fake_load(kind, path, **options):
        seen.append((path, options.get("revision")))
        raise RuntimeError("stop here")

    monkeypatch.setattr(runner, "load_engine", fake_load)
    from evalharness.tasks import load_task

    task = load_task("add5")
    for ref in refs[:2]:
        with pytest.raises(RuntimeError, match="stop here"):
            runner.run_one(ref, task, EvalOptions(models="", task="add5", results=tmp_path),
                           None, None)
    assert seen == [("EleutherAI/pythia-160m", "step1000"),
                    ("EleutherAI/pythia-160m", "step2000")]
    clash = EvalOptions(models="", task="add5", results=tmp_path,
                        engine_options={"revision": "v1"})
    with pytest.raises(ValueError, match="give one"):
        runner.run_one(refs[0], task, clash, None, None)


def test_a_checkpoint_folder_given_by_path_carries_its_own_training_axis(tmp_path):
    """A zoo-trained folder (before any manifest is written) gives its parameters, tokens,
    FLOPs, size, seed and step from its zoo_entry.json, under a family named after the
    training folder, so it is never pooled with the package zoo's sizes of the same name."""
    from evalharness.zoo import resolve_models

    final = tmp_path / "retrain" / "arith-h64-s1"
    step = final / "steps" / "step00750"
    step.mkdir(parents=True)
    common = {"size": "h64", "params": 236224, "seed": 1, "steps": 3000}
    (final / "zoo_entry.json").write_text(json.dumps(
        {**common, "step": 3000, "tokens": 4000, "train_flops": 6.0 * 236224 * 4000,
         "sha256": "a" * 64, "checkpoints": []}))
    (step / "zoo_entry.json").write_text(json.dumps(
        {**common, "step": 750, "tokens": 1000, "train_flops": 6.0 * 236224 * 1000,
         "sha256": "b" * 64}))
    f, s = resolve_models(f"{final},{step}")
    assert (f.family, f.size, f.step, f.train_tokens) == (
        "zoo/arith:retrain", "zoo/arith:retrain-h64", 3000, 4000)
    assert (s.family, s.size, s.step, s.train_tokens) == (
        "zoo/arith:retrain@step750", "zoo/arith:retrain-h64@step750", 750, 1000)
    assert (f.params, f.seed, f.sha256, s.sha256) == (236224, 1, "a" * 64, "b" * 64)
