"""math-verify (sympy) equivalence, bounded in time on any thread.

math-verify runs in a worker process per thread that is killed at a deadline
(``_MV_DEADLINE_S``), because neither of the in-process ways to stop it works everywhere:
SIGALRM only on the main thread, and nothing at all interrupts CPython inside one huge integer
operation. Inputs known to be slow (deep nesting, numeric power towers, huge exponents and
factorials) are refused before that, so the deadline is a backstop. A thread's first call also
waits for its worker to start (importing sympy, about 1 s; ``_MV_START_LIMIT_S`` at most), so
that a slow start never turns into a wrong verdict.
"""

from __future__ import annotations

import json
import logging
import os
import re
import selectors
import subprocess
import sys
import threading
import time
import weakref
from collections import Counter, OrderedDict
from functools import lru_cache

from evalharness.scoring.spans import _balanced

log = logging.getLogger(__name__)

# math-verify's answer must arrive this long after the call starts, else its worker is killed;
# the margin to answers.GRADE_TIME_LIMIT_S covers the kill and the (linear) work around it.
_MV_DEADLINE_S = 4.5
# ... not counting, on a thread's first math-verify call, the start of its worker process
# (importing sympy: ~1 s), given up on after this long (then math-verify runs in-process).
_MV_START_LIMIT_S = 60.0

_MV_MAX_CHARS = 400  # longer "answers" are prose, not maths; don't hand them to sympy
# Measured (math-verify 0.9, sympy 1.14): its LaTeX parser is exponential in bracket nesting
# (depth 8: 0.8 s, 10: 1.6 s, 20: minutes), and sympy evaluates integer powers and factorials
# exactly ("9^{9^{9}}", "10^{100000000}", "10000000!" never finish), expands "(x+1)^{1000}" for
# seconds, and never finishes "95E821541433" (an exponent of 9 digits; "1e5000" takes 0.1 s).
# Such inputs are refused up front: they could only ever end at the deadline.
_MV_MAX_DEPTH = 6
_MV_MAX_EXPONENT_DIGITS = 3
_MV_BIG_E = re.compile(r"\d\.?\s*e\s*[-+]?\s*\d{5,}", re.IGNORECASE)
_MV_NUMERIC_POWER = re.compile(r"\d\s*\}?\s*\^\s*\{?\s*[-+]?\d")  # 9^{9 in 9^{9^{9}}
_MV_BIG_INT = re.compile(r"\d{4,}")
_MV_FACTORIAL_OF_GROUP = re.compile(r"[)\]}]\s*!")
_MV_COMPUTED = re.compile(r"\^|\d{3}|\*|\\cdot|\\times")  # what makes "(...)!" huge


def _mv_refuses(text: str) -> bool:
    """Whether `text` is too long, deep or explosive to hand to math-verify (see above)."""
    if len(text) > _MV_MAX_CHARS:
        return True
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}" and depth:
            depth -= 1
    if deepest > _MV_MAX_DEPTH or _MV_BIG_E.search(text):
        return True
    if ("!" in text or "binom" in text or "choose" in text) and (
        _MV_BIG_INT.search(text)  # 9999!!, \binom{99999}{50000}
        or (_MV_FACTORIAL_OF_GROUP.search(text) and _MV_COMPUTED.search(text))  # (10^{9})!
    ):
        return True
    i = text.find("^")
    while i >= 0:
        j = i + 1
        while j < len(text) and text[j].isspace():
            j += 1
        if j < len(text) and text[j] == "{":
            inner = _balanced(text, j + 1)
            exponent = inner if inner is not None else text[j + 1 :]
            j += len(exponent) + 2
        elif j < len(text) and text[j] == "\\":
            m = re.match(r"\\[a-zA-Z]+|\\.", text[j:])
            exponent = m.group() if m else "\\"
            j += len(exponent)
        else:
            exponent = text[j : j + 1]
            j += 1
        digits = sum(ch.isdigit() for ch in exponent)
        if digits > _MV_MAX_EXPONENT_DIGITS or _MV_NUMERIC_POWER.search(exponent):
            return True  # a big exponent, or a numeric tower such as 9^{9^{9}} (not 2^{2^{x}})
        while j < len(text) and text[j].isspace():
            j += 1
        if j < len(text) and text[j] == "^":
            return True  # a double superscript "x^x^x...": LaTeX error, sympy tower
        i = text.find("^", i + 1)
    return False


