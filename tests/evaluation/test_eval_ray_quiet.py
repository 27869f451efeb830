"""`eval --engine ray` starting its own cluster prints our lines only: Ray's token-authentication notice, its core
worker's `max_restarts` error line and Ray Data's "Progress bars disabled" are silenced (issue 17 §4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
NOISE = ("Token authentication", "core_worker.cc", "max_restarts", "Progress bars disabled")

pytest.importorskip("ray", reason="Ray is not installed: pip install 'imagenet-sketch[ray]'")
pytestmark = pytest.mark.slow  # starts a Ray cluster


def test_a_ray_run_prints_no_noise_of_rays(sample_package, tmp_path):
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])  # ray_models, for the actors
    command = [sys.executable, "-m", "imagenet_sketch_tools.cli", "eval", "python:ray_models:resnet"]
    command += ["--source", str(sample_package), "-o", str(tmp_path / "out"), "--engine", "ray"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("python:ray_models:resnet: top-1 ")
    assert "31/31" in done.stderr  # our progress bar is still there
    assert [word for word in NOISE if word in done.stderr] == [], done.stderr
