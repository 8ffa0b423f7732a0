"""The tests' own command runner: a command timing out must not leave the test waiting on
processes it started (they hold its output pipes)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import run_command


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False


def test_timeout_kills_what_the_command_started(tmp_path):
    # the shell starts a child that keeps the pipes open for 300 s and prints its pid
    script = "sleep 300 & echo $!; wait"
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        run_command(["sh", "-c", script], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"},
                    timeout=1)
    pid = int(caught.value.output.split()[0])
    # a killed process closes its pipes before the kernel marks it a zombie, so the
    # output can end a moment before the state changes: wait for it with a deadline
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(pid)


def test_output_and_exit_status(tmp_path):
    done = run_command([sys.executable, "-c", "import sys; print('out'); "
                        "print('err', file=sys.stderr); sys.exit(3)"],
                       cwd=tmp_path, env={}, timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    with pytest.raises(subprocess.CalledProcessError):
        run_command([sys.executable, "-c", "raise SystemExit(1)"], cwd=tmp_path, env={},
                    timeout=30, check=True)