# In-worker limits: math-verify's own SIGALRM timeouts (whole seconds; the worker runs them on
# its main thread, where they work) stop the usual slow cases without losing the worker; the
# parent's deadline kills it for the rest (C-level big-integer work that no signal interrupts).
_MV_PARSE_TIMEOUT_S = 1
_MV_VERIFY_TIMEOUT_S = 2  # per comparison; typically one is slow at most (1 + 1 + 2 < 4.5)
_MV_RETRY_LEFT_S = 2.0  # an undecided answer is asked again when this much of the deadline is left
# Run as ``python -c``: stdlib and math_verify only, nothing of this package, so it starts in
# about a second. One JSON request per line in ([id, pred, reference]), one answer per line out.
_MV_WORKER_SOURCE = f"""
import functools, json, logging, sys
out = sys.stdout.buffer
try:
    from math_verify import parse, verify
except Exception as e:
    out.write(json.dumps({{"ready": False, "error": repr(e)}}).encode() + b"\\n")
    out.flush()
    raise SystemExit(0)
logging.disable(logging.INFO)  # its debug lines are noise; its timeout warnings are caught


# math-verify's own timeouts end in a warning and an empty parse / False, which look like
# "not equal": the warning is the only sign that no verdict was reached.
class TimeoutSeen(logging.Handler):
    hit = False

    def emit(self, record):
        if str(record.msg).startswith("Timeout during"):
            TimeoutSeen.hit = True


_mv_log = logging.getLogger("math_verify")
_mv_log.addHandler(TimeoutSeen())
_mv_log.propagate = False


class TimedOut(Exception):
    pass
try:
    import resource
except ImportError:
    resource = None

def cpu_guard():
    # An orphan stuck in C code (parent gone) must still end: CPU limit per request.
    if resource is None:
        return
    try:
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        new = int(used.ru_utime + used.ru_stime) + 60
        if hard == resource.RLIM_INFINITY or new <= hard:
            resource.setrlimit(resource.RLIMIT_CPU, (new, hard))
    except Exception:
        pass

@functools.lru_cache(maxsize=1 << 14)
def parsed(text):
    TimeoutSeen.hit = False
    try:
        result = tuple(parse("$" + text + "$", parsing_timeout={_MV_PARSE_TIMEOUT_S}))
    except BaseException:  # math_verify's TimeoutException is a BaseException
        result = ()
    if TimeoutSeen.hit:  # raised, so a slow moment is not cached as "unparsable"
        raise TimedOut
    return result

# Warm up before saying ready: the first comparison imports sympy's LaTeX and simplification
# modules (seconds on a busy machine), which would otherwise eat into the first answer's own
# time limits and leave it undecided.
try:
    verify(list(parse("$\\\\frac{{\\\\sqrt{{2}}}}{{2}}$", parsing_timeout=None)),
           list(parse("$x^2+2x+1$", parsing_timeout=None)), timeout_seconds=None)
except BaseException:
    pass
out.write(b'{{"ready": true}}\\n')
out.flush()
for line in sys.stdin.buffer:
    try:
        rid, pred, ref = json.loads(line)
    except Exception:
        continue
    cpu_guard()
    ok = undecided = False
    try:
        gold, target = parsed(ref), parsed(pred)
        if gold and target:
            TimeoutSeen.hit = False
            ok = bool(verify(list(gold), list(target), timeout_seconds={_MV_VERIFY_TIMEOUT_S}))
            undecided = TimeoutSeen.hit and not ok  # a comparison ran out of time
    except TimedOut:
        undecided = True
    except BaseException:
        ok = False
    out.write(json.dumps([rid, ok, undecided]).encode() + b"\\n")
    out.flush()
"""


def _kill(proc: subprocess.Popen, owner: int) -> None:
    if os.getpid() != owner:  # a forked child must not kill its parent's worker
        return
    try:
        proc.kill()
        proc.wait(timeout=1)
    except Exception:
        pass


class _MVWorker:
    """One math-verify process, used by one thread at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _MV_WORKER_SOURCE],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            bufsize=0, close_fds=True,
        )
        self.started = time.monotonic()
        mv_events["started"] += 1
        self.ready = False
        self.buf = b""
        self.next_id = 0
        self.selector = selectors.DefaultSelector()  # not select(): fds above 1024 are fine
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._finalizer = weakref.finalize(self, _kill, self.proc, os.getpid())

    def close(self) -> None:
        self._finalizer()
        self.selector.close()

    def _line(self, deadline: float) -> bytes | None:
        """The next line from the worker, or None if none came before `deadline`."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError("math-verify worker exited")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def wait_ready(self) -> float:
        """Wait for the worker's start-up (importing sympy, ~1 s); returns the seconds waited.
        Raises RuntimeError if it cannot start here."""
        if self.ready:
            return 0.0
        t0 = time.monotonic()
        try:
            line = self._line(self.started + _MV_START_LIMIT_S)
        except EOFError:
            raise RuntimeError("math-verify worker exited on start") from None
        if line is None:
            raise RuntimeError(f"math-verify worker not ready after {_MV_START_LIMIT_S:.0f} s")
        status = json.loads(line)
        if not status.get("ready"):
            raise RuntimeError(f"math-verify unavailable in worker: {status.get('error')}")
        self.ready = True
        return time.monotonic() - t0

    def ask(self, pred: str, reference: str, deadline: float) -> bool | None:
        """math-verify's verdict, None when one of its own timeouts cut it short; TimeoutError
        (worker killed) when none came by `deadline`."""
        self.next_id += 1
        rid = self.next_id
        request = memoryview(json.dumps([rid, pred, reference]).encode() + b"\n")
        while request:  # a few kB into an empty pipe: never blocks
            request = request[os.write(self.proc.stdin.fileno(), request) :]
        while True:
            line = self._line(deadline)
            if line is None:
                self.close()  # stuck, maybe in C code no signal reaches: only a kill ends it
                raise TimeoutError
            answer_id, ok, undecided = json.loads(line)
            if answer_id == rid:
                return None if undecided else bool(ok)


