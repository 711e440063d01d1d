"""A test session that always ends; loaded by conftest.py (and by `-p exit_guard`).

pytest-timeout bounds each test (pyproject). What it cannot bound is the interpreter's exit
after the last test: a Ray session left up by a replica test, or an engine's non-daemon thread,
once held a finished run in a futex wait for minutes (in CI: until the 90-minute limit). So the
session shuts Ray down itself with a deadline, and a watchdog ends the process with the
session's own exit status if exiting still takes longer, after printing every thread's stack so
the holder can be found and fixed.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading

EXIT_GRACE_S = float(os.environ.get("EVALHARNESS_TEST_EXIT_GRACE", "60"))


def _shutdown_ray(deadline_s: float = 30.0) -> None:
    if "ray" not in sys.modules:
        return
    import ray

    if not ray.is_initialized():
        return
    t = threading.Thread(target=ray.shutdown, daemon=True, name="ray-shutdown")
    t.start()
    t.join(deadline_s)
    if t.is_alive():
        print(f"\nexit guard: ray.shutdown() still running after {deadline_s:.0f} s; going on",
              file=sys.stderr)


def pytest_sessionfinish(session, exitstatus):
    session.config._eh_exitstatus = int(exitstatus)
    _shutdown_ray()


def pytest_unconfigure(config):
    status = int(getattr(config, "_eh_exitstatus", 0))

    def watchdog() -> None:
        print(f"\nexit guard: the test process has not exited {EXIT_GRACE_S:.0f} s after the "
              "session ended; live threads:", file=sys.stderr, flush=True)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(status)

    timer = threading.Timer(EXIT_GRACE_S, watchdog)
    timer.daemon = True  # runs while exit joins non-daemon threads and runs atexit handlers
    timer.start()
    # and a C-level backstop in case something holds the GIL the timer needs
    faulthandler.dump_traceback_later(EXIT_GRACE_S * 2, exit=True)
