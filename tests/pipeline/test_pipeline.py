"""The pipeline end to end, offline: collect (from a loopback image host) -> review (through the review server's
HTTP API, as the page drives it) -> augment -> package -> build, and the built dataset holds exactly what the
decisions and the authors' fill rule say. A second test starts from a hand-made collect output, to pin the exact
fill order and pixels."""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.request
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
from PIL import Image

import imagenet_sketch
from imagenet_sketch_tools.cli.main import main
from imagenet_sketch_tools.dataset.classes import label_of_wnid
from imagenet_sketch_tools.dataset.sample import sketch_jpeg
from imagenet_sketch_tools.pipeline.manifest import Manifest
from imagenet_sketch_tools.pipeline.review import Review, make_server

TARGET = 6
# wnid -> (number of downloaded images, indices the review rejects)
CLASSES = {"n01440764": (5, {1, 3}), "n02012849": (3, {0}), "n03126707": (1, set())}


def collected_folder(root: Path) -> tuple[Path, dict[str, bytes]]:
    """What collect then review leave: raw/<wnid>/<file>, `image` rows, `decision` rows (latest wins)."""
    manifest, files = Manifest(root), {}
    for class_index, (wnid, (count, rejects)) in enumerate(CLASSES.items()):
        for n in range(count):
            path = f"raw/{wnid}/{n:03d}.jpg"
            content = sketch_jpeg(
                50 * class_index + n, "RGB" if n % 2 else "L", (120 + 8 * class_index, 90), strokes=30
            )
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content)
            files[path] = content
            manifest.append("image", wnid=wnid, query=f"sketch of {wnid}", url=f"https://example.org/{n}", path=path)
            manifest.append("decision", path=path, decision="reject", reason="first look")
            if n not in rejects:  # a second look keeps it: the latest decision wins
                manifest.append("decision", path=path, decision="keep", reason="second look")
    return root, files


def augment_package_build(in_dir: Path, work: Path, target: int) -> tuple[datasets.Dataset, Path]:
    """Run the last stages through the command line; the built train split (raw image bytes) and augment's folder."""
    out_dir, archive = work / "augmented", work / "ImageNet-Sketch.zip"
    assert main(["augment", str(in_dir), str(out_dir), "--target", str(target)]) == 0
    assert main(["package", str(out_dir), "--output", str(archive)]) == 0
    assert main(["build", "--source", str(archive), "--cache-dir", str(work / "cache")]) == 0
    dataset = imagenet_sketch.load(str(archive), cache_dir=str(work / "cache"))
    return dataset.cast_column("image", datasets.Image(decode=False)), out_dir


# What each transform must do to the pixels, said independently of augment's own code.
NUMPY_TRANSFORMS = {"hflip": lambda a: a[:, ::-1], "vflip": lambda a: a[::-1, :], "rot180": lambda a: np.rot90(a, 2)}


def gray(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("L"), dtype=np.float64)


def test_collected_reviewed_images_become_a_dataset_the_builder_loads(tmp_path):
    in_dir, files = collected_folder(tmp_path / "collected")
    rejected = Manifest(in_dir).rejected()
    assert len(rejected) == 3
    dataset, out_dir = augment_package_build(in_dir, tmp_path, TARGET)

    assert Counter(dataset["wnid"]) == {wnid: TARGET for wnid in CLASSES}
    assert all(row["label"] == label_of_wnid()[row["wnid"]] for row in dataset)

    made = {row["output"]: row for row in Manifest(out_dir).rows("augment")}
    kept = {path for path in files if path not in rejected}
    assert {row["source"] for row in made.values()} == kept
    for row in dataset:
        content, record = row["image"]["bytes"], made[row["image"]["path"]]
        source = files[record["source"]]
        if record["transform"] in ("original", "copy"):
            assert content == source  # originals (and plain copies) are the downloaded bytes, untouched
        else:
            expected = NUMPY_TRANSFORMS[record["transform"]](gray(source))
            assert gray(content).shape == expected.shape
            assert np.abs(gray(content) - expected).mean() < 2  # the transform's pixels, up to JPEG encoding
        for path in rejected:  # no rejected image, nor any flip of it, made it in
            pixels = gray(files[path])
            assert all(
                pixels.shape != gray(content).shape or np.abs(gray(content) - variant).mean() > 10
                for variant in (pixels, pixels[:, ::-1], pixels[::-1], pixels[::-1, ::-1])
            )
    tench = [made[f"n01440764/sketch_{n}.JPEG"] for n in range(TARGET)]
    assert [(row["source"][-7:-4], row["transform"]) for row in tench] == [
        ("000", "original"),
        ("002", "original"),
        ("004", "original"),
        ("000", "hflip"),
        ("002", "hflip"),
        ("004", "hflip"),
    ]


def review_over_http(out_dir: Path, rejects: set[str]) -> None:
    """A curator's session through the review server: reject `rejects`, then keep the rest of each class."""
    server = make_server(Review(out_dir), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    with urllib.request.urlopen(base + "/") as page:  # as the page's script does: its token goes with each change
        token = re.search(r'name="review-token" content="([^"]+)"', page.read().decode())[1]

    def post(path: str, body: dict) -> dict:
        headers = {"Content-Type": "application/json", "X-Review-Token": token}
        request = urllib.request.Request(base + path, json.dumps(body).encode(), headers)
        with urllib.request.urlopen(request) as answer:
            return json.load(answer)

    try:
        with urllib.request.urlopen(base + "/api/classes") as answer:
            classes = json.load(answer)["classes"]
        for wnid in (entry["wnid"] for entry in classes):
            with urllib.request.urlopen(f"{base}/api/class?wnid={wnid}") as answer:
                shown = [image["path"] for image in json.load(answer)["images"]]
            for path in sorted(set(shown) & rejects):
                post("/api/decision", {"path": path, "decision": "reject", "reason": "irrelevant"})
            post("/api/keep-rest", {"wnid": wnid})
    finally:
        server.shutdown()
        server.server_close()


def test_collect_review_augment_package_build(tmp_path, http_server):
    served = {}
    for class_index, (wnid, (count, _)) in enumerate(CLASSES.items()):
        for n in range(count):
            content = sketch_jpeg(70 * class_index + n, "L", (112, 84 + 4 * n), strokes=30)
            served[http_server.serve(f"/{wnid}/{n}.jpg", content, content_type="image/jpeg")] = (wnid, n, content)
    url_list = tmp_path / "urls.tsv"
    url_list.write_text("".join(f"{wnid}\t{url}\n" for url, (wnid, _, _) in served.items()))
    collected = tmp_path / "collected"
    classes = ",".join(CLASSES)
    assert main(["collect", str(collected), "--classes", classes, "--backend", "urls", "--urls", str(url_list)]) == 0

    images = {row["url"]: row["path"] for row in Manifest(collected).rows("image")}
    assert set(images) == set(served)
    rejects = {images[url] for url, (wnid, n, _) in served.items() if n in CLASSES[wnid][1]}
    review_over_http(collected, rejects)
    assert Manifest(collected).rejected() == rejects

    dataset, _ = augment_package_build(collected, tmp_path, TARGET)
    assert Counter(dataset["wnid"]) == {wnid: TARGET for wnid in CLASSES}
    assert all(row["label"] == label_of_wnid()[row["wnid"]] for row in dataset)
    stored = {row["image"]["bytes"] for row in dataset}
    for url, (_, _, content) in served.items():
        # A kept download is in the dataset untouched; a rejected one is not, as itself.
        assert (content in stored) == (images[url] not in rejects)