_workers = threading.local()  # one worker per thread: no queueing behind another thread's call
# Workers started, killed at the deadline, found dead (for benchmarks and logs).
mv_events: Counter[str] = Counter()
_MV_CACHE: OrderedDict[tuple[str, str], bool] = OrderedDict()
_MV_CACHE_SIZE = 1 << 16
_mv_lock = threading.Lock()
_worker_broken = False  # no worker could start here: math-verify runs in-process instead


def _forget_workers() -> None:  # in a forked child: the parent's workers are not ours
    global _workers
    _workers = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def _worker_verdict(pred: str, reference: str, deadline: float) -> bool | None:
    """This thread's worker's verdict by `deadline` (extended by the worker's start-up, if it
    had to start); None (undecided) when it had none by then. Raises RuntimeError if none can
    start."""
    worker = getattr(_workers, "worker", None)
    if worker is None or worker.proc.poll() is not None:
        worker = _workers.worker = _MVWorker()
    try:
        deadline += worker.wait_ready()  # a one-off per worker, not the input's fault
    except Exception:
        worker.close()
        _workers.worker = None
        raise
    try:
        verdict = worker.ask(pred, reference, deadline)
        if verdict is None and deadline - time.monotonic() > _MV_RETRY_LEFT_S:
            # its own limits cut it short but the deadline has room: a busy moment, try again
            verdict = worker.ask(pred, reference, deadline)
    except TimeoutError:
        mv_events["killed"] += 1
        log.warning("math-verify took over %.1f s; undecided (counted as a grading timeout): "
                    "%.60r vs %.60r", _MV_DEADLINE_S, pred, reference)
        _workers.worker = _MVWorker()  # start the next one now: it loads while we go on
        return None
    except (OSError, EOFError, ValueError):  # it died (out of memory, say): a fresh one next
        mv_events["died"] += 1
        worker.close()
        _workers.worker = None
        return None
    if verdict is None:
        mv_events["timed out"] += 1
        log.warning("math-verify's own time limit cut it short; undecided (counted as a "
                    "grading timeout): %.60r vs %.60r", pred, reference)
    return verdict


def _math_verify(pred: str, reference: str, deadline: float | None = None) -> bool | None:
    """Whether math-verify shows `pred` equal to `reference`, by `deadline` (monotonic time;
    default ``_MV_DEADLINE_S`` from now). Refused inputs and errors count as not equal; None
    when time ran out before a verdict (on a loaded machine even a plain comparison can), which
    is not cached, so grading again may decide it."""
    global _worker_broken
    if _mv_refuses(pred) or _mv_refuses(reference):
        return False
    key = (pred, reference)
    with _mv_lock:
        if key in _MV_CACHE:
            _MV_CACHE.move_to_end(key)
            return _MV_CACHE[key]
    if deadline is None:
        deadline = time.monotonic() + _MV_DEADLINE_S
    verdict = None
    if not _worker_broken:
        try:
            verdict = _worker_verdict(pred, reference, deadline)
        except Exception:
            log.warning("math-verify worker unavailable; running it in-process (bounded only "
                        "on the main thread)", exc_info=True)
            _worker_broken = True
        else:
            if verdict is None:
                return None
    if verdict is None:
        verdict = _math_verify_in_process(pred, reference)
    with _mv_lock:
        _MV_CACHE[key] = verdict
        if len(_MV_CACHE) > _MV_CACHE_SIZE:
            _MV_CACHE.popitem(last=False)
    return verdict


def _mv_timeout() -> int | None:
    """math-verify's timeouts use SIGALRM, which only the main thread may set; elsewhere the
    library raises, so off the main thread we disable them (the in-process fallback only)."""
    return 1 if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=1 << 16)
def _mv_parse(text: str, timeout: int | None) -> tuple:
    """math-verify's parse, cached: sympy parsing costs 10-100 ms, and the same reference (and
    many predictions) recur across samples and budgets."""
    from math_verify import parse  # imported lazily: it pulls in sympy (~1 s)

    try:
        # Wrapped in $...$ so the LaTeX extractor (not the plain-expression one) reads it:
        # bare "\dfrac12" or "(0,1]" parse to nothing or to the wrong object otherwise.
        return tuple(parse(f"${text}$", parsing_timeout=timeout))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # sympy raises nearly anything on odd input; math-verify's timeout
        return ()  # is a BaseException: unparsable either way


def _math_verify_in_process(pred: str, reference: str) -> bool:
    """Fallback where no worker process can be started (inputs already screened)."""
    try:
        from math_verify import verify

        t = _mv_timeout()
        gold, target = _mv_parse(reference, t), _mv_parse(pred, t)
        if not gold or not target:
            return False
        return bool(verify(list(gold), list(target), timeout_seconds=t))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # an error or a timeout in comparison means "not shown equal"
        return False

