"""Run code in a fresh interpreter: for what a process sets up once (imports, thread pools)."""

from __future__ import annotations

import subprocess
import sys


def fresh_stdout(code: str) -> str:
    """The standard output of ``python -c code`` run from the repository root."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
