"""Run code in a fresh interpreter: for what a process sets up once (imports, thread pools)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable


def fresh_stdout(code: str) -> str:
    """The standard output of ``python -c code`` run from the repository root."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def in_forked_child(check: Callable[[], bool], timeout_s: int = 60) -> int:
    """The exit code of a child forked now that runs ``check``: 0 when it returned true, 1 when
    it returned false or raised, and -SIGALRM when it hung past ``timeout_s`` (never waits longer)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(timeout_s)
            code = 0 if check() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
