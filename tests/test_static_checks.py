"""The static checks are part of the test command: ruff's lint and format over the repository, and basedpyright's
types over tools/ and the builder (what [tool.basedpyright] includes), each with zero findings.

The tools are the ones installed beside the interpreter running the tests (the `test` extra brings them), and
basedpyright reads the packages of that same interpreter, so it sees what a user's IDE in this environment sees.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "imagenet-sketch"


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).parent / name
    if not executable.exists():
        pytest.fail(f"{name} is not installed beside {sys.executable}: pip install -e '.[test]'")
    return subprocess.run([str(executable), *args], cwd=ROOT, capture_output=True, text=True)


def missing_test_requirements() -> list[str]:
    """The `test` extra's requirements not installed here (every extra is in it: the type check reads them all)."""
    try:
        requirements = [Requirement(line) for line in importlib.metadata.requires(DISTRIBUTION) or []]
    except importlib.metadata.PackageNotFoundError:
        return [DISTRIBUTION]
    missing = []
    for requirement in requirements:
        if requirement.marker is None or not requirement.marker.evaluate({"extra": "test"}):
            continue
        try:
            importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement.name)
    return missing


def test_ruff_finds_nothing():
    result = run_tool("ruff", "check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_would_change_nothing():
    result = run_tool("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_basedpyright_finds_nothing():
    missing = missing_test_requirements()
    if missing:
        pytest.skip(f"the type check reads every extra; not installed here: {', '.join(missing)} (CI installs them)")
    result = run_tool("basedpyright", "--pythonpath", sys.executable, "--outputjson")
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"basedpyright did not report (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    findings = [
        f"{Path(d['file']).relative_to(ROOT)}:{d['range']['start']['line'] + 1}: {d['severity']}: {d['message']}"
        + (f" ({d['rule']})" if "rule" in d else "")
        for d in report["generalDiagnostics"]
    ]
    assert report["summary"]["filesAnalyzed"] > 0, result.stdout
    assert not findings, f"{len(findings)} finding(s):\n" + "\n".join(findings)
