"""The old loading script's method, for comparison: extract the zip to disk, then yield one path per image.

    python benchmarks/extract_then_paths.py ARCHIVE CACHE_DIR

`dl_manager.extract` unpacks the whole zip into the datasets cache, then a GeneratorBasedBuilder yields
{"image": path, "label": ..., "wnid": ...} per file, as the script ImageNet-Sketch had on the hub did.
Given a path, datasets' `Image` feature stores the path only (the Arrow file then depends on the extracted
copy staying on disk), so this is a lower bound on the cost of that method with the images embedded.
Labels come from the same fixed class table as ours, so the rows match the builder's.
"""

from __future__ import annotations

import json
import os
import sys

import datasets

from imagenet_sketch_tools.dataset.classes import class_names, label_of_wnid


class ExtractThenPaths(datasets.GeneratorBasedBuilder):
    VERSION = datasets.Version("1.0.0")

    def __init__(self, *args, archive: str, **kwargs):
        self.archive = archive
        super().__init__(*args, **kwargs)

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            features=datasets.Features(
                {
                    "image": datasets.Image(),
                    "label": datasets.ClassLabel(names=class_names()),
                    "wnid": datasets.Value("string"),
                }
            )
        )

    def _split_generators(self, dl_manager):
        folder = dl_manager.extract(self.archive)
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"folder": folder})]

    def _generate_examples(self, folder):
        labels = label_of_wnid()
        for directory, subdirectories, files in os.walk(folder):
            subdirectories.sort()
            for file_name in sorted(files):
                if file_name.lower().endswith((".jpeg", ".jpg", ".png")):
                    wnid = os.path.basename(directory)
                    path = os.path.join(directory, file_name)
                    yield path, {"image": path, "label": labels[wnid], "wnid": wnid}


def main(archive: str, cache_dir: str) -> int:
    builder = ExtractThenPaths(archive=os.path.abspath(archive), cache_dir=cache_dir)
    builder.download_and_prepare()
    dataset = builder.as_dataset("train")
    stored = dataset.data.column("image")[0].as_py()
    result = {"rows": dataset.num_rows, "columns": dataset.column_names, "embeds_bytes": stored["bytes"] is not None}
    print("RESULT", json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
