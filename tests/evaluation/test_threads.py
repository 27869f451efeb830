"""The OpenMP spin setting for a CPU eval is the command's: set before torch loads, never over the user's own
choice; the Python API leaves the environment alone. Each case runs in a fresh interpreter, because libgomp reads
the setting once and this process has torch loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from imagenet_sketch_tools.evaluation.threads import SPIN_COUNT

REPORT = "import os, sys; print(os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules)"


def run_fresh(code: str, **env: str) -> str:
    clean = {key: value for key, value in os.environ.items() if key not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_command_sets_the_spin_before_anything_loads_torch():
    code = (
        "from imagenet_sketch_tools.cli import main as cli\n"
        "assert cli.main(['eval', 'timm:resnet18', '--source', 'nowhere', '--batch-size', '0']) == 1\n" + REPORT
    )
    assert run_fresh(code) == f"{SPIN_COUNT} False"


def test_the_api_leaves_the_environment_alone():
    code = (
        "from imagenet_sketch_tools.common.errors import UserError\n"
        "from imagenet_sketch_tools.evaluation import evaluate\n"
        "try:\n    evaluate('timm:resnet18', 'nowhere', batch_size=0)\n"
        "except UserError:\n    pass\n" + REPORT
    )
    assert run_fresh(code) == "None False"


@pytest.mark.parametrize("setting", [{"GOMP_SPINCOUNT": "5"}, {"OMP_WAIT_POLICY": "ACTIVE"}])
def test_the_users_own_setting_wins(setting):
    code = "from imagenet_sketch_tools.evaluation.threads import prefer_short_spin\nprint(prefer_short_spin())\n"
    assert run_fresh(code + REPORT, **setting) == f"False\n{setting.get('GOMP_SPINCOUNT')} False"


def test_nothing_is_set_once_torch_is_loaded():
    pytest.importorskip("torch", reason="torch is not installed: nothing to load")
    code = "import torch\nfrom imagenet_sketch_tools.evaluation.threads import prefer_short_spin\n"
    assert run_fresh(code + "print(prefer_short_spin())\n" + REPORT) == "False\nNone True"
