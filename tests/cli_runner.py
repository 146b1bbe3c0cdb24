"""Running `clip-arena` as a user does: a separate process, its exit code and its two streams."""

import subprocess
import sys

from conftest import with_project


def run_cli(*args: str, timeout: float = 300, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clip_arena.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=with_project())
