"""An engine is one registry entry: a toy engine registered only there runs through the CLI,
takes its own option through --engine-arg (typed by the registry) and is recorded in the
manifest with the packages its entry names."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pytest
from typer.testing import CliRunner

from evalharness.cli import app
from evalharness.engines import (
    ENGINES,
    EngineEntry,
    EngineError,
    EngineOption,
    register_engine,
    resolve_options,
    unregister_engine,
)
from evalharness.types import Completion, GenRequest, ScoreResult

runner = CliRunner()


class ToyEngine:
    """Canned completions, no model: every generation is `reply`, every scored token a hit."""

    name = "toy"
    version = "0.1"

    def __init__(self, model: str, reply: str = "0") -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model)  # the zoo's, to render prompts
        self.max_model_len = 4096
        self.reply = reply
        self.settings = {"engine": self.name, "reply": reply}

    def generate(self, requests: Sequence[GenRequest],
                 progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
        ids = self.tokenizer.encode(self.reply, add_special_tokens=False)
        out = []
        for r in requests:
            stop = r.stop_ids[0] if r.stop_ids else None
            done = Completion(ids[: r.max_tokens], self.reply, [0.0] * len(ids[: r.max_tokens]),
                              "stop", stop)
            out.append([done] * r.n)
        return out

    def score(self, pairs: Sequence[tuple[list[int], list[int]]],
              progress: Callable[[int], None] | None = None) -> list[ScoreResult]:
        return [ScoreResult([0.0] * len(c), [True] * len(c)) for _, c in pairs]

    def close(self) -> None:
        pass


TOY = EngineEntry(
    "toy", f"{__name__}:ToyEngine", "canned replies (tests)",
    (EngineOption("reply", str, "the text every generation returns", "0"),),
    packages=("numpy",),
)


@pytest.fixture
def toy_engine():
    register_engine(TOY)
    yield TOY
    unregister_engine("toy")
    assert "toy" not in ENGINES


def _eval(tmp_path, zoo, *extra: str):
    return runner.invoke(app, ["eval", "--model", zoo[0].name, "--task", "add_sweep",
                               "--limit", "3", "--budgets", "0,8", "--engine", "toy",
                               "--results", str(tmp_path), "--no-progress", *extra])


def test_an_engine_registered_only_in_the_registry_runs_through_the_cli(tmp_path, zoo,
                                                                        toy_engine):
    # YAML reads 17 as an int; the registry types the option as str
    res = _eval(tmp_path, zoo, "--engine-arg", "reply=17")
    assert res.exit_code == 0, res.output
    (run,) = (tmp_path / "runs").iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["engine"] == "toy" and manifest["engine_version"] == "0.1"
    assert manifest["engine_options"] == {"reply": "17"}
    assert manifest["spec"]["engine"]["settings"]["reply"] == "17"
    # the harness's packages and the toy entry's, not another engine's
    assert {"evalharness", "transformers", "numpy"} <= set(manifest["packages"])
    assert "vllm" not in manifest["packages"]
    rows = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * 2
    assert {r["answer"] for r in rows} == {"17"}


def test_the_toy_options_value_changes_the_run_id(tmp_path, zoo, toy_engine):
    ids = []
    for reply in ("17", "18"):
        res = _eval(tmp_path, zoo, "--engine-arg", f"reply={reply}", "--dry-run")
        assert res.exit_code == 0, res.output
        ids.append(res.output.split("run id:")[1].split()[0])
    assert ids[0] != ids[1]


def test_an_engine_arg_of_the_wrong_type_or_name_is_refused(tmp_path, zoo, toy_engine):
    res = _eval(tmp_path, zoo, "--engine-arg", "reply={a: 1}")
    assert res.exit_code == 2 and "option reply takes a str" in res.output
    res = _eval(tmp_path, zoo, "--engine-arg", "temperature_boost=2")
    assert res.exit_code == 2
    assert "option temperature_boost is not used by the toy engine; it accepts: reply" \
        in " ".join(res.output.split())


def test_a_flag_option_given_as_an_engine_arg_points_at_its_flag():
    with pytest.raises(EngineError, match="use --batch-size"):
        resolve_options("hf", {"engine_args": {"batch_size": 8}})


def test_vllm_engine_args_stay_its_passthrough_as_before():
    # vLLM's EngineArgs keys (even one that is also an option name) keep reaching
    # engine_args, so run ids made with them do not move
    out = resolve_options("vllm", {"engine_args": {"enforce_eager": True, "max_num_seqs": 8}})
    assert out == {"engine_args": {"enforce_eager": True, "max_num_seqs": 8}}
