"""The fixed ImageNet-1k class table: label index = position of the wnid among the 1000 sorted wnids."""

import functools
from importlib import resources

CLASS_TABLE = "imagenet1k_classes.tsv"


@functools.cache
def class_table() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The 1000 (wnids, names) in label order, read from the packaged TSV."""
    text = resources.files("imagenet_sketch_tools.dataset").joinpath(CLASS_TABLE).read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines()[1:] if line]
    return tuple(row[0] for row in rows), tuple(row[1] for row in rows)


@functools.cache
def label_of_wnid() -> dict[str, int]:
    wnids, _ = class_table()
    return {wnid: index for index, wnid in enumerate(wnids)}


def class_names() -> list[str]:
    return list(class_table()[1])


def find_wnids(query: str) -> list[str]:
    """Wnids matching `query`: a wnid itself, or a whole word of the class name (case-insensitive)."""
    wnids, names = class_table()
    if query in label_of_wnid():
        return [query]
    word = query.lower()
    return [
        wnid
        for wnid, name in zip(wnids, names)
        if word == name.lower() or word in name.lower().replace(",", " ").split() or word in name.lower().split(", ")
    ]
