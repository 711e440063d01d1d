"""A small OpenAI-compatible completions server on 127.0.0.1 that can misbehave on purpose.

No model: a deterministic stand-in whose answers depend only on the request (prompt ids, seed,
sample index), shaped like `vllm serve`'s (token_ids, per-token log-probs, prompt_logprobs with
ranks, echo with top log-probs). `fault(kind, body, reply, k)` rewrites replies: it returns None
(send the reply), a dict (send that instead) or a `Raw` (status, bytes, headers, or a stall).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIGITS = range(5, 15)  # the zoo tokenizer's '0'..'9'


@dataclass
class Raw:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    stall_after: int | None = None  # send this many bytes of `body`, then nothing
    declare_length: bool = True  # send a content-length header


def _rng(*key: Any) -> random.Random:
    return random.Random(hashlib.sha256(repr(key).encode()).hexdigest())


def _lp(pos: int, tok: int) -> float:
    return -round(((tok * 7 + pos) % 10) / 10 + 0.05, 4)


class FakeServer:
    def __init__(self, name: str = "fake-model", eos: int = 1, max_model_len: int = 512,
                 routes: tuple[str, ...] = ("prompt_logprobs", "echo")) -> None:
        self.name, self.eos, self.max_model_len, self.routes = name, eos, max_model_len, routes
        self.fault: Callable[[str, dict, dict, int], Any] | None = None
        self.count = {"generate": 0, "score": 0}
        self.lock = threading.Lock()
        self.release = threading.Event()  # set on close: stalled handlers let go
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, out: Raw | dict) -> None:
                if isinstance(out, dict):
                    out = Raw(body=json.dumps(out).encode())
                self.send_response(out.status)
                for k, v in out.headers.items():
                    self.send_header(k, v)
                if out.declare_length:
                    self.send_header("content-length", str(len(out.body)))
                self.end_headers()
                try:
                    if out.stall_after is not None:
                        self.wfile.write(out.body[: out.stall_after])
                        self.wfile.flush()
                        srv.release.wait(60)
                        return
                    self.wfile.write(out.body)
                except OSError:  # the client gave up (a cap, a timeout): fine
                    pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path.endswith("/models"):
                    return self._send({"object": "list", "data": [
                        {"id": srv.name, "root": srv.name, "max_model_len": srv.max_model_len}]})
                if path.endswith("/version"):
                    return self._send({"version": "fake-1"})
                self._send(Raw(404, b'{"error": {"message": "not found"}}'))

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                kind = "score" if ("prompt_logprobs" in body or body.get("echo")) else "generate"
                with srv.lock:
                    srv.count[kind] += 1
                    k = srv.count[kind]
                if kind == "score":
                    via = "prompt_logprobs" if "prompt_logprobs" in body else "echo"
                    if via not in srv.routes:
                        return self._send(Raw(400, b'{"error": {"message": "unsupported"}}'))
                    reply = srv.score_reply(body, via)
                else:
                    reply = srv.generate_reply(body)
                out = srv.fault(kind, body, reply, k) if srv.fault else None
                self._send(reply if out is None else out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    # -- the stand-in model ---------------------------------------------------------------------
    def generate_reply(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt, max_tokens = body["prompt"], body["max_tokens"]
        stops = list(body.get("stop_token_ids") or [])
        choices = []
        for j in range(body.get("n", 1)):
            r = _rng(prompt, body.get("seed"), j, body.get("temperature"))
            ids = [r.choice(DIGITS) for _ in range(r.randint(0, 10))]
            ids.append(stops[0] if stops and r.random() < 0.7 else self.eos)
            ids = ids[:max_tokens]
            # as vLLM's scheduler: the length check comes before the stop check
            reason = "length" if len(ids) == max_tokens else "stop"
            lps = [_lp(len(prompt) + p, t) for p, t in enumerate(ids)]
            choices.append({
                "index": j, "text": "", "token_ids": ids, "finish_reason": reason,
                "stop_reason": None,
                "logprobs": {"tokens": [f"token_id:{t}" for t in ids], "token_logprobs": lps,
                             "top_logprobs": None, "text_offset": list(range(len(ids)))},
            })
        return {"id": "cmpl-fake", "object": "text_completion", "model": self.name,
                "choices": choices, "usage": {"prompt_tokens": len(prompt)}}

    def score_reply(self, body: dict[str, Any], via: str) -> dict[str, Any]:
        ids = body["prompt"]
        choice: dict[str, Any] = {"index": 0, "text": "", "finish_reason": "length",
                                  "token_ids": [5]}
        ranks = [1 + (t + p) % 2 for p, t in enumerate(ids)]
        if via == "prompt_logprobs":
            plp: list[Any] = [None]
            for p in range(1, len(ids)):
                entry = {str(ids[p]): {"logprob": _lp(p, ids[p]), "rank": ranks[p]}}
                if ranks[p] > 1:  # the top alternative, more likely
                    alt = 5 if ids[p] != 5 else 6
                    entry[str(alt)] = {"logprob": -0.01, "rank": 1}
                plp.append(entry)
            choice["prompt_logprobs"] = plp
            choice["logprobs"] = None
        else:
            toks = [*ids, 5]
            lps = [None] + [_lp(p, ids[p]) for p in range(1, len(ids))] + [-0.5]
            tops: list[Any] = [None]
            for p in range(1, len(ids)):
                alt = 5 if ids[p] != 5 else 6
                tops.append({f"token_id:{ids[p]}": _lp(p, ids[p])} if ranks[p] == 1 else
                            {f"token_id:{alt}": -0.01})
            tops.append({"token_id:5": -0.5})
            choice["logprobs"] = {"tokens": [f"token_id:{t}" for t in toks],
                                  "token_logprobs": lps, "top_logprobs": tops,
                                  "text_offset": list(range(len(toks)))}
        return {"id": "cmpl-fake", "object": "text_completion", "model": self.name,
                "choices": [choice]}

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
