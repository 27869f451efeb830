"""Running the `imagenet-sketch` command in a process of its own and stopping it with a real Ctrl-C (SIGINT) or
a real SIGTERM (what `timeout`, CI cancellation and `docker stop` send: to the command's process only)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

INTERRUPTED = "imagenet-sketch: interrupted; nothing partial was kept, run the command again to finish"
TERMINATED = "imagenet-sketch: terminated; nothing partial was kept, run the command again to finish"


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


def assert_interrupted(code: int, err: str, line: str = INTERRUPTED) -> None:
    """Exit 130 with the one line saying so, and no traceback from any process."""
    assert code == 130, err
    assert err.strip().splitlines()[-1] == line, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def terminate(process: subprocess.Popen) -> tuple[int, str, list[int]]:
    """Send SIGTERM to the command's process only; its exit code and stderr once it has stopped, and those of
    its worker processes (at the time of the signal) still running then. Whatever is left of its process group
    is killed before returning, so a failing test leaves no process behind."""
    workers = worker_pids(process.pid)
    try:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=120)  # not communicate(): orphaned workers would hold its pipes open
    finally:
        survivors = [pid for pid in workers if is_running(pid)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate()
    return process.returncode, err, survivors


def assert_terminated(code: int, err: str, survivors: list[int]) -> None:
    """Exit 143 with the one line saying so, no traceback, and no worker left running (an orphan)."""
    assert survivors == [], f"workers still running after the command ended: {survivors}"
    assert code == 143, err
    assert err.strip().splitlines()[-1] == TERMINATED, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def worker_pids(pid: int) -> list[int]:
    """The worker processes under `pid` (children, recursively), as /proc lists them; not multiprocessing's
    resource tracker, a helper that leaves by itself once its parent is gone."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in map(int, (task / "children").read_text().split()):
            if "resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace"):
                found.append(child)
            found.extend(worker_pids(child))
    return found


def is_running(pid: int) -> bool:
    """True if `pid` is a live process (a zombie waiting to be reaped has stopped running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def first_line(process: subprocess.Popen, timeout: float = 300) -> str:
    """The first line the process writes to stderr: waited for as an event; the timeout only bounds a process
    that never writes it (the process is then killed, so the test fails instead of hanging)."""
    lines: list[str] = []
    stderr = process.stderr
    assert stderr is not None, "start the process with stderr=PIPE"
    reader = threading.Thread(target=lambda: lines.append(stderr.readline()), daemon=True)
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
