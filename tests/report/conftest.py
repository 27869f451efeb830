"""The known eval folder (report_data.py), built once for the session: the eval subprocess takes a few seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_data import EVALUATION_TESTS, KNOWN, coded_zip_at, write_complement


@pytest.fixture(scope="session")
def known_folder(tmp_path_factory) -> tuple[Path, Path]:
    """(eval folder, the coded archive it was evaluated on)."""
    pytest.importorskip("torch", reason="the known folder is made by a real eval: pip install 'imagenet-sketch[eval]'")
    root = tmp_path_factory.mktemp("known")
    archive = coded_zip_at(root / "ImageNet-Sketch.zip")
    out = root / "eval"
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(EVALUATION_TESTS), *sys.path]),
        "HF_HOME": str(root / "hf"),
        "HF_DATASETS_CACHE": str(root / "datasets"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "HF_HUB_OFFLINE": "1",
    }
    command = [sys.executable, "-m", "imagenet_sketch_tools.cli", "eval", KNOWN, "--source", str(archive)]
    subprocess.run([*command, "--output", str(out), "--workers", "0"], env=environment, check=True)
    write_complement(out)
    return out, archive
