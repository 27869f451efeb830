"""A zip whose classes are interleaved costs about what a grouped one does: its bytes are read about once.

Counted, never timed: the bytes a loopback HTTP server sends (from the Range of each request) and the bytes this
process reads from disk (`rchar` of /proc/self/io).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imagenet_sketch_tools.dataset.archive import by_class, open_archive
from imagenet_sketch_tools.dataset.classes import class_table
from support.archives import class_members, stored_rows, write_zip

WNIDS = list(class_table()[0][:40])
PER_CLASS = 25


def both_layouts(folder: Path) -> tuple[Path, Path]:
    """The same members written class after class, and each class's n-th image in turn."""
    members = class_members(WNIDS, per_class=PER_CLASS)
    turns = sorted(members, key=lambda member: (int(member[0].rsplit("_", 1)[1].split(".")[0]), member[0]))
    return write_zip(folder / "grouped.zip", members), write_zip(folder / "interleaved.zip", turns)


def bytes_served(server, path: str) -> tuple[int, int]:
    """(bytes sent for GETs of `path`, how many GETs), from the Range each asked for."""
    size, sent, gets = len(server.files[path]), 0, 0
    for method, asked, range_ in server.requests:
        if method != "GET" or asked.split("?")[0] != path:
            continue
        gets += 1
        if not range_:
            sent += size
            continue
        first, last = range_.removeprefix("bytes=").split("-")
        sent += min(int(last), size - 1) - int(first) + 1 if first else min(int(last), size)
    return sent, gets


def test_an_interleaved_zip_is_fetched_about_once_over_http_and_gives_the_same_rows(tmp_path, http_server):
    grouped, interleaved = both = both_layouts(tmp_path)
    rows = {}
    for path in both:
        url = http_server.serve(f"/{path.name}", path)
        rows[path.name] = stored_rows(url, tmp_path / f"cache-{path.stem}")
    assert rows["interleaved.zip"] == rows["grouped.zip"] and len(rows["grouped.zip"]) == len(WNIDS) * PER_CLASS
    (grouped_sent, grouped_gets), (sent, gets) = (bytes_served(http_server, f"/{path.name}") for path in both)
    # A grouped zip costs one range request per class and its bytes once; an interleaved one no more.
    assert grouped_sent < 1.5 * grouped.stat().st_size and grouped_gets <= len(WNIDS) + 3, (grouped_sent, grouped_gets)
    assert sent < 1.5 * interleaved.stat().st_size and gets <= grouped_gets, (sent, gets, interleaved.stat().st_size)


def bytes_read_by_this_process() -> int:
    with open("/proc/self/io") as io:
        return int(next(line for line in io if line.startswith("rchar:")).split()[1])


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/self/io")
def test_an_interleaved_zip_is_read_from_disk_about_once_class_by_class(tmp_path):
    grouped, interleaved = both_layouts(tmp_path)
    read: dict[str, list[tuple[str, bytes]]] = {}
    for path in (grouped, interleaved):
        reader = open_archive(str(path))
        before = bytes_read_by_this_process()
        classes = by_class(reader.members())
        read[path.name] = [(member.path, content) for members in classes for member, content in reader.read(members)]
        from_disk = bytes_read_by_this_process() - before
        reader.close()
        assert from_disk < 1.5 * path.stat().st_size, (path.name, from_disk, path.stat().st_size)
    assert read["interleaved.zip"] == read["grouped.zip"]
