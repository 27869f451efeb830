"""`eval --engine ray` on Ray clusters started here (tiny: 2 CPUs, a 100 MB object store, no dashboard):
predictions equal the local engine's row for row, the CLI joins a two-node cluster through --address, a
killed actor does not lose rows, a finished model is skipped on a rerun. (Its options, and the error without Ray,
need no cluster: test_eval_engine_options.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.evaluation import RayEngine, RayOptions, evaluate_models
from imagenet_sketch_tools.evaluation.api import run_summary

HERE = Path(__file__).parent
MODELS = ["python:ray_models:resnet", "python:ray_models:vit"]
SMALL = {"num_cpus": 2, "object_store_memory": 100 * 1024 * 1024, "include_dashboard": False}
OUTPUTS = {"per_class.csv", "predictions.parquet", "run.json", "mistakes.png"}

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'imagenet-sketch[ray]'")
pytestmark = pytest.mark.slow  # each test starts or joins a Ray cluster


def on_ray(models, package, options=None, **settings):
    return evaluate_models(models, str(package), engine=RayEngine(options), **settings)


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """What Ray's worker processes inherit (they copy this process's environment when the cluster starts): no
    usage stats, the test models importable, and where the dying model leaves its marker."""
    markers = tmp_path_factory.mktemp("markers")
    saved = dict(os.environ)
    os.environ.update(
        RAY_USAGE_STATS_ENABLED="0",
        RAY_TEST_MARKERS=str(markers),
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    )
    yield markers
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def package(sample_package):
    return sample_package


@pytest.fixture(scope="module")
def one_node(environment):
    ray.init(**SMALL, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_run(package, tmp_path_factory):
    """The local engine's outputs for MODELS: what every Ray run must equal. One torch thread, as each actor
    here has (a module fixture runs before the autouse one that sets it; a CPU convolution's last bit can
    depend on the thread count)."""
    import torch

    output = tmp_path_factory.mktemp("local")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = evaluate_models(MODELS, str(package), output=output, workers=0, batch_size=4, progress=False)
    finally:
        torch.set_num_threads(threads)
    return {result.model: result for result in results}


def predictions(folder: Path):
    return pq.read_table(folder / "predictions.parquet")


def test_two_models_on_one_node_equal_the_local_engine(one_node, package, local_run, tmp_path):
    options = RayOptions(actors=2, cpus_per_actor=0.5)  # a pool of two, and a CPU left for the read tasks
    results = on_ray(MODELS, package, options, output=tmp_path, batch_size=4)
    assert [result.model for result in results] == MODELS
    assert [(result.group, result.decoded) for result in results] == [(0, 31), (0, 31)]  # one stage: one actor
    for result in results:
        local = local_run[result.model]
        assert {path.name for path in result.folder.iterdir()} == OUTPUTS
        assert predictions(result.folder).equals(predictions(local.folder))  # row for row, in dataset order
        assert result.scores == local.scores and result.computed == 31
        assert (result.folder / "per_class.csv").read_text() == (local.folder / "per_class.csv").read_text()
        assert (result.folder / "mistakes.png").read_bytes() == (local.folder / "mistakes.png").read_bytes()
    assert (tmp_path / "results.csv").read_text() == (local_run[MODELS[0]].folder.parent / "results.csv").read_text()

    # a rerun skips finished models (the local engine's run.json rule): nothing reaches the cluster
    again = on_ray(MODELS, package, options, output=tmp_path, batch_size=4)
    assert all(result.reused for result in again)


def test_a_killed_actor_loses_no_rows(one_node, environment, package, local_run, tmp_path):
    """The actor's process exits on its third batch; Ray Data restarts the actor (max_restarts=-1) and retries
    the batch (max_task_retries=-1), so the run completes in one go with every row, as the local engine's."""
    result = on_ray(["python:ray_models:dies_once"], package, output=tmp_path, batch_size=4)[0]
    assert (environment / "died").exists()  # it did die
    assert predictions(result.folder).equals(predictions(local_run[MODELS[0]].folder))


def test_a_limited_selection_equals_the_local_engine(one_node, package, tmp_path):
    """--limit: the rows are chosen by the local engine's rule, filtered before the actors, batched as there;
    the package given as an fsspec URL (file://, read through fsspec as s3:// or gs:// would be)."""
    ray_result = on_ray(MODELS[:1], package.as_uri(), output=tmp_path / "ray", batch_size=3, limit=7)[0]
    local = evaluate_models(MODELS[:1], str(package), output=tmp_path / "local", batch_size=3, limit=7, workers=0,
                            progress=False)[0]  # fmt: skip
    assert predictions(ray_result.folder).num_rows == 7 and ray_result.selection == local.selection
    assert predictions(ray_result.folder).equals(predictions(local.folder))


def test_a_group_split_over_actors_decodes_once_per_part(one_node, package, local_run, tmp_path):
    """--models-per-actor 1: each model of the group in its own pipeline, each decoding the images."""
    results = on_ray(MODELS, package, RayOptions(models_per_actor=1), output=tmp_path, batch_size=4)
    assert (
        run_summary(results) == "2 model(s) run in 1 input group(s): 62 image(s) decoded, 0 read from the input cache"
    )
    for result in results:
        assert predictions(result.folder).equals(predictions(local_run[result.model].folder))


def test_a_pool_that_leaves_no_cpu_for_reading_is_refused(one_node, package, tmp_path):
    with pytest.raises(UserError, match="leaves no CPU for reading the shards on a cluster of 2 CPUs; use --actors 1"):
        on_ray(MODELS, package, RayOptions(actors=2), output=tmp_path)


def test_a_source_that_is_not_a_package_says_to_export_it(one_node, capfd):
    assert cli.main(["eval", MODELS[0], "--sample", "--engine", "ray"]) == 1
    err = capfd.readouterr().err.strip()
    assert err.count("\n") == 0 and "imagenet-sketch export" in err


def test_the_cli_joins_a_two_node_cluster_through_address(environment, package, local_run, tmp_path, capfd):
    """The path a real cluster takes: a head and a worker node (separate raylets) joined by --address."""
    from ray.cluster_utils import Cluster

    ray.shutdown()  # the one-node cluster of the tests above: a process joins one cluster at a time
    cluster = Cluster(initialize_head=True, head_node_args={**SMALL, "num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=SMALL["object_store_memory"])
        cluster.wait_for_nodes()
        args = ["eval", *MODELS, "--source", str(package), "-o", str(tmp_path), "--batch-size", "4",
                "--engine", "ray", "--address", cluster.address, "--actors", "1"]  # fmt: skip
        assert cli.main(args) == 0
        assert not ray.is_initialized()  # it left the cluster it joined
    finally:
        cluster.shutdown()
    out = capfd.readouterr().out
    for model in MODELS:
        local = local_run[model]
        assert local.summary().split(";")[0] in out  # the same summary line as the local engine's
        folder = tmp_path / local.folder.name
        assert predictions(folder).equals(predictions(local.folder))
