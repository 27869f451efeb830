"""Running the `imagenet-sketch` command in a process of its own and stopping it with a real Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

INTERRUPTED = "imagenet-sketch: interrupted; nothing partial was kept, run the command again to finish"


def start_cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return start_python("-m", "imagenet_sketch_tools.cli.main", *argv, env=env)


def start_python(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Python in a new session, so the interrupt reaches its whole process group, as a terminal's Ctrl-C does."""
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )


def interrupt(process: subprocess.Popen) -> tuple[int, str]:
    """Send SIGINT to the command's process group; its exit code and stderr once it has stopped."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # never leave a stuck command behind
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return process.returncode, err


def assert_interrupted(code: int, err: str) -> None:
    """Exit 130 with the one line saying so, and no traceback from any process."""
    assert code == 130, err
    assert err.strip().splitlines()[-1] == INTERRUPTED, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def first_line(process: subprocess.Popen, timeout: float = 300) -> str:
    """The first line the process writes to stderr: waited for as an event; the timeout only bounds a process
    that never writes it (the process is then killed, so the test fails instead of hanging)."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stderr.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"no line on stderr within {timeout} s")
    return lines[0]


def stop_if_running(*processes: subprocess.Popen) -> None:
    """Kill what a failed test left running (each command runs in a session of its own)."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
