"""The served engine against a misbehaving OpenAI-compatible server (tests/fake_openai.py, on
127.0.0.1, no model, no network): every misbehaviour ends in a retry that succeeds, an
error record (counted), or a one-line stop, never a silent good record or a traceback. Plus a
property test: random damage to valid replies never changes a record without being flagged.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from pathlib import Path

import pytest
from fake_openai import FakeServer, Raw
from helpers import assert_same_records, read_records

from evalharness.engines import EngineError, load_engine
from evalharness.engines.served import (
    BadReply,
    InvalidReply,
    ServerError,
    check_generation,
    check_score,
)
from evalharness.types import GenRequest

NAME = "fake-model"
SECRET = "s3cr3t"


@pytest.fixture(scope="module")
def tok_path():
    from evalharness.zoo import zoo_models

    return zoo_models()[0].path  # the smallest zoo model: only its tokenizer is read


@pytest.fixture
def server():
    with FakeServer(NAME) as srv:
        yield srv


def _eval(results: Path, url: str, **engine_kw):
    from evalharness.runner import EvalOptions, run_eval

    opts = EvalOptions(models="zoo/arith-h8-s0", task="add5", budgets=(0, 4, 16), limit=3,
                       engine="openai", results=results, progress=False,
                       engine_options={"base_url": url, "served_model_name": NAME, **engine_kw})
    lines: list[str] = []
    res = run_eval(opts, log=lines.append)[0]
    return res, lines


@pytest.fixture(scope="module")
def baseline(tok_path, tmp_path_factory):
    """The records of a well-behaved server (every test compares against them)."""
    with FakeServer(NAME) as srv:
        res, lines = _eval(tmp_path_factory.mktemp("base"), srv.url)
    assert res.status == "complete" and res.errors == 0
    return read_records(res.dir)


def _first(k: int, kind: str, make):
    """A fault on the first `k` requests of `kind` ("generate" | "score")."""
    def fault(kd, body, reply, n):
        return make(body, reply) if kd == kind and n <= k else None
    return fault


def _set_lp(value):
    def make(body, reply):
        reply["choices"][0]["logprobs"]["token_logprobs"][-1] = value
        return reply
    return make


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def _one_line(e: BaseException) -> str:
    msg = str(e)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


# -- 1: log-probs ----------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [math.nan, -math.inf, 3.0])
def test_a_nan_inf_or_positive_logprob_is_retried_and_the_run_equals_the_valid_one(
        tok_path, server, baseline, tmp_path, bad):
    server.fault = _first(2, "generate", _set_lp(bad))
    res, _ = _eval(tmp_path, server.url, max_retries=2)
    assert res.status == "complete" and res.errors == 0
    assert_same_records(read_records(res.dir), baseline)


def test_a_generation_with_bad_logprobs_every_time_becomes_error_records(
        tok_path, server, baseline, tmp_path):
    server.fault = lambda kd, body, reply, n: _set_lp(math.nan)(body, reply) if (
        kd == "generate" and body["max_tokens"] == 16) else None  # every thinking request
    res, _ = _eval(tmp_path, server.url, max_retries=1)
    recs = read_records(res.dir)
    assert res.made == len(baseline) and res.errors == len(baseline)
    for r in recs.values():
        assert r["finish_reason"].startswith("error: server http://127.0.0.1:")
        assert "failed after 2 tries: invalid reply: a generated token's log-prob is nan" in \
            r["finish_reason"]
    text = (res.dir / "samples.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text  # every line is valid JSON


@pytest.mark.parametrize("bad", [math.nan, 3.0])
def test_a_scoring_reply_with_bad_logprobs_every_time_stops_in_one_line_marked_failed(
        tok_path, server, tmp_path, bad):
    def fault(kd, body, reply, n):
        if kd == "score" and n > 1:  # the probe (request 1) passes
            reply["choices"][0]["prompt_logprobs"][-1] = {
                str(body["prompt"][-1]): {"logprob": bad, "rank": 1}}
            return reply
        return None
    server.fault = fault
    with pytest.raises(ServerError, match=r"failed after 2 tries: invalid reply: a prompt "
                                          r"log-prob is (nan|3\.0)") as e:
        _eval(tmp_path, server.url, max_retries=1)
    _one_line(e.value)
    (run_dir,) = (tmp_path / "runs").iterdir()
    m = _manifest(run_dir)
    assert m["status"] == "failed" and "invalid reply" in m["error"]


# -- 2, 3, 4, 5, 6: token counts, finish_reason, vocabulary, model name, shape ----------------
def _short_length(body, reply):
    c = reply["choices"][0]
    c["token_ids"], c["finish_reason"] = [7], "length"
    c["logprobs"]["token_logprobs"] = [-0.1]
    return reply


def _finish(value):
    def make(body, reply):
        reply["choices"][0]["finish_reason"] = value
        return reply
    return make


def _oov(body, reply):
    c = reply["choices"][0]
    c["token_ids"] = [1000000000, *c["token_ids"][1:]] if c["token_ids"] else [1000000000]
    c["logprobs"]["token_logprobs"] = c["logprobs"]["token_logprobs"] or [-0.1]
    return reply


def _drop(key):
    def make(body, reply):
        reply["choices"][0].pop(key) if key != "choices" else reply.pop("choices")
        return reply
    return make


CASES = {  # defect: (fault on a generation reply, words in its error line)
    "short generation with finish length": (_short_length, "finish_reason 'length' after 1 of"),
    "finish_reason abort": (_finish("abort"), "finish_reason 'abort' (not stop or length)"),
    "out-of-vocabulary token id": (_oov, "generated token 1000000000 is not a token id"),
    "no choices": (_drop("choices"), "the reply has no list of choices"),
    "no index": (_drop("index"), "choice indices are [None]"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_generation_reply_is_retried_and_then_gives_the_valid_records(
        tok_path, server, baseline, tmp_path, case):
    server.fault = _first(3, "generate", CASES[case][0])
    res, _ = _eval(tmp_path, server.url, max_retries=3)
    assert res.status == "complete" and res.errors == 0
    assert_same_records(read_records(res.dir), baseline)


@pytest.mark.parametrize("case", CASES)
def test_a_bad_generation_reply_every_time_is_an_error_record_naming_the_defect(
        tok_path, server, baseline, tmp_path, case):
    make, words = CASES[case]
    # every answer request (the short ones after thinking) is broken; thinking is fine
    server.fault = lambda kd, body, reply, n: make(body, reply) if (
        kd == "generate" and body["max_tokens"] < 16) else None
    res, _ = _eval(tmp_path, server.url, max_retries=1)
    recs = read_records(res.dir)
    assert res.errors == res.made == len(baseline)
    for key, r in recs.items():
        assert r["finish_reason"].startswith("error: ") and words in r["finish_reason"], r
        assert r["answer"] == "" and r["answer_ids"] == []
        assert r["thinking"] == baseline[key]["thinking"]  # the part that was fine is kept


def test_a_reply_for_another_model_stops_the_run_in_one_line(tok_path, server, tmp_path):
    def other(body, reply):
        reply["model"] = "some-other-model"
        return reply
    server.fault = _first(10**6, "generate", other)
    with pytest.raises(ServerError, match="invalid reply: the reply is for model "
                                          "'some-other-model', not 'fake-model'") as e:
        _eval(tmp_path, server.url, max_retries=1)
    _one_line(e.value)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert _manifest(run_dir)["status"] == "failed"


@pytest.mark.parametrize("body", [b"{not json", b"<html><body>Bad gateway</body></html>", b""])
def test_a_non_json_body_with_status_200_is_retried_then_one_line_naming_the_server(
        tok_path, server, baseline, tmp_path, body):
    server.fault = _first(2, "generate", lambda b, r: Raw(200, body))
    res, _ = _eval(tmp_path / "a", server.url, max_retries=2)
    assert_same_records(read_records(res.dir), baseline)  # retried
    server.fault = _first(10**6, "generate", lambda b, r: Raw(200, body))
    with pytest.raises(ServerError) as e:
        _eval(tmp_path / "b", server.url, max_retries=1)
    msg = _one_line(e.value)
    assert msg.startswith(f"server {server.url} failed after 2 tries: answered HTTP 200 with a "
                          "body that is not JSON")


# -- 7: the start-up probe ------------------------------------------------------------------------
def test_500s_during_the_probe_are_retried_and_do_not_switch_the_route(tok_path, server):
    server.fault = _first(3, "score", lambda b, r: Raw(500, b'{"error": "busy"}'))
    eng = load_engine("openai", tok_path, base_url=server.url, served_model_name=NAME,
                      max_retries=3)
    assert eng.score_via == "prompt_logprobs" and server.count["score"] == 4
    assert eng.server["prompt_logprobs_via"] == "prompt_logprobs"
    assert "via prompt_logprobs" in eng.route_line
    eng.close()


def test_a_probe_that_keeps_failing_is_one_line_about_the_failure_not_a_route_switch(
        tok_path, server):
    server.fault = _first(10**6, "score", lambda b, r: Raw(500, b'{"error": "busy"}'))
    with pytest.raises(ServerError, match=r"failed after 2 tries: HTTP 500: busy") as e:
        load_engine("openai", tok_path, base_url=server.url, served_model_name=NAME,
                    max_retries=1)
    assert "no prompt log-probs" not in _one_line(e.value)
    assert server.count["score"] == 2  # the echo route was never tried


def test_a_server_without_prompt_logprobs_uses_echo_and_says_so(
        tok_path, server, baseline, tmp_path):
    server.routes = ("echo",)
    res, lines = _eval(tmp_path, server.url)
    assert any("prompt log-probs via echo (prompt_logprobs refused: HTTP 400" in ln
               for ln in lines)
    m = _manifest(res.dir)
    assert m["server"]["prompt_logprobs_via"] == "echo"
    assert "HTTP 400" in m["server"]["prompt_logprobs_why"]
    assert_same_records(read_records(res.dir), baseline)  # the same scores by the other route


# -- 8: waits and sizes ---------------------------------------------------------------------------
def test_a_stalled_server_fails_within_timeout_times_tries_and_says_so(
        tok_path, server, tmp_path):
    stall = Raw(200, json.dumps({"model": NAME, "choices": []}).encode() * 10, stall_after=20)
    server.fault = _first(10**6, "generate", lambda b, r: stall)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tok_path)  # the imports' time is not the wait's
    t0 = time.monotonic()
    with pytest.raises(ServerError) as e:
        _eval(tmp_path, server.url, timeout=0.5, max_retries=1)
    took = time.monotonic() - t0
    msg = _one_line(e.value)
    assert "failed after 2 tries: no complete reply within 0.5 s (--request-timeout" in msg
    # 2 tries x 0.5 s + 0.5 s backoff, plus start-up (tokenizer, probe): far from 600 s x 6
    assert took < 15, took


def test_a_reply_over_the_size_cap_is_refused_not_read(tok_path, server, tmp_path):
    huge = Raw(200, b'{"pad": "' + b"x" * (3 << 20) + b'"}')
    server.fault = _first(10**6, "generate", lambda b, r: huge)
    with pytest.raises(ServerError, match=r"over the 1 MB cap \(--max-reply-mb\)") as e:
        _eval(tmp_path / "a", server.url, max_reply_mb=1, max_retries=1)
    _one_line(e.value)
    # without a content-length: counted as it arrives
    huge.declare_length = False
    with pytest.raises(ServerError, match=r"a reply of more than 1\.\d MB, over the 1 MB cap"):
        _eval(tmp_path / "b", server.url, max_reply_mb=1, max_retries=0)


def test_request_timeout_and_reply_cap_flags_reach_the_engine_and_not_the_run_id(
        tok_path, server, tmp_path):
    from typer.testing import CliRunner

    from evalharness.cli import app

    def run_id(*extra):
        args = ["eval", "--model", tok_path, "--task", "add5", "--limit", "2", "--budgets",
                "0", "--engine", "openai", "--base-url", server.url, "--served-model-name",
                NAME, "--results", str(tmp_path), "--dry-run", *extra]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        return re.findall(r"run id: (\S+)", res.output)[-1]

    assert run_id() == run_id("--request-timeout", "7", "--max-reply-mb", "2",
                              "--max-retries", "3")
    server.fault = _first(10**6, "score", lambda b, r: Raw(200, b"x" * (2 << 20)))
    res = CliRunner().invoke(app, [
        "eval", "--model", tok_path, "--task", "add5", "--engine", "openai", "--base-url",
        server.url, "--served-model-name", NAME, "--results", str(tmp_path), "--dry-run",
        "--max-reply-mb", "1", "--request-timeout", "5", "--max-retries", "1"])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "over the 1 MB cap (--max-reply-mb)" in res.output


# -- 9: no secret on disk -------------------------------------------------------------------------
def test_credentials_in_the_base_url_reach_no_file_and_no_output(
        tok_path, server, tmp_path, capfd, monkeypatch):
    from typer.testing import CliRunner

    from evalharness.cli import app

    results = tmp_path / "results"
    url = f"http://user:{SECRET}@127.0.0.1:{server.port}/v1?key={SECRET}&sig={SECRET}"
    runner = CliRunner()
    outputs = []
    for args in (
        ["eval", "--model", tok_path, "--task", "add5", "--limit", "2", "--budgets", "0,4",
         "--engine", "openai", "--base-url", url, "--served-model-name", NAME,
         "--results", str(results), "--no-progress"],
        ["report", "--results", str(results)],
        ["export", "--results", str(results), "--format", "all"],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        outputs.append(res.output)
    # and a failing run whose server quotes the URL and the API key back in its error: the
    # error line and the manifest's "error" hold neither
    monkeypatch.setenv("EVALHARNESS_TEST_KEY", f"sk-{SECRET}-key")
    echo = json.dumps({"error": {"message": f"bad key sk-{SECRET}-key for {url}"}}).encode()
    server.fault = _first(10**6, "generate", lambda b, r: Raw(401, echo))
    res = runner.invoke(app, ["eval", "--model", tok_path, "--task", "add5", "--limit", "3",
                              "--budgets", "0,8", "--engine", "openai", "--base-url", url,
                              "--served-model-name", NAME, "--results", str(results),
                              "--no-progress", "--api-key-env", "EVALHARNESS_TEST_KEY"])
    assert res.exit_code == 2 and "refused a request (HTTP 401: bad key *** for " \
        f"http://127.0.0.1:{server.port}/v1?key=***&sig=***)" in res.output, res.output
    outputs.append(res.output)
    assert any(json.loads(p.read_text()).get("status") == "failed"
               for p in results.glob("runs/*/manifest.json"))
    assert any("127.0.0.1" in o for o in outputs)
    files = [p for p in results.rglob("*") if p.is_file()]
    assert any(p.name == "report.html" for p in files) and len(files) > 5
    for p in files:
        assert SECRET.encode() not in p.read_bytes(), p
    captured = capfd.readouterr()
    for text in [*outputs, captured.out, captured.err]:
        assert SECRET not in text
    m = json.loads(next(results.glob("runs/*/manifest.json")).read_text())
    assert m["server"]["base_urls"] == [f"http://127.0.0.1:{server.port}/v1?key=***&sig=***"]


# -- the validator, directly: every defect flagged, valid replies unchanged -----------------------
def _checked_generation(reply, req):
    from transformers import AutoTokenizer

    from evalharness.zoo import zoo_models

    tok = _checked_generation.tok = getattr(_checked_generation, "tok", None) or \
        AutoTokenizer.from_pretrained(zoo_models()[0].path)
    return check_generation(reply, req, frozenset({NAME}), len(tok), set(req.stop_ids) | {1},
                            lambda ids: tok.decode(ids, skip_special_tokens=False))


BAD_VALUES = [math.nan, math.inf, -math.inf, 3.0, None, "x", True, [], {}, 10**12, 2.5]


def _mutations(obj, rng: random.Random, path=()):
    """Every place in a reply, as (path, container, key)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*path, k), obj, k
            yield from _mutations(v, rng, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield (*path, i), obj, i
            yield from _mutations(v, rng, (*path, i))


def _mutate(reply, rng: random.Random):
    """One random defect: a value replaced by an out-of-domain one, a key dropped, a list cut
    short or lengthened. (In-domain substitutions, e.g. one digit token for another or a
    log-prob of -0.3 for -0.2, are a different model's answer, not a defect a validator can
    see; they are left out.)"""
    import copy

    reply = copy.deepcopy(reply)
    places = list(_mutations(reply, rng))
    path, box, key = rng.choice(places)
    op = rng.choice(["value", "value", "drop", "list"])
    if op == "list" and isinstance(box[key], list) and box[key]:
        if rng.random() < 0.5:
            box[key].pop(rng.randrange(len(box[key])))
        else:
            box[key].append(box[key][-1])
        return reply, f"{path}: list changed"
    if op == "drop":
        if isinstance(box, dict):
            del box[key]
        else:
            box.pop(key)
        return reply, f"{path}: dropped"
    box[key] = rng.choice(BAD_VALUES)
    return reply, f"{path} = {box[key]!r}"


def _gen_cases():
    srv = FakeServer.__new__(FakeServer)  # its reply builders only; no socket
    srv.name, srv.eos = NAME, 1
    rng = random.Random(0)
    out = []
    for k in range(8):
        prompt = [3] + [rng.choice(range(5, 15)) for _ in range(rng.randint(2, 9))]
        req = GenRequest(prompt, rng.choice([1, 3, 8, 16]), seed=k, n=rng.choice([1, 1, 2]),
                         stop_ids=(4,) if k % 2 else ())
        body = {"prompt": prompt, "max_tokens": req.max_tokens, "n": req.n, "seed": k,
                "temperature": 0.0, "stop_token_ids": list(req.stop_ids)}
        out.append((req, srv.generate_reply(body)))
    return srv, out


def test_random_damage_to_valid_generation_replies_is_flagged_or_changes_nothing():
    srv, cases = _gen_cases()
    rng = random.Random(26)
    flagged = 0
    for trial in range(100):
        req, reply = cases[trial % len(cases)]
        want = _checked_generation(reply, req)
        bad, what = _mutate(reply, rng)
        try:
            got = _checked_generation(bad, req)
        except BadReply:
            flagged += 1
            continue
        assert got == want, f"unflagged change: {what}"
    assert flagged > 30  # much damage is visible; the rest changed nothing a record holds


@pytest.mark.parametrize("via", ["prompt_logprobs", "echo"])
def test_random_damage_to_valid_scoring_replies_is_flagged_or_changes_nothing(via):
    srv = FakeServer.__new__(FakeServer)
    srv.name = NAME
    rng = random.Random(13)
    flagged = 0
    for _ in range(80):
        ids = [3] + [rng.choice(range(5, 15)) for _ in range(rng.randint(3, 12))]
        n_ctx = rng.randint(1, len(ids) - 1)
        reply = srv.score_reply({"prompt": ids}, via)
        want = check_score(reply, ids, n_ctx, via, frozenset({NAME}), 102)
        bad, what = _mutate(reply, rng)
        try:
            got = check_score(bad, ids, n_ctx, via, frozenset({NAME}), 102)
        except BadReply:
            flagged += 1
            continue
        assert got == want, f"unflagged change: {what}"
    assert flagged > 20


def test_random_damage_over_http_is_retried_to_the_valid_records(
        tok_path, server, baseline, tmp_path):
    """A small sample at the HTTP level: every reply damaged on its first try, at random
    (including bodies cut short); the retry gets the valid reply, and the records are equal."""
    rng = random.Random(7)
    seen: set = set()

    def fault(kind, body, reply, n):
        key = (kind, json.dumps(body, sort_keys=True))
        if key in seen:
            return None
        seen.add(key)
        if rng.random() < 0.3:
            text = json.dumps(reply).encode()
            return Raw(200, text[: rng.randrange(len(text))])
        bad, _ = _mutate(reply, rng)
        return bad

    server.fault = fault
    res, _ = _eval(tmp_path, server.url, max_retries=1)
    recs = read_records(res.dir)
    # a damage the validator cannot see changes nothing; one it sees is retried
    assert res.errors == 0
    assert_same_records(recs, baseline)
    retried = sum(server.count.values()) - len(seen)
    assert retried > len(seen) // 3, (retried, len(seen))  # many replies were caught


def test_unknown_engine_options_are_still_refused(tok_path):
    with pytest.raises(EngineError, match="option dtype is not used by the openai engine"):
        load_engine("openai", tok_path, base_url="http://127.0.0.1:1/v1", dtype="float32")


def test_invalid_reply_error_keeps_whether_to_stop():
    e = InvalidReply("x", stop=True)
    assert e.stop and isinstance(e, ServerError)


# -- 10: budgets bounded ------------------------------------------------------------------------
def test_a_budget_larger_than_any_context_is_refused_at_parse_time_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from evalharness.cli import app

    res = CliRunner().invoke(app, ["eval", "--model", "zoo/arith-h8-s0", "--task", "add5",
                                   "--budgets", "0,99999999999999999999", "--results",
                                   str(tmp_path), "--dry-run"])
    assert res.exit_code == 2 and "out of range" in res.output and "10,000,000" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "runs").exists()


