"""Fixtures of the eval tests: one torch thread, and an archive of coded images whose right answers are known."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval_data import coded_zip_at


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The machine is shared: tests use one thread (results do not depend on it)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def coded_zip(tmp_path) -> Path:
    return coded_zip_at(tmp_path / "ImageNet-Sketch.zip")
