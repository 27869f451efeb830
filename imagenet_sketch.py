"""ImageNet-Sketch: 50,889 sketches of the 1000 ImageNet-1k classes (Wang et al., NeurIPS 2019).

Labels are ImageNet-1k indices from a fixed class table, never from the folders an archive happens to
hold, so a model's prediction compares to `label` directly. Images are the archive's bytes, untouched.
"""

from __future__ import annotations

import os
from typing import Literal, TypeVar, overload

import datasets
from datasets.builder import Key

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset import archive, cache, release, rows, sources
from imagenet_sketch_tools.dataset.classes import class_names
from imagenet_sketch_tools.fetch import locate

# datasets patches a builder's module for streaming (open, os.path, pandas, scipy.io...) at every builder
# __init__, importing scipy.io among others (0.3-1 s). This builder reads remote archives through fsspec itself
# and uses none of those patches: marking the module as patched skips that work.
_patched_for_streaming = True
_Split = TypeVar("_Split", datasets.Dataset, datasets.IterableDataset)


class ImagenetSketch(cache.BuildsOutOfSight, datasets.ArrowBasedBuilder):
    """ImageNet-Sketch, read from a local zip, an extracted folder, or a zip URL (http(s)://, hf://).

    Config `default` is the release (or the user's archive given as `source`); config `sample` is the embedded
    sample archive, a copy of its own so that it never stands in for the release.
    """

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIGS = [
        datasets.BuilderConfig(name="default", version=VERSION, description="the release, or the archive given"),
        datasets.BuilderConfig(
            name=sources.SAMPLE_CONFIG, version=VERSION, description="the embedded sample (six classes)"
        ),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def __init__(self, *args, source: str | None = None, **kwargs):
        # The source is a builder argument, not a config field: a config field would change the config id
        # from `default`, and load_dataset("imagenet_sketch") could no longer find the prepared copy.
        config = kwargs.get("config_name") or self.DEFAULT_CONFIG_NAME
        self.source = sources.source_of_config(config, source)
        kwargs.setdefault("hash", sources.fingerprint(self.source, config))
        super().__init__(*args, **kwargs)

    def download_and_prepare(self, *args, **kwargs) -> None:
        if self.source == sources.DEFAULT_SOURCE and not os.path.exists(self._cache_dir):
            self._key_by(locate.resolve(self.source, streaming=False))
        super().download_and_prepare(*args, **kwargs)
        if self.config.name == sources.SAMPLE_CONFIG:
            cache.date_as_sample(self._output_dir)

    def _key_by(self, location: str) -> None:
        """Read the release from `location` and key its copy by it: a verified download and Kaggle's extracted
        folder (not checkable against the zip's sha256) are different copies, never mistaken for each other."""
        self.source = location
        self.hash = sources.fingerprint(location, self.config.name)
        self._cache_dir = self._build_cache_dir()

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=release.DESCRIPTION,
            features=datasets.Features(
                {
                    "image": datasets.Image(),
                    "label": datasets.ClassLabel(names=class_names()),
                    "wnid": datasets.Value("string"),
                }
            ),
            supervised_keys=datasets.info.SupervisedKeysData(input="image", output="label"),
            homepage=release.HOMEPAGE,
            citation=release.CITATION,
            license=release.LICENSE,
        )

    def _split_generators(self, dl_manager):
        location = locate.resolve(self.source, streaming=dl_manager.is_streaming)
        reader = archive.open_archive(location)
        try:
            members = reader.members()
        finally:
            reader.close()
        if not members:
            raise UserError(f"'{location}' holds no images; expected sketch/<wnid>/sketch_<n>.JPEG")
        return [
            datasets.SplitGenerator(
                name=str(datasets.Split.TRAIN),
                # One shard per class: num_proc splits them into contiguous wnid ranges, keeping the order.
                gen_kwargs={
                    "location": location,
                    "classes": [archive.ClassShard(group) for group in archive.by_class(members)],
                },
            )
        ]

    # datasets calls these with the split's gen_kwargs as keywords; its base methods declare only **kwargs.
    def _generate_shards(self, location, classes):  # pyright: ignore[reportIncompatibleMethodOverride]
        yield from (shard.wnid for shard in classes)

    def _generate_tables(self, location, classes):  # pyright: ignore[reportIncompatibleMethodOverride]
        reader = archive.open_archive(location)
        try:
            for index, shard in enumerate(classes):
                yield Key(index, 0), rows.class_table(reader, shard.members)
        finally:
            reader.close()


# load() lives beside the builder it constructs so that `imagenet_sketch.load` is the one import users need.
@overload
def load(
    source: str | None = None,
    *,
    name: str = "default",
    split: str = "train",
    streaming: Literal[False] = False,
    cache_dir: str | None = None,
    num_proc: int | None = None,
) -> datasets.Dataset: ...
@overload
def load(
    source: str | None = None,
    *,
    name: str = "default",
    split: str = "train",
    streaming: Literal[True],
    cache_dir: str | None = None,
    num_proc: int | None = None,
) -> datasets.IterableDataset: ...
def load(
    source: str | None = None,
    *,
    name: str = "default",
    split: str = "train",
    streaming: bool = False,
    cache_dir: str | None = None,
    num_proc: int | None = None,
) -> datasets.Dataset | datasets.IterableDataset:
    """What `load_dataset("imagenet_sketch", name)` gives. `name` is the config: `default` (the release, or
    `source`) or `sample` (the embedded sample). With no source, the prepared copy of that config that datasets'
    own cache lookup picks, if any; else the release from its mirrors."""
    cache.remove_stale_builds(cache_dir, name)
    found = cache.prepared_copy(cache_dir, name) if source is None else None
    copy = {"version": datasets.Version(found[0]), "hash": found[1]} if found else {}
    builder = ImagenetSketch(source=source, config_name=name, cache_dir=cache_dir, **copy)
    if streaming and not found:
        return _one_split(builder.as_streaming_dataset(split), datasets.IterableDataset)
    builder.download_and_prepare(num_proc=num_proc)
    dataset = _one_split(builder.as_dataset(split), datasets.Dataset)
    return dataset.to_iterable_dataset() if streaming else dataset


def _one_split(dataset, kind: type[_Split]) -> _Split:
    """What as_dataset/as_streaming_dataset return for one named split (their annotations also allow a dict)."""
    assert isinstance(dataset, kind), type(dataset)
    return dataset