def test_a_manifest_or_record_with_an_out_of_range_value_is_skipped_and_report_still_works(
        tok_path, server, tmp_path, caplog):
    import shutil

    from typer.testing import CliRunner

    from evalharness.cli import app

    res, _ = _eval(tmp_path, server.url)
    good = res.dir
    # a copy of the run whose manifest plans a budget of 10^20 (what the old CLI wrote) ...
    bad = good.parent / (good.name + "-huge")
    shutil.copytree(good, bad)
    m = _manifest(bad)
    m["plan"]["budgets"].append(10**20)
    (bad / "manifest.json").write_text(json.dumps(m))
    # ... and a record at that budget in the good run
    row = json.loads((good / "samples.jsonl").read_text().splitlines()[0])
    row["budget"] = 10**20
    with open(good / "samples.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    for args in (["score", "--results", str(tmp_path)], ["report", "--results", str(tmp_path)],
                 ["summary", "--results", str(tmp_path)]):
        out = CliRunner().invoke(app, args)
        assert out.exit_code == 0, (args, out.output, out.exception)
        assert "Traceback" not in out.output
        assert "damaged manifest (plan.budgets" in out.output and "run skipped" in out.output
        if args[0] == "score":  # read once: the scores stay valid after that
            assert "skipped an invalid record ('budget' is out of range)" in out.output
    assert (tmp_path / "report.html").exists()
