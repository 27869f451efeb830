"""One writer per output folder (issue 20 §1): two `imagenet-sketch eval` processes into one `--output` never
write a model's folder, or results.csv, at once. The second waits with one line naming the first, then reads the
finished model back. Real processes, synchronised by files they write and lines they print, never by time."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from eval_data import KNOWN
from imagenet_sketch_tools.evaluation import writers

GATED = "python:known_answer_model:gated_model"  # held in its first forward pass until the test writes `go`
pytestmark = pytest.mark.slow  # each test runs whole commands


@pytest.fixture
def commands(tmp_path):
    """Start `imagenet-sketch eval` processes (stdout and stderr to files); at the end, the gate is opened and
    any process still running is killed."""
    markers = tmp_path / "markers"
    markers.mkdir()
    started: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
        env = dict(os.environ, PYTHONPATH=path, EVAL_TEST_MARKERS=str(markers))
        command = [sys.executable, "-m", "imagenet_sketch_tools.cli.main", "eval", *args, "--workers", "0"]
        with open(tmp_path / f"{name}.out", "w") as out, open(tmp_path / f"{name}.err", "w") as err:
            started.append(subprocess.Popen(command, env=env, stdout=out, stderr=err))
        return started[-1]

    yield start
    (markers / "go").write_text("")
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def wait_until(happened: Callable[[], bool], process: subprocess.Popen) -> None:
    """Until `happened()` or `process` has exited: polling for an event, not timing anything."""
    while not happened() and process.poll() is None:
        time.sleep(0.05)


def results_models(output: Path) -> list[str]:
    with open(output / "results.csv", newline="") as file:
        return [row["model"] for row in csv.DictReader(file)]


def test_a_second_eval_waits_for_the_first_and_reads_its_model_back(commands, coded_zip, tmp_path):
    output, markers = tmp_path / "out", tmp_path / "markers"
    args = (GATED, "--source", str(coded_zip), "-o", str(output))
    first = commands("first", *args)
    wait_until(lambda: any(markers.glob("started-*")), first)  # it holds the model's folder, in its forward pass
    assert [path.name for path in markers.glob("started-*")] == [f"started-{first.pid}"]

    second = commands("second", *args)
    waiting = f"{GATED}: {output / 'python_known_answer_model_gated_model'} is being written by pid {first.pid} ("
    second_err = tmp_path / "second.err"
    wait_until(lambda: waiting in second_err.read_text() or len(list(markers.glob("started-*"))) > 1, second)
    said = second_err.read_text()
    (markers / "go").write_text("")  # the first finishes
    assert first.wait(timeout=600) == 0, (tmp_path / "first.err").read_text()[-2000:]
    assert second.wait(timeout=600) == 0, second_err.read_text()[-2000:]

    assert waiting in said and said.rstrip().endswith("; waiting for it")
    assert [path.name for path in markers.glob("started-*")] == [f"started-{first.pid}"]  # the second ran nothing
    assert "images/s" in (tmp_path / "first.out").read_text()
    second_out = (tmp_path / "second.out").read_text()
    assert "top-1 31.250%" in second_out and "already evaluated, read back" in second_out
    assert results_models(output) == [GATED]
    assert pq.read_table(output / "python_known_answer_model_gated_model" / "predictions.parquet").num_rows == 16
    assert not list(output.rglob("*.partial")) and not list(output.rglob("*.lock"))  # nothing added to the output


def test_results_csv_is_rewritten_by_one_eval_at_a_time(commands, coded_zip, tmp_path):
    """While this test holds the output folder's results lock, a finished eval waits to add its row."""
    output = tmp_path / "out"
    waiting = f"{output / 'results.csv'} is being written by pid {os.getpid()} ("
    err = tmp_path / "eval.err"
    with writers.results_writer(output):
        process = commands("eval", KNOWN, "--source", str(coded_zip), "-o", str(output))
        wait_until(lambda: waiting in err.read_text(), process)
        assert process.poll() is None and waiting in err.read_text(), err.read_text()[-2000:]
        assert (output / "python_known_answer_model_model" / "run.json").exists()  # its model is done
        assert not (output / "results.csv").exists()
    assert process.wait(timeout=600) == 0, err.read_text()[-2000:]
    assert results_models(output) == [KNOWN]
