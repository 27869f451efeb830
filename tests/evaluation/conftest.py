"""Fixtures of the eval tests: one torch thread, an archive of coded images whose right answers are known, and
the sample exported as a package. Without the eval extra (torch, timm) every test module here but those that
need neither is skipped, with the reason, instead of failing to import."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import imagenet_sketch
from eval_data import coded_zip_at
from imagenet_sketch_tools.dataset.sample import sample_archive
from imagenet_sketch_tools.hub import export

RUN_WITHOUT_EXTRA = {"test_threads.py", "test_eval_identity.py"}


def installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # sys.modules[name] is None: what a missing package looks like to an import
        return False


MISSING = [name for name in ("torch", "timm") if not installed(name)]


class WithoutTheEvalExtra(pytest.File):
    """A test module that needs the eval extra, reported as skipped instead of imported."""

    def collect(self):
        pytest.skip(f"{' and '.join(MISSING)} not installed: pip install 'imagenet-sketch[eval]' to run it")


def pytest_pycollect_makemodule(module_path: Path, parent):
    if MISSING and module_path.name not in RUN_WITHOUT_EXTRA:
        return WithoutTheEvalExtra.from_parent(parent, path=module_path)
    return None


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The machine is shared: tests use one thread (results do not depend on it)."""
    if MISSING:
        yield
        return
    import torch  # the eval extra, installed (MISSING is empty)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def coded_zip(tmp_path) -> Path:
    return coded_zip_at(tmp_path / "ImageNet-Sketch.zip")


@pytest.fixture(scope="module")
def sample_package(tmp_path_factory) -> Path:
    """The 31-image sample exported as a hub package in several shards."""
    folder = tmp_path_factory.mktemp("package")
    built = imagenet_sketch.load(sample_archive(), cache_dir=str(folder / "cache"))
    export.export(built, folder / "pkg", max_shard_size="20KB", progress=False)
    assert len(list((folder / "pkg" / "data").glob("*.parquet"))) > 1
    return folder / "pkg"
