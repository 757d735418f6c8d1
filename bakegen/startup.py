"""The first thing the bakegen command does: Ctrl-C or SIGTERM while it is still starting (Python
importing bakegen, parsing the command line) ends it with one line and 128+signal, never a traceback.

Installed only when this process is the bakegen command (console script or `python -m bakegen`),
not when a program (a test run) imports bakegen: there the signals stay that program's own.
`main` then replaces these handlers with ones that unwind, so every cleanup runs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType


def interrupted_early(signum: int, frame: FrameType | None) -> None:
    print("bakegen: interrupted", file=sys.stderr)
    raise SystemExit(128 + signum)


def started_as_command() -> bool:
    program = sys.argv[0] if sys.argv else ""
    return os.path.basename(program) == "bakegen" or program.endswith(os.path.join("bakegen", "__main__.py"))


def install() -> None:
    if started_as_command() and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, interrupted_early)
        signal.signal(signal.SIGTERM, interrupted_early)
