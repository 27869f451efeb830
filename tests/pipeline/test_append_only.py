"""The pipeline's append-only files (manifest.jsonl, review's analysis cache) after a crash cut their last line
short: the next run appends cleanly and every run after it reads the whole file."""

from __future__ import annotations

from pathlib import Path

from imagenet_sketch_tools.dataset.sample import black_jpeg, sketch_jpeg
from imagenet_sketch_tools.pipeline.manifest import Manifest
from imagenet_sketch_tools.pipeline.review import ANALYSIS_CACHE, analyse


def crash_mid_line(path: Path) -> None:
    """Cut the file in the middle of its last line, as a crash while writing it would."""
    content = path.read_bytes()
    last_start = content.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(content[: last_start + (len(content) - last_start) // 2])


def test_manifest_resumes_after_a_crash_mid_line(tmp_path):
    manifest = Manifest(tmp_path)
    manifest.append("image", path="raw/n01440764/000.jpg", wnid="n01440764")
    manifest.append("decision", path="raw/n01440764/000.jpg", decision="reject", reason="irrelevant")
    manifest.append("image", path="raw/n01440764/001.jpg", wnid="n01440764")
    crash_mid_line(manifest.path)
    resumed = Manifest(tmp_path)
    assert [row["event"] for row in resumed.rows()] == ["image", "decision"]
    resumed.append("image", path="raw/n01440764/002.jpg", wnid="n01440764")
    later = Manifest(tmp_path)
    assert [row.get("path") for row in later.rows("image")] == ["raw/n01440764/000.jpg", "raw/n01440764/002.jpg"]
    assert later.rejected() == {"raw/n01440764/000.jpg"}


def test_reviews_analysis_cache_resumes_after_a_crash_mid_line(tmp_path):
    for n, content in enumerate([sketch_jpeg(1), black_jpeg(), sketch_jpeg(2)]):
        (tmp_path / f"{n}.jpg").write_bytes(content)
    paths = ["0.jpg", "1.jpg"]
    first = analyse(tmp_path, paths)
    crash_mid_line(tmp_path / ANALYSIS_CACHE)
    resumed = analyse(tmp_path, [*paths, "2.jpg"])  # analyses 1.jpg again, and 2.jpg for the first time
    later = analyse(tmp_path, [*paths, "2.jpg"])
    assert later == resumed and {path: resumed[path] for path in paths} == first
    assert resumed["1.jpg"][0] == ["black"]
    assert len((tmp_path / ANALYSIS_CACHE).read_text().splitlines()) == 3
